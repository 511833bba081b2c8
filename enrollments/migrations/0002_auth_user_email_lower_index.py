"""Learners are matched by e-mail case-insensitively, in bulk: auth_user.email needs an index on LOWER(email).

auth.User belongs to Django, so the index is created with SQL that PostgreSQL and SQLite both accept.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("enrollments", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX enrollments_auth_user_email_lower ON auth_user (LOWER(email))",
            "DROP INDEX enrollments_auth_user_email_lower",
        ),
    ]
