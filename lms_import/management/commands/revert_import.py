"""manage.py revert_import JOB: the command-line twin of the "Revert import" button (SPEC §6), audited the same way.

Exit codes: 0 reverted (or a --plan shown), 1 refused (not succeeded, already reverted, a dry run),
2 usage (no such job or user, the user is not a site admin), 3 an import is running.
"""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lms_import.models import ImportJob
from lms_import.revert import RevertLocked, RevertRefused, import_job_revert, import_job_revert_plan, revert_refusal

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3


class Command(BaseCommand):
    help = (
        "Revert a succeeded course record import: remove every enrollment, credit award, pending record, account "
        "and shell it created that nothing has changed since; list what is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", type=int, help="the import job's id")
        parser.add_argument("--user", metavar="USERNAME", help="record the revert as this site admin's")
        parser.add_argument("--plan", action="store_true", help="only show what would be removed and kept")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, **options) -> None:
        job = ImportJob.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no import job #{options['job']}.", returncode=EXIT_USAGE)
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"There is no user named {options['user']!r}.", returncode=EXIT_USAGE)
            if not user.is_superuser:
                raise CommandError(f"{user.get_username()} is not a site admin; only they revert.", returncode=2)

        if options["plan"]:
            refusal = revert_refusal(job_id=job.pk, status=job.status, dry_run=job.dry_run, reverted_at=job.reverted_at)
            if refusal:
                self._refused(refusal, options, EXIT_REFUSED)
            self._show(import_job_revert_plan(job=job), options)
            return
        try:
            result = import_job_revert(job=job, user=user)
        except RevertLocked as locked:
            self._refused(str(locked), options, EXIT_LOCKED)
        except RevertRefused as refused:
            self._refused(str(refused), options, EXIT_REFUSED)
        self._show(result, options)

    def _show(self, result, options) -> None:
        if options["format"] == "json":
            self.stdout.write(json.dumps(result.as_dict()))
            return
        if result.applied:
            self.stdout.write(f"Import #{result.job_id} reverted.")
        self.stdout.write(result.summary())
        for kept in result.kept_records:  # every one (credit kept with its enrollment is listed as that enrollment)
            self.stdout.write(f"  kept {kept.label}: {kept.reason}")

    def _refused(self, message: str, options, code: int) -> None:
        if options["format"] == "json":
            self.stdout.write(json.dumps({"job": options["job"], "reverted": False, "error": message}))
        raise CommandError(message, returncode=code)
