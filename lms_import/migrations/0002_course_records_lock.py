"""The lock row exists from the start, so taking it is always an UPDATE of one known row."""

from django.db import migrations


def create_lock(apps, schema_editor):
    ImportLock = apps.get_model("lms_import", "ImportLock")
    ImportLock.objects.get_or_create(scope="course_records")


class Migration(migrations.Migration):
    dependencies = [("lms_import", "0001_initial")]

    operations = [migrations.RunPython(create_lock, migrations.RunPython.noop)]
