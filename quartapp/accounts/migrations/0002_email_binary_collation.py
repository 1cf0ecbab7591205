"""Compare emails byte for byte.

The table's default collation (utf8mb4_general_ci) treats "é" as "e" and every emoji as
equal to every other, so different addresses collided in the unique index and one account
answered to several addresses. Emails are stored lower-cased already, so a binary collation
keeps the comparison case-insensitive and makes it exact otherwise.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("quartapp", "0001_initial")]

    operations = [
        ops.RunSQL(
            "ALTER TABLE `users` MODIFY `email` VARCHAR(254) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
            reverse_sql="ALTER TABLE `users` MODIFY `email` VARCHAR(254) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL",
        ),
    ]
