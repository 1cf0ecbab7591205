"""Passkeys: each account's WebAuthn credentials, deleted with the account.

Numbered 0006: 0005 is the second factor's. This one needs only the users table (0004).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('quartapp', '0005_two_factor')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Passkey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('quartapp.User', source_field='user_id', db_constraint=True, to_field='id', related_name='passkeys', on_delete=OnDelete.CASCADE)),
                ('credential_key', fields.CharField(unique=True, max_length=64)),
                ('credential_id', fields.TextField()),
                ('public_key', fields.TextField()),
                ('sign_count', fields.BigIntField(default=0)),
                ('backup_eligible', fields.BooleanField(default=False)),
                ('backed_up', fields.BooleanField(default=False)),
                ('transports', fields.CharField(default='', max_length=255)),
                ('user_handle', fields.CharField(max_length=86)),
                ('name', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'passkeys', 'app': 'quartapp', 'pk_attr': 'id', 'table_description': 'A WebAuthn credential (a passkey) its owner signs in with, as the authenticator'},
            bases=['Model'],
        ),
    ]
