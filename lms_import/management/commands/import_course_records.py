"""manage.py import_course_records: the same import as the web, for scripts and cron (SPEC §8).

Exit codes: 0 applied (or a clean dry run), 1 validation errors (nothing written),
2 usage or unreadable file, 3 lock held.
"""

import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.findings import F_LOCKED
from courses.models import Course
from lms_import.models import ImportJob
from lms_import.selectors import job_summary
from lms_import.services import (
    LockHeld,
    MappingRefused,
    column_mapping_find,
    error_report_copy,
    import_job_apply,
    import_job_apply_later,
    import_job_create,
    import_job_validate,
    import_job_validate_later,
)

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3


class Command(BaseCommand):
    help = "Import course records (enrollments, completions, credits) from a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the CSV file, or a workbook (.xlsx, .xls, .ods)")
        parser.add_argument("--sheet", metavar="NAME", default="", help="the workbook's sheet to read (default: first)")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--course", metavar="ID", help="course-level importer: the course's external_course_id")
        which.add_argument("--global", dest="global_", action="store_true", help="global (legacy) importer")
        parser.add_argument("--dry-run", action="store_true", help="check and count; write nothing but the job")
        parser.add_argument("--skip-invalid", action="store_true", help="import the valid rows, report the others")
        parser.add_argument("--create-accounts", action="store_true", help="create accounts for unknown learners")
        parser.add_argument(
            "--allow-auto-complete", action="store_true", help="acknowledge W_AUTO_COMPLETE (course completes at once)"
        )
        parser.add_argument(
            "--mapping", metavar="NAME", help="read the header with this saved column mapping (see the admin)"
        )
        parser.add_argument("--user", metavar="USERNAME", help="record the import as this user's")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--error-report", metavar="PATH", help="write the error report CSV here")
        parser.add_argument("--async", dest="run_async", action="store_true", help="queue it for a Celery worker")

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path} is not a readable file.", returncode=EXIT_USAGE)
        try:
            path.open("rb").close()
        except OSError as error:
            raise CommandError(f"{path} cannot be read: {error.strerror}.", returncode=EXIT_USAGE)
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"There is no user named {options['user']!r}.", returncode=EXIT_USAGE)
        course = None
        if options["course"]:
            course = Course.objects.filter(external_course_id=options["course"]).first()
            if course is None:
                raise CommandError(
                    f"There is no course with external_course_id {options['course']!r}.", returncode=EXIT_USAGE
                )
        mapping = None
        if options["mapping"]:
            try:
                mapping = column_mapping_find(name=options["mapping"])
            except MappingRefused as refused:
                raise CommandError(str(refused), returncode=EXIT_USAGE)

        job = import_job_create(
            user=user,
            importer=ImportJob.Importer.GLOBAL if options["global_"] else ImportJob.Importer.COURSE,
            course=course,
            path=path,
            skip_invalid=options["skip_invalid"],
            create_accounts=options["create_accounts"],
            allow_auto_complete=options["allow_auto_complete"],
            dry_run=options["dry_run"],
            sheet=options["sheet"],
            mapping=mapping,
        )
        as_json = options["format"] == "json"

        # No typed number above IMPORT_CONFIRM_THRESHOLD here: the command line is the operator's own shell, and
        # --skip-invalid / --create-accounts are typed on purpose; the job never passes through import_job_confirm.
        if options["run_async"]:
            # A dry run is validated by a worker (and can never be applied); otherwise the worker's apply
            # checks the whole file under the lock.
            if options["dry_run"]:
                job = import_job_validate_later(job=job)
            else:
                job = import_job_apply_later(job=job)
            self._print(job, as_json, queued=True)
            return

        progress = _progress_bar(self.stderr) if not as_json and sys.stderr.isatty() else None
        try:
            if options["dry_run"]:
                job = import_job_validate(job=job, on_progress=progress)
            else:
                job = import_job_apply(job=job, on_progress=progress, from_statuses=(ImportJob.Status.UPLOADED,))
        except LockHeld:
            job.refresh_from_db()
        finally:
            if progress:
                progress.close()

        if options["error_report"]:
            destination = Path(options["error_report"])
            if not error_report_copy(job, destination):
                destination.write_text("line,code,column,value,message\n", encoding="utf-8")
        self._print(job, as_json)
        sys.exit(exit_code(job))

    def _print(self, job: ImportJob, as_json: bool, queued: bool = False) -> None:
        if as_json:
            self.stdout.write(json.dumps(job_summary(job=job), indent=2))
        else:
            self.stdout.write(job_text(job, queued=queued))


def exit_code(job: ImportJob) -> int:
    if job.failure_code == F_LOCKED:
        return EXIT_LOCKED
    if job.dry_run:
        clean = job.status == ImportJob.Status.VALIDATED and (job.rows_invalid == 0 or job.skip_invalid)
        return EXIT_OK if clean and not job.blocking_auto_complete else EXIT_INVALID
    return EXIT_OK if job.status == ImportJob.Status.SUCCEEDED else EXIT_INVALID


def job_text(job: ImportJob, *, queued: bool = False) -> str:
    lines = [f"Import job #{job.pk}: {job.status}" + (" (dry run: nothing was written)" if job.dry_run else "")]
    what = job.get_importer_display() + (f", course {job.course.external_course_id}" if job.course else "")
    lines.append(f"  {what}; file {job.original_filename}")
    if job.mapping_applied:
        lines.append(f"  Columns read with the mapping {job.mapping.name if job.mapping else '(unsaved)'!r}")
    if queued:
        lines.append(f"  Queued for a worker; follow it on /import/jobs/{job.pk}/.")
        return "\n".join(lines)
    if job.failure_message:
        lines.append(f"  {job.failure_code}: {job.failure_message}")
    if job.rows_total:
        lines.append(
            f"  Rows: {job.rows_total:,} read ({job.encoding}), {job.rows_valid:,} valid, {job.rows_invalid:,} "
            f"invalid, {job.rows_skipped:,} skipped"
        )
        verb = "Would create" if job.dry_run else "Created"
        lines.append(
            f"  {verb}: {job.created_enrollments:,} enrollments, {job.created_credits:,} credit awards, "
            f"{job.created_pending:,} pending records, {job.created_accounts:,} accounts, {job.created_shells:,} "
            f"course shells; {job.auto_completed:,} completed on enrollment"
        )
    for warning in job.warnings:
        lines.append(f"  Warning {warning['code']}: {warning['message']}")
    if job.error_count and not (job.failure_code and job.error_count == 1 and not job.rows_total):
        lines.append(f"  Errors ({job.error_count:,}; every one is in the error report):")
        for error in job.errors[:20]:
            where = f"line {error['line']}" if error.get("line") else "file"
            column = f", {error['column']}" if error.get("column") else ""
            lines.append(f"    {where}{column}: {error['code']}: {error['message']}")
        if job.error_count > 20:
            lines.append(f"    … and {job.error_count - 20:,} more")
    seconds = sum(s for s in (job.validate_seconds, job.apply_seconds) if s is not None)
    lines.append(f"  Took {seconds:.1f} s")
    return "\n".join(lines)


class _progress_bar:
    """A tqdm bar on the terminal, fed by the import's progress callback."""

    def __init__(self, stream):
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit=" rows", file=stream._out, dynamic_ncols=True, leave=False)

    def __call__(self, done: int, total: int) -> None:
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()
