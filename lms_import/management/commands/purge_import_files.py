"""manage.py purge_import_files: delete the stored files of finished import jobs past the retention period.

Beat runs the same service daily (lms_import.purge_import_files); the command is for cron or a one-off.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from lms_import.services import import_files_purge


class Command(BaseCommand):
    help = "Delete stored uploads and error reports of finished import jobs older than IMPORT_RETENTION_DAYS."

    def add_arguments(self, parser: CommandParser) -> None:
        default = settings.IMPORT_RETENTION_DAYS
        parser.add_argument("--days", type=int, default=None, help=f"instead of IMPORT_RETENTION_DAYS ({default})")

    def handle(self, *args, **options) -> None:
        purged = import_files_purge(days=options["days"])
        self.stdout.write(f"Removed the stored files of {len(purged)} finished import job(s).")
