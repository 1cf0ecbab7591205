"""Whether the account's owner has shown they read mail at its address."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("quartapp", "0003_credentials_version")]

    operations = [
        ops.AddField(
            model_name="User",
            name="email_verified",
            field=fields.BooleanField(default=False),
        ),
    ]
