"""Number each account's passwords, so a sign-in that checked a password which was changed
meanwhile can be refused its session."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("quartapp", "0002_email_binary_collation")]

    operations = [
        ops.AddField(
            model_name="User",
            name="credentials_version",
            field=fields.IntField(default=0),
        ),
    ]
