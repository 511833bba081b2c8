"""Import jobs: the service layer the command line, the Celery tasks and the views all call.

    import_job_create          a job for a file (uploaded, or read in place by the command line)
    import_job_validate_later  queue the validation (the upload's, or the command line's --async --dry-run)
    import_job_validate        the dry run: every check, nothing written but the job and its report
    import_job_apply_later     queue the apply of an uploaded job (the command line's --async)
    import_job_apply           under the lock, in one transaction: check again and write, all or nothing
    import_job_confirm         the admin's "Import" (queues the apply)
    import_job_cancel          the admin's "Cancel"
    import_job_mark_lost       end a job whose worker is gone: failed, code LOST, its lock released, audited
    import_jobs_sweep          the periodic check (Celery beat): every lost job ends, a died validation runs again once
    import_lock_unlock         a site admin's Unlock (the page and manage.py unlock_imports)
    import_job_revert_later    a site admin's "Revert import" (the page, the API): typed confirmation when large, queued
    import_job_revert_run      the worker's side of it: the revert (lms_import.revert) with a heartbeat and progress
    upload_refusal             why an upload is refused before any job exists (F_NOT_CSV, F_EMPTY), shared by faces
    column_mapping_find        a saved column mapping by its name (the upload form, --mapping, the API, mapping.txt)
    import_job_columns         the job's header as read (each cell's column, the required ones) and samples of its rows
    import_job_remap           the mapping step: check the same upload again with a column mapping (SPEC §13)
    job_file_local             the job's file as a path on this machine (a copy, when the storage is a bucket)

Job statuses change here and nowhere else, and tasks are queued here and nowhere else (_queue, on
commit, by name: this module never imports lms_import.tasks, which imports it). Reads that pages
share (progress, lost, confirmable, the lock's state) are in lms_import.selectors.

Every job ends. A confirmed apply that finds another import writing goes back to queued, waiting for
it (ImportWaiting: its task retries with back-off); the command line's foreground run is refused
with F_LOCKED instead. A job whose worker died is found lost — by the sweep, by its own task
delivered again, or by the next import taking its stale lock over — and fails with code LOST; it
is never applied again. A validation whose worker died runs once more, then it is lost too.

Whoever waits for a job hears of it (lms_import.notifications): when a job needs confirmation, succeeds, fails or
is found lost, _announce queues its e-mail, its webhook and, for an inbox file, the move of that file to done/ or
failed/ — on commit, as tasks, so that nothing they do can fail, roll back or delay the import. A job uploaded with
auto_confirm "when_clean" confirms itself after a clean validation (lms_import.selectors.job_clean).

One pass over the file does read → check → plan → apply in batches (lms_import.importer).
"""

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import timedelta
from pathlib import Path, PurePath

import celery
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from core.findings import F_EMPTY, F_LOCKED, F_NOT_CSV, F_TOO_LARGE, W_AUTO_COMPLETE, FileProblem, Finding
from courses.models import Course

from .importer.lock import (
    APPLY_LOST,
    LOST,
    LockHeld,
    LockLost,
    lock_acquire,
    lock_fence,
    lock_heartbeat,
    lock_hold,
    lock_release,
    lock_release_job,
    lock_unlock,
    silent,
)
from .importer.read import SAVE_AS_CSV, not_csv_kind, workbook_kind
from .importer.run import (
    LocalSink,
    PassResult,
    StagingSink,
    header_sample,
    pass_facts,
    pass_open,
    pass_run,
    pass_run_parallel,
)
from .importer.schema import NAMES, HeaderMatch, header_match, mapping_problems, mapping_suggest, mapping_tidy
from .models import AuditEvent, ColumnMapping, FindingGroup, ImportJob, RevertRun
from .notifications import notification_mail, notification_recipients, webhook_body
from .revert import RevertRefused, import_job_revert, revert_refusal, revert_size
from .selectors import (
    EVENT_LOST,
    job_clean,
    job_outcome,
    job_typed_confirmations,
    jobs_lost,
    jobs_stalled,
    revert_confirm_count,
    validation_stalled,
)

log = logging.getLogger(__name__)
Status = ImportJob.Status
Progress = Callable[[int, int], None]

# The Celery task names (lms_import/tasks.py registers its tasks under them).
VALIDATE_TASK = "lms_import.validate_import_job"
APPLY_TASK = "lms_import.apply_import_job"
PURGE_TASK = "lms_import.purge_import_files"  # settings.CELERY_BEAT_SCHEDULE runs it daily
SWEEP_TASK = "lms_import.sweep_import_jobs"  # settings.CELERY_BEAT_SCHEDULE runs it every IMPORT_SWEEP_SECONDS
MAIL_TASK = "lms_import.mail_import_notification"
WEBHOOK_TASK = "lms_import.post_import_webhook"
INBOX_SCAN_TASK = "lms_import.scan_import_inbox"  # settings.CELERY_BEAT_SCHEDULE, every IMPORT_INBOX_SECONDS
INBOX_SETTLE_TASK = "lms_import.settle_inbox_file"
REVERT_TASK = "lms_import.revert_import_job"

# Uploads: what a face accepts as a CSV file by its name (the content is checked by the validation).
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
WORKBOOK_EXTENSIONS = (".xlsx", ".xls", ".ods")

# A validation is started at most this often: one whose worker died runs once more, then it is lost (a file that
# kills its worker, by memory say, must not do so forever).
VALIDATION_ATTEMPTS = 2
VALIDATION_LOST = (
    "The worker checking this file stopped twice (its process died, was killed or hung: no heartbeat for longer "
    "than the lease of {lease} s). Nothing was imported. Upload the file again; if it happens again, tell the "
    "site's operators (a worker may run out of memory on this file)."
)
WAITING = "Waiting for import #{job} to finish: imports write one at a time. This one starts by itself then."

# "Import" above IMPORT_CONFIRM_THRESHOLD rows skipped or accounts created: the number was not typed, or not right.
E_CONFIRM_COUNT = "E_CONFIRM_COUNT"
CONFIRM_COUNT_MISSING = "Type {count:,} (the number of {what}) to confirm: it is more than {threshold:,}."
CONFIRM_COUNT_WRONG = (
    "You typed {given:,}, but this import has {count:,} {what}. Type {count:,} to confirm, or cancel and check "
    "the file."
)

# The failure codes of a job ended by someone else while its pass ran (found lost, unlocked): they announce it.
ENDED_ELSEWHERE = (LOST, "UNLOCKED")

# Who found a job lost (the audit event's details, the log).
BY_SWEEP = "the periodic check"
BY_REDELIVERY = "its task, delivered again"


class ImportRefused(Exception):
    """The job cannot run in its current state (a usage error, not a problem of the file)."""


class ConfirmCountRefused(ImportRefused):
    """ "Import" above IMPORT_CONFIRM_THRESHOLD without the number typed, or with another one (E_CONFIRM_COUNT)."""

    code = E_CONFIRM_COUNT

    def __init__(self, message: str, *, field: str, given: int | None):
        self.field, self.given = field, given
        super().__init__(message)


class ImportWaiting(Exception):
    """Another import holds the lock: the confirmed job is queued again, waiting for it (its task retries later)."""

    def __init__(self, job: ImportJob, holder_id: int | None):
        self.job, self.holder_id = job, holder_id
        super().__init__(f"Job #{job.pk}: " + WAITING.format(job=holder_id or "?"))


class UploadRefused(Exception):
    """An upload that is not taken at all (no job is created): the finding says why, with its F_* code."""

    def __init__(self, finding: Finding):
        self.finding = finding
        super().__init__(f"{finding.code}: {finding.message}")


class _Blocked(Exception):
    """Rolls the apply back: W_AUTO_COMPLETE needs an acknowledgment first."""


class _RowErrors(Exception):
    """Rolls the apply back: rows are invalid and the admin did not ask to skip them."""


def _queue(task_name: str, job_id: int, *args) -> None:
    """Send the task for job_id (and args) once the current transaction commits (at once outside one).

    By name, through the Celery app, so that this module needs no import of the tasks (LmsImportConfig.ready
    registers them in every process). A broker that cannot be reached is logged, not raised: the job stays
    where it is and its page says it is waiting for a worker.
    """

    def send() -> None:
        try:
            celery.current_app.tasks[task_name].delay(job_id, *args)
        except Exception:
            log.exception("could not queue %s for import job %s", task_name, job_id)

    transaction.on_commit(send)


def _announce(job: ImportJob, event: str | None = None) -> None:
    """Tell whoever waits for the job what became of it (SPEC §12), on commit: its e-mail, its webhook, and for an
    inbox file the move to done/ or failed/. `event` defaults to what the job's state means (selectors.job_outcome);
    nothing is sent while the job is still on its way. Never raises: the import it follows has happened."""
    try:
        event = event or job_outcome(job=job)
        if job.inbox_file:
            _queue(INBOX_SETTLE_TASK, job.pk)
        if event is None:
            return
        recipients = notification_recipients(job)
        if recipients:
            _queue(MAIL_TASK, job.pk, event, notification_mail(job, event), recipients)
        if settings.IMPORT_WEBHOOK_URL:
            _queue(WEBHOOK_TASK, job.pk, event, webhook_body(job, event))
    except Exception:
        log.exception("could not announce import job %s", job.pk)


# -- uploads -------------------------------------------------------------------------------------
def upload_too_large(*, size: int, limit: int) -> Finding:
    return Finding(
        F_TOO_LARGE,
        f"The file is about {size:,} bytes; the limit is {limit:,}. Split it into smaller files.",
        value=str(size),
    )


def upload_refusal(*, upload) -> Finding | None:
    """Why an upload (a Django File) is not taken at all, or None: a PDF or other binary that is neither a CSV file
    nor a workbook, a name that is neither's, an empty file. A workbook (.xlsx, .xls, .ods) is taken: the reader reads
    its sheet and says if it cannot. The web's form, the API and the inbox refuse with it; the size limit is enforced
    while the upload arrives (lms_import.web.uploads)."""
    name = PurePath(upload.name or "").name
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if workbook_kind(upload.file if hasattr(upload, "file") else upload, head):
        upload.seek(0)
        return None
    upload.seek(0)
    what = not_csv_kind(head)
    if what:
        return Finding(
            F_NOT_CSV, f"{name} is {what}, not a CSV file or a workbook. {SAVE_AS_CSV}", value=head[:8].hex(" ")
        )
    if name.lower().endswith(WORKBOOK_EXTENSIONS):
        return Finding(
            F_NOT_CSV,
            f"{name} is named like a workbook but is not one (it may be damaged, or another kind of file renamed). "
            f"Open it in the spreadsheet program and save it again. {SAVE_AS_CSV}",
            value=head[:8].hex(" "),
        )
    if not name.lower().endswith(CSV_EXTENSIONS):
        return Finding(
            F_NOT_CSV,
            f"{name} is not a CSV file or a workbook; upload a file ending in .csv (or .txt, .tsv), .xlsx, .xls or "
            f".ods. {SAVE_AS_CSV}",
        )
    if upload.size == 0:
        return Finding(F_EMPTY, "The file is empty. Export the course records again and upload it.")
    return None


# -- column mappings (SPEC §13) --------------------------------------------------------------------------
SCHEMA_COLUMNS = NAMES  # the importer's columns, in the order the mapping step lists them
SAMPLE_ROWS = 50  # rows of the file the mapping step reads for its sample values
SAMPLES_SHOWN = 3


class MappingRefused(Exception):
    """A column mapping that cannot be used: unknown by that name, or unsound as chosen. The message says why."""


def column_mapping_find(*, name: str) -> ColumnMapping:
    """The saved mapping of that name; MappingRefused naming the saved ones when there is none."""
    mapping = ColumnMapping.objects.filter(name=name.strip()).first()
    if mapping is None:
        names = list(ColumnMapping.objects.order_by("name").values_list("name", flat=True))
        known = f"The saved mappings are: {', '.join(repr(n) for n in names)}." if names else "None is saved yet."
        raise MappingRefused(
            f"There is no saved column mapping named {name.strip()!r}. {known} A site admin saves mappings in the "
            f"admin, or on an import's page (Map the columns)."
        )
    return mapping


class JobColumns:
    """A job's header as the importer reads it, with the first values of each column: the F_MISSING_COLUMN table
    and the mapping step."""

    def __init__(self, header: list[str], rows: list[list[str]], match: HeaderMatch, suggested: dict[str, str]):
        self.header = header
        self.required = match.required
        self.suggested = suggested
        self.columns = []  # (header cell, the column it is read as or None, its first non-empty values)
        for position, (cell, name) in enumerate(match.cells):
            values = [row[position].strip() for row in rows if position < len(row) and row[position].strip()]
            self.columns.append((cell, name, values[:SAMPLES_SHOWN]))


def import_job_columns(*, job: ImportJob) -> JobColumns | None:
    """The job's header and samples, read from its stored file (its first rows only); None when the file is gone
    or cannot be read (the job's own findings say why)."""
    if job.files_removed_at or not (job.file or job.source_path):
        return None
    try:
        with job_file_local(job) as path:
            header, rows = header_sample(job, path, rows=SAMPLE_ROWS)
    except (FileProblem, OSError):
        return None
    global_importer = job.importer == ImportJob.Importer.GLOBAL
    match = header_match(header, global_importer=global_importer, mapping=job.mapping_applied or None)
    suggested = mapping_suggest(header)
    cells = {cell.strip() for cell in header}
    for column, cell in (job.mapping_applied or {}).items():
        if column in suggested and (cell == "" or cell in cells):
            suggested[column] = cell  # what was chosen before stands
    return JobColumns(header, rows, match, suggested)


REMAPPABLE = (Status.FAILED, Status.VALIDATED)


def job_remappable(job: ImportJob) -> bool:
    """Whether the mapping step may check this job again: an uploaded file still kept, checked and not imported."""
    return bool(job.file) and not job.files_removed_at and job.status in REMAPPABLE


def import_job_remap(*, job: ImportJob, user, columns: dict[str, str], save_as: str = "") -> ImportJob:
    """The mapping step's "Check again": the same upload goes back through validation read with `columns`
    ({schema column: the file's header}); the earlier findings, counts and report are dropped. With `save_as`, the
    mapping is also saved under that name (a new name: a saved mapping is edited in the admin)."""
    columns = {name: cell.strip() if isinstance(cell, str) else cell for name, cell in columns.items()}
    problems = mapping_problems(columns)
    if problems:
        raise MappingRefused(" ".join(problems))
    if not job_remappable(job):
        raise ImportRefused(
            f"Job #{job.pk} is {job.status}"
            + ("" if job.file and not job.files_removed_at else " and its uploaded file is not kept")
            + "; only a checked upload that was not imported can be checked again with a mapping."
        )
    try:
        with job_file_local(job) as path:
            header, _ = header_sample(job, path, rows=1)
    except (FileProblem, OSError) as error:
        raise ImportRefused(f"Job #{job.pk}'s uploaded file cannot be read again ({error}); upload it again.") from None
    columns = mapping_tidy(columns, header)
    if not any(columns.values()):
        raise MappingRefused("Choose the file's column for at least one of the importer's columns.")
    save_as = save_as.strip()[:100]
    old_report = job.error_report.name
    taken = MappingRefused(
        f"A column mapping named {save_as!r} exists already. Choose another name (the admin edits saved mappings)."
    )
    with transaction.atomic():
        saved = None
        if save_as:
            if ColumnMapping.objects.filter(name=save_as).exists():
                raise taken
            try:
                with transaction.atomic():
                    saved = ColumnMapping.objects.create(name=save_as, columns=columns, created_by=user)
            except IntegrityError:  # saved by someone else a moment ago
                raise taken from None
        reset = {
            "status": Status.UPLOADED,
            "mapping": saved,
            "mapping_applied": columns,
            "failure_code": "",
            "failure_message": "",
            "warnings": [],
            "errors": [],
            "error_count": 0,
            "error_report": "",
            "validate_attempts": 0,
            "validate_started_at": None,
            "validate_finished_at": None,
            "progress_done": 0,
            "progress_total": 0,
            "rows_total": 0,
            "rows_valid": 0,
            "rows_invalid": 0,
            "rows_skipped": 0,
            "auto_completed": 0,
        } | {f"created_{name}": 0 for name in ("enrollments", "credits", "pending", "accounts", "shells")}
        if not ImportJob.objects.filter(pk=job.pk, status__in=REMAPPABLE).update(**reset):
            raise ImportRefused(f"Job #{job.pk} changed meanwhile; it can no longer be checked again.")
        AuditEvent.objects.create(
            actor=user,
            action=AuditEvent.Action.MAPPING,
            job=job,
            details={"columns": columns, "saved_as": saved.name if saved else ""},
        )
        job.refresh_from_db()
        import_job_validate_later(job=job)
        if old_report:
            transaction.on_commit(lambda: job.error_report.storage.delete(old_report))
    return job


# -- creating ------------------------------------------------------------------------------------
def import_job_create(
    *,
    user,
    importer: str,
    course: Course | None,
    upload=None,
    path: Path | None = None,
    filename: str = "",
    skip_invalid: bool = False,
    create_accounts: bool = False,
    allow_auto_complete: bool = False,
    dry_run: bool = False,
    sheet: str = "",
    queue_validation: bool = False,
    auto_confirm: str = ImportJob.AutoConfirm.NEVER,
    source: str = "",
    inbox_file: str = "",
    mapping: ColumnMapping | None = None,
) -> ImportJob:
    """A job for an uploaded file (stored under a random name) or a file the command line reads in place;
    `sheet` names a workbook's sheet to read (its first, if blank); `mapping`, a saved column mapping to read the
    header with (the job keeps a copy of it as applied).

    An upload that upload_refusal refuses raises UploadRefused, and no job is made. With queue_validation (the web's
    upload, the API, the inbox), its validation is queued once the job is committed. `source` is what History
    shows: the web upload or the command line unless said otherwise.
    """
    if upload is not None:
        refusal = upload_refusal(upload=upload)
        if refusal is not None:
            raise UploadRefused(refusal)
    job = ImportJob(
        sheet=sheet[:100],
        created_by=user,
        importer=importer,
        course=course,
        skip_invalid=skip_invalid,
        create_accounts=create_accounts,
        allow_auto_complete=allow_auto_complete,
        dry_run=dry_run,
        auto_confirm=auto_confirm,
        source=(source or (ImportJob.SOURCE_WEB if upload is not None else ImportJob.SOURCE_CLI))[:300],
        inbox_file=inbox_file,
        mapping=mapping,
        mapping_applied=dict(mapping.columns) if mapping else {},
        original_filename=(filename or (upload.name if upload else Path(path).name))[:255],
    )
    if upload is not None:
        job.file_size = upload.size
        job.file.save("upload.csv", upload, save=False)
    else:
        job.source_path = str(Path(path).resolve())
        job.file_size = Path(path).stat().st_size
    with transaction.atomic():
        job.save()
        AuditEvent.objects.create(
            actor=user,
            action=AuditEvent.Action.UPLOAD,
            job=job,
            details={"file": job.original_filename} | ({"mapping": mapping.name} if mapping else {}),
        )
        if queue_validation:
            import_job_validate_later(job=job)
    return job


def import_job_validate_later(*, job: ImportJob) -> ImportJob:
    """Queue the validation of an uploaded job for a worker (on commit)."""
    if job.status != Status.UPLOADED:
        raise ImportRefused(f"Job #{job.pk} is {job.status}; only an uploaded job can be validated.")
    _queue(VALIDATE_TASK, job.pk)
    return job


def import_job_apply_later(*, job: ImportJob) -> ImportJob:
    """The command line's --async: an uploaded job goes straight to queued, and its apply is queued (on commit).

    The apply checks the whole file again under the lock, so nothing unchecked is written. A dry run is never
    applied: queue its validation instead.
    """
    if job.dry_run:
        raise ImportRefused(f"Job #{job.pk} is a dry run; it is validated, never applied.")
    with transaction.atomic():
        if not ImportJob.objects.filter(pk=job.pk, status=Status.UPLOADED, dry_run=False).update(status=Status.QUEUED):
            raise ImportRefused(f"Job #{job.pk} is {job.status}; only an uploaded job can be queued for import.")
        _queue(APPLY_TASK, job.pk)
    job.refresh_from_db()
    return job


class Pulse:
    """A thread that every few seconds writes the job's progress and refreshes the lock's heartbeat.

    It runs on its own database connection (Django connections are per thread), so what it writes
    is committed at once, whatever the apply transaction is doing.
    """

    def __init__(self, job_id: int, *, token: str | None = None, on_progress: Progress | None = None):
        self.job_id = job_id
        self.token = token
        self.on_progress = on_progress
        self.done = 0
        self.total = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"import-pulse-{job_id}", daemon=True)

    def __enter__(self) -> "Pulse":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def progress(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self.on_progress:
            self.on_progress(self.done, self.total)

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.IMPORT_HEARTBEAT_SECONDS):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            done, total = self.done, max(self.total, self.done)
            if self.token:
                # During an apply, progress goes to the lock row with the heartbeat (see ImportLock).
                if not lock_heartbeat(token=self.token, progress=(done, total)):
                    self.lost = True
            else:
                ImportJob.objects.filter(pk=self.job_id).update(
                    progress_done=done, progress_total=total, heartbeat_at=Now()
                )
        except Exception:  # a missed beat is retried; the lease is many beats long
            log.warning("import pulse for job %s failed", self.job_id, exc_info=True)
            close_old_connections()


@contextmanager
def job_file_local(job: ImportJob) -> Iterator[Path]:
    """The job's file as a path on this machine, for the reader (and the producer process) to open.

    The command line's file is read in place. An upload is opened through its storage: where the storage has paths
    (a directory shared by web and workers), that one; otherwise (a bucket) a temporary copy, deleted afterwards.
    """
    if not job.file:
        yield Path(job.source_path)
        return
    try:
        local = job.file.storage.path(job.file.name)
    except NotImplementedError:
        local = None
    if local is not None:
        yield Path(local)
        return
    handle, name = tempfile.mkstemp(prefix=f"import-{job.pk}-", suffix=".csv")
    try:
        with os.fdopen(handle, "wb") as copy, job.file.open("rb") as stored:
            shutil.copyfileobj(stored, copy, 1 << 20)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _record(job: ImportJob, result: PassResult, *, written: bool, reports: list[str]) -> None:
    """Copy a pass's counts, findings and report onto the job (not saved); the report's stored name goes to
    `reports` (see _reports_prune)."""
    totals, created = result.totals, result.created
    job.rows_total, job.rows_valid, job.rows_invalid = totals.rows, totals.valid, totals.invalid
    job.rows_skipped = totals.invalid if (written and job.skip_invalid) else 0
    job.auto_completed = totals.auto_completed
    for name in ("enrollments", "credits", "pending", "accounts", "shells"):
        setattr(job, f"created_{name}", getattr(created, name))
    job.warnings = result.warnings
    job.errors = result.report_kept
    job.error_count = result.report_count
    _finding_groups_save(job, result.report_groups)
    path = Path(result.report_path)
    try:
        if result.report_count:
            with path.open("rb") as f:
                job.error_report.save("errors.csv", File(f), save=False)
            reports.append(job.error_report.name)
        else:
            job.error_report = ""
    finally:
        path.unlink(missing_ok=True)


def _finding_groups_save(job: ImportJob, groups: list[dict]) -> None:
    """The pass's findings counted by code, column and value replace the job's (an apply's pass counts them again;
    rolled back, the validation's stay)."""
    FindingGroup.objects.filter(job=job).delete()
    FindingGroup.objects.bulk_create(
        (
            FindingGroup(
                job=job,
                code=group["code"],
                column=group["column"][:100],
                value=group["value"] or "",
                other=group["value"] is None,
                count=group["count"],
                line=group["line"],
                message=group["message"],
            )
            for group in groups
        ),
        batch_size=1000,
    )


def _reports_prune(job: ImportJob, reports: list[str]) -> None:
    """One error report per job on disk: of the reports a pass found and wrote, delete those the job, as saved,
    no longer names (the validation's, once the apply wrote its own; the apply's, if it was rolled back)."""
    named = ImportJob.objects.filter(pk=job.pk).values_list("error_report", flat=True).first()
    for name in set(reports) - {named, ""}:
        job.error_report.storage.delete(name)


def _record_file_problem(job: ImportJob, finding: Finding) -> None:
    job.status = Status.FAILED
    job.failure_code = finding.code
    job.failure_message = finding.message
    job.errors = [finding.as_dict()]
    job.error_count = 1
    job.warnings = []
    for name in ("rows_total", "rows_valid", "rows_invalid", "rows_skipped", "auto_completed"):
        setattr(job, name, 0)
    for name in ("enrollments", "credits", "pending", "accounts", "shells"):
        setattr(job, f"created_{name}", 0)


def incident_reference(job: ImportJob) -> str:
    """What a page shows for an unexpected error instead of its text (which may quote the database and the
    learners' data): the job and a short incident id, logged with the traceback."""
    return f"#{job.pk}-{secrets.token_hex(3)}"


# -- validate: the dry run -------------------------------------------------------------------------
def import_job_validate(*, job: ImportJob, on_progress: Progress | None = None) -> ImportJob:
    """Check the whole file and plan it without writing anything but the job and its error report.

    A validation whose worker died (silent for a lease) writes nothing, so its task delivered again runs it once
    more; after VALIDATION_ATTEMPTS starts, that task finds it lost instead.
    """
    again = validation_stalled() & Q(validate_attempts__lt=VALIDATION_ATTEMPTS)
    claimed = ImportJob.objects.filter(Q(status=Status.UPLOADED) | again, pk=job.pk).update(
        status=Status.VALIDATING,
        validate_started_at=Now(),
        heartbeat_at=Now(),
        validate_attempts=F("validate_attempts") + 1,
    )
    if not claimed:
        current = ImportJob.objects.get(pk=job.pk)
        if current.status == Status.VALIDATING and import_job_mark_lost(job=current, found_by=BY_REDELIVERY):
            job.refresh_from_db()
            return job
        raise ImportRefused(f"Job #{job.pk} is {current.status}; only an uploaded job can be validated.")
    job.refresh_from_db()
    reports = [job.error_report.name]
    with Pulse(job.pk, on_progress=on_progress) as pulse:
        try:
            with job_file_local(job) as path:
                course, source = pass_open(job, path)
                result = pass_run(job, course, source, write=False, pulse=pulse, sink=LocalSink(dry_run=True))
        except FileProblem as problem:
            _record_file_problem(job, problem.finding)
        except Exception:
            reference = incident_reference(job)
            log.exception("validation of job %s failed (reference %s)", job.pk, reference)
            job.status, job.failure_code = Status.FAILED, "INTERNAL"
            job.failure_message = (
                f"Validation stopped because of an unexpected error; nothing was written. Reference {reference}: "
                "the site's operators find the details in the server log under it."
            )
        else:
            _record(job, result, written=False, reports=reports)
            job.status = Status.VALIDATED
        job.progress_done, job.progress_total = pulse.done, max(pulse.total, pulse.done)
    job.validate_finished_at = timezone.now()
    saved = _save_unless_ended(job, running=Status.VALIDATING)
    _reports_prune(job, reports)
    if saved:
        _validated(job)
    return job


def _validated(job: ImportJob) -> None:
    """After a validation: a clean job uploaded with auto_confirm "when_clean" confirms itself; otherwise whoever
    waits for it hears what it needs (confirmation) or what went wrong."""
    if job.auto_confirm == ImportJob.AutoConfirm.WHEN_CLEAN and job_clean(job=job):
        try:
            import_job_confirm(job=job, user=job.created_by, unattended=True)
            return
        except ImportRefused:  # cancelled meanwhile
            job.refresh_from_db()
    _announce(job)


# -- apply: under the lock, all or nothing ---------------------------------------------------------
def import_job_apply(
    *, job: ImportJob, on_progress: Progress | None = None, from_statuses=(Status.QUEUED,)
) -> ImportJob:
    """Take the lock, check and write the file in one transaction, fence, commit; or leave nothing behind.

    A queued (confirmed) job that finds the lock live goes back to queued and raises ImportWaiting: its task
    tries again later. A job applied straight from uploaded (the command line's foreground run) fails with
    F_LOCKED and raises LockHeld. A job found importing whose worker is gone (its task delivered again) is
    marked lost and returned; it is never applied again.
    """
    claimed = ImportJob.objects.filter(pk=job.pk, status__in=from_statuses, dry_run=False).update(
        status=Status.IMPORTING,
        apply_started_at=Now(),
        heartbeat_at=Now(),
        failure_code="",
        failure_message="",
        waiting_for=None,
        progress_done=0,  # the apply's own progress, not the validation's
    )
    if not claimed:
        # A redelivered task, or a job already applied, failed or cancelled: never apply twice; a dry run never.
        current = ImportJob.objects.get(pk=job.pk)
        if current.dry_run:
            raise ImportRefused(f"Job #{job.pk} is a dry run; it is validated, never applied.")
        if current.status == Status.IMPORTING and import_job_mark_lost(job=current, found_by=BY_REDELIVERY):
            job.refresh_from_db()
            return job
        raise ImportRefused(f"Job #{job.pk} is {current.status}; it cannot be applied now.")
    job.refresh_from_db()
    reports = [job.error_report.name]
    try:
        token = lock_acquire(job=job)
    except LockHeld as held:
        if Status.UPLOADED not in from_statuses:
            raise _wait_for_turn(job, held) from held
        job.status, job.failure_code, job.failure_message = Status.FAILED, F_LOCKED, str(held)
        job.errors, job.error_count = [Finding(F_LOCKED, str(held)).as_dict()], 1
        job.apply_finished_at = timezone.now()
        job.save()
        _announce(job)
        raise
    _announce_taken_over(job)

    files = ExitStack()  # the job's file on this machine (job_file_local), kept until the pass has ended
    try:
        with Pulse(job.pk, token=token, on_progress=on_progress) as pulse:
            try:
                path = files.enter_context(job_file_local(job))
                parallel = connection.vendor == "postgresql" and settings.IMPORT_PRODUCER_PROCESS
                staged = connection.vendor != "postgresql"  # SQLite: see StagingSink
                if parallel:
                    course, facts = pass_facts(job, path)  # the producer process opens the file, and only it
                else:
                    course, source = pass_open(job, path)
                with ExitStack() as cleanup:
                    if staged:
                        # Checked, planned and staged before the transaction: the pass only reads.
                        sink = cleanup.enter_context(closing(StagingSink()))
                        result = pass_run(job, course, source, write=True, pulse=pulse, sink=sink)
                        # Every row checked and staged: say so now (the page shows the writing stage), before the
                        # write transaction holds the heartbeat back until it commits.
                        pulse.beat()
                    with transaction.atomic():
                        if parallel:
                            result = pass_run_parallel(job, course, path, facts, pulse=pulse)
                        elif not staged:
                            result = pass_run(
                                job, course, source, write=True, pulse=pulse, sink=LocalSink(dry_run=False)
                            )
                        _record(job, result, written=True, reports=reports)
                        commit_started = time.perf_counter()
                        if result.stopped:
                            raise _RowErrors()
                        if job.blocking_auto_complete:
                            raise _Blocked()
                        if staged:
                            sink.write()
                        lock_fence(token=token)
                        job.status = Status.SUCCEEDED
                        job.progress_done, job.progress_total = pulse.done, max(pulse.total, pulse.done)
                        job.apply_finished_at = timezone.now()
                        job.save()
                        AuditEvent.objects.create(
                            actor=job.created_by,
                            action=AuditEvent.Action.APPLY,
                            job=job,
                            details={"enrollments": job.created_enrollments, "credits": job.created_credits},
                        )
                log.info("import job %s committed in %.2f s", job.pk, time.perf_counter() - commit_started)
                # The apply's duration includes its commit.
                ImportJob.objects.filter(pk=job.pk).update(apply_finished_at=Now())
                job.refresh_from_db()
            except _RowErrors:
                _apply_refused(
                    job,
                    "ROW_ERRORS",
                    f"{job.rows_invalid} rows are invalid, so nothing was imported. "
                    "Correct them, or import with 'Skip invalid rows'.",
                    validated=True,
                )
            except _Blocked:
                _apply_refused(
                    job,
                    W_AUTO_COMPLETE,
                    "The import needs the auto-complete acknowledgment; nothing was imported.",
                    validated=True,
                )
            except FileProblem as problem:
                _record_file_problem(job, problem.finding)
                job.apply_finished_at = timezone.now()
                _save_unless_ended(job, running=Status.IMPORTING)
            except LockLost as lost:
                _apply_failed(job, "LOCK_LOST", str(lost))
            except Exception:
                reference = incident_reference(job)
                log.exception("import job %s failed (reference %s)", job.pk, reference)
                _apply_failed(
                    job,
                    "INTERNAL",
                    f"The import stopped because of an unexpected error; the database was rolled back and nothing "
                    f"was imported. Reference {reference}: the site's operators find the details in the server log "
                    f"under it.",
                )
    finally:
        files.close()
        lock_release(token=token)
        _reports_prune(job, reports)
    if job.failure_code not in ENDED_ELSEWHERE:  # those who ended it meanwhile have announced it
        _announce(job)
    return job


def _announce_taken_over(job: ImportJob) -> None:
    """lock_acquire took a stale lock over from a job whose worker was gone, and failed that job as lost: say so."""
    takeovers = AuditEvent.objects.filter(
        action=AuditEvent.Action.TAKEOVER, details__taken_by_job=job.pk, job__isnull=False
    ).select_related("job")
    for event in takeovers:
        if event.job.failure_code == LOST:
            _announce(event.job, EVENT_LOST)


def _wait_for_turn(job: ImportJob, held: LockHeld) -> ImportWaiting:
    """Back to queued, waiting for the import that holds the lock (the page says which)."""
    holder_id = held.state.job.pk if held.state.job else None
    ImportJob.objects.filter(pk=job.pk, status=Status.IMPORTING).update(
        status=Status.QUEUED, waiting_for_id=holder_id, apply_started_at=None
    )
    job.refresh_from_db()
    return ImportWaiting(job, holder_id)


def _apply_failed(job: ImportJob, code: str, message: str) -> None:
    """After a rollback: record why, without overwriting an unlock's verdict."""
    ImportJob.objects.filter(pk=job.pk).exclude(status=Status.FAILED).update(
        status=Status.FAILED,
        failure_code=code,
        failure_message=message,
        rows_skipped=0,
        created_enrollments=0,
        created_credits=0,
        created_pending=0,
        created_accounts=0,
        created_shells=0,
        apply_finished_at=Now(),
    )
    job.refresh_from_db()


def _apply_refused(job: ImportJob, code: str, message: str, *, validated: bool) -> None:
    """Rolled back for a reason the admin can fix: keep the counts and findings of the pass, write nothing."""
    job.status = Status.VALIDATED if validated else Status.FAILED
    job.failure_code, job.failure_message = code, message
    job.rows_skipped = 0
    for name in ("enrollments", "credits", "pending", "accounts", "shells"):
        setattr(job, f"created_{name}", 0)
    job.apply_finished_at = timezone.now()
    _save_unless_ended(job, running=Status.IMPORTING)


def _save_unless_ended(job: ImportJob, *, running: str) -> bool:
    """Save a pass's outcome on its job, unless someone ended the job meanwhile (an unlock, found lost): their
    verdict stands, and the job is read back as they left it."""
    with transaction.atomic():  # the row locked (SQLite: the write lock) from the look to the save
        if not ImportJob.objects.select_for_update().filter(pk=job.pk, status=running).exists():
            job.refresh_from_db()
            return False
        job.save()
    return True


# -- the admin's decisions ---------------------------------------------------------------------------
def import_job_confirm(
    *,
    job: ImportJob,
    user,
    acknowledge_auto_complete: bool = False,
    typed: dict[str, int | None] | None = None,
    unattended: bool = False,
) -> ImportJob:
    """The admin's "Import": queue the apply (on commit) for a validated job.

    Above IMPORT_CONFIRM_THRESHOLD rows skipped or accounts created, the admin types each such number
    (selectors.job_typed_confirmations): `typed` maps its field (confirm_skipped, confirm_accounts) to what was
    typed; the web and the API both pass it. `unattended` is auto_confirm "when_clean", decided by whoever uploaded
    the file, for a clean file (no row skipped). The command line never confirms through here: the operator's own
    shell applies straight from the upload and needs no typed number.
    """
    if job.dry_run:
        raise ImportRefused(f"Job #{job.pk} is a dry run; it is validated, never applied.")
    if job.blocking_auto_complete and not acknowledge_auto_complete:
        raise ImportRefused("Tick the acknowledgment: this course completes enrollments on enrollment.")
    if not unattended:
        _typed_counts_check(job, typed or {})
    updates = {"status": Status.QUEUED, "failure_code": "", "failure_message": ""}
    if acknowledge_auto_complete:
        updates["allow_auto_complete"] = True
    with transaction.atomic():
        if not ImportJob.objects.filter(pk=job.pk, status=Status.VALIDATED, dry_run=False).update(**updates):
            raise ImportRefused(f"Job #{job.pk} is not waiting for confirmation.")
        details = {"acknowledged": acknowledge_auto_complete, "typed": typed or {}}
        AuditEvent.objects.create(actor=user, action=AuditEvent.Action.CONFIRM, job=job, details=details)
        _queue(APPLY_TASK, job.pk)
    job.refresh_from_db()
    return job


def _typed_counts_check(job: ImportJob, typed: dict[str, int | None]) -> None:
    threshold = settings.IMPORT_CONFIRM_THRESHOLD
    for asked in job_typed_confirmations(job=job):
        given = typed.get(asked.field)
        if given is None:
            message = CONFIRM_COUNT_MISSING.format(count=asked.count, what=asked.what, threshold=threshold)
            raise ConfirmCountRefused(message, field=asked.field, given=None)
        if given != asked.count:
            message = CONFIRM_COUNT_WRONG.format(given=given, count=asked.count, what=asked.what)
            raise ConfirmCountRefused(message, field=asked.field, given=given)


def import_job_cancel(*, job: ImportJob, user) -> ImportJob:
    """The admin's "Cancel": for a job not yet confirmed, or a validation whose worker went silent for a lease."""
    cancellable = Q(status__in=[Status.UPLOADED, Status.VALIDATED]) | validation_stalled()
    if not ImportJob.objects.filter(cancellable, pk=job.pk).update(status=Status.CANCELLED):
        raise ImportRefused(f"Job #{job.pk} can no longer be cancelled.")
    AuditEvent.objects.create(actor=user, action=AuditEvent.Action.CANCEL, job=job)
    job.refresh_from_db()
    _announce(job)  # nobody is told of a cancel (whoever cancelled knows), but an inbox file goes to failed/
    return job


# -- jobs whose worker is gone -------------------------------------------------------------------------
def import_job_mark_lost(*, job: ImportJob, found_by: str) -> bool:
    """End a job whose worker is gone; whether this call ended it (so exactly one caller does).

    Lost are an importing job of selectors.jobs_lost (its lock stale, or no lock and silent for a lease), and a
    validation silent for a lease that has had its VALIDATION_ATTEMPTS. The job fails with code LOST and a
    message saying what to do; the lock is released only if this job still holds it; an AuditEvent "lost" says
    who found it. Decided under the lock row, so an apply committing right now (its fence holds that row) either
    commits first, and is then no longer importing, or finds its lock gone and cannot commit.
    """
    lease = settings.IMPORT_LOCK_LEASE_SECONDS
    with transaction.atomic():
        lock_hold()
        if jobs_lost().filter(pk=job.pk).exists():
            stage, message, finished = "apply", APPLY_LOST.format(lease=lease, how=""), "apply_finished_at"
        elif jobs_stalled().filter(pk=job.pk, validate_attempts__gte=VALIDATION_ATTEMPTS).exists():
            stage, message, finished = "validation", VALIDATION_LOST.format(lease=lease), "validate_finished_at"
        else:
            return False
        released = lock_release_job(job_id=job.pk)
        ImportJob.objects.filter(pk=job.pk).update(
            status=Status.FAILED, failure_code=LOST, failure_message=message, **{finished: Now()}
        )
        AuditEvent.objects.create(
            action=AuditEvent.Action.LOST,
            job=job,
            details={"stage": stage, "found_by": found_by, "lock_released": released, "requeued": False},
        )
    log.warning("import job %s is lost (%s; found by %s): marked failed", job.pk, stage, found_by)
    job.refresh_from_db()
    _announce(job, EVENT_LOST)
    return True


def import_job_validate_again(*, job: ImportJob, found_by: str = BY_SWEEP) -> bool:
    """A validation whose worker died, with an attempt left: back to uploaded and queued (on commit); whether it was."""
    with transaction.atomic():
        again = jobs_stalled().filter(pk=job.pk, validate_attempts__lt=VALIDATION_ATTEMPTS)
        if not again.update(status=Status.UPLOADED):
            return False
        AuditEvent.objects.create(
            action=AuditEvent.Action.LOST,
            job=job,
            details={"stage": "validation", "found_by": found_by, "lock_released": False, "requeued": True},
        )
        _queue(VALIDATE_TASK, job.pk)
    log.warning("the validation of import job %s was lost (found by %s): queued again", job.pk, found_by)
    job.refresh_from_db()
    return True


def import_jobs_sweep() -> dict[str, list[int]]:
    """The periodic check (SWEEP_TASK, every IMPORT_SWEEP_SECONDS): every job whose worker is gone ends.

    Lost applies fail (LOST) and free the lock; died validations run once more, then fail (LOST).
    Returns the ids of the jobs it ended and of those it queued again.
    """
    lost = [job.pk for job in jobs_lost() if import_job_mark_lost(job=job, found_by=BY_SWEEP)]
    requeued = []
    for job in jobs_stalled():
        if job.validate_attempts < VALIDATION_ATTEMPTS:
            if import_job_validate_again(job=job):
                requeued.append(job.pk)
        elif import_job_mark_lost(job=job, found_by=BY_SWEEP):
            lost.append(job.pk)
    return {"lost": lost, "requeued": requeued}


# -- retention ---------------------------------------------------------------------------------------------
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.REVERTED)


def import_files_purge(*, days: int | None = None) -> list[int]:
    """Delete the stored uploads and error reports of jobs finished more than `days` (IMPORT_RETENTION_DAYS) ago.

    The jobs stay, with their counts, first errors and audit trail; files_removed_at says when their files went.
    Files the command line read in place are not the importer's to delete. Returns the ids of the jobs purged.
    """
    days = settings.IMPORT_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    old = ImportJob.objects.filter(status__in=FINISHED, created_at__lt=cutoff, files_removed_at__isnull=True)
    purged = []
    for job in old.exclude(file="", error_report=""):
        for stored in (job.file, job.error_report):
            if stored:
                stored.storage.delete(stored.name)
        ImportJob.objects.filter(pk=job.pk).update(file="", error_report="", files_removed_at=Now())
        purged.append(job.pk)
    if purged:
        log.info("removed the stored files of %s finished import jobs older than %s days", len(purged), days)
    return purged


# -- the lock ------------------------------------------------------------------------------------------
def import_lock_unlock(*, user, reason: str = "") -> ImportJob | None:
    """A site admin's Unlock: release the import lock, mark its job failed (if any), audit it; the job or None."""
    job = lock_unlock(user=user, reason=reason)
    if job is not None:
        job.refresh_from_db()
        _announce(job)
    return job


def error_report_copy(job: ImportJob, destination: Path) -> bool:
    if not job.error_report:
        return False
    with job.error_report.open("rb") as src, open(destination, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return True


# -- revert, in a worker ------------------------------------------------------------------------------------
REVERT_CONFIRM = (
    "This revert decides on {count:,} records (everything import #{job} created). To confirm, type the number "
    "{count} in the box."
)
REVERT_UNDER_WAY = "A revert of import #{job} is already under way; this page shows its progress."
REVERT_WORKER_STOPPED = (
    "The worker reverting this import stopped (its process died, was killed or hung: no heartbeat for longer than "
    "the lease of {lease} s). Its transaction was rolled back: nothing was removed. Revert again."
)


class RevertUnconfirmed(RevertRefused):
    """A large revert without the typed number (or with a wrong one)."""


def import_job_revert_later(*, job: ImportJob, user, confirm_count: int | None = None) -> RevertRun:
    """A site admin's "Revert import": refused as the revert itself would be (not succeeded, already reverted, a dry
    run), or without the typed number for a large one; otherwise queued for a worker (on commit). A revert whose
    worker died (silent for a lease) may be asked for again: its transaction was rolled back."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)  # one request at a time per job
        refusal = revert_refusal(job_id=job.pk, status=job.status, dry_run=job.dry_run, reverted_at=job.reverted_at)
        if refusal:
            raise RevertRefused(refusal)
        expected = revert_confirm_count(job=job)
        if expected is not None and confirm_count != expected:
            raise RevertUnconfirmed(REVERT_CONFIRM.format(count=expected, job=job.pk))
        run = RevertRun.objects.filter(job=job).first()
        under_way = run is not None and (
            run.status == RevertRun.Status.QUEUED
            or (run.status == RevertRun.Status.RUNNING and not RevertRun.objects.filter(silent(), pk=run.pk).exists())
        )
        if under_way:
            raise RevertRefused(REVERT_UNDER_WAY.format(job=job.pk))
        run = run or RevertRun(job=job)
        run.status, run.requested_by, run.requested_at = RevertRun.Status.QUEUED, user, timezone.now()
        run.started_at = run.finished_at = run.heartbeat_at = None
        run.progress_done, run.progress_total, run.failure_message = 0, revert_size(job), ""
        run.save()
        _queue(REVERT_TASK, job.pk)
    return run


class RevertPulse(Pulse):
    """The revert's heartbeat and progress, on its RevertRun row (the revert's transaction holds the job's and the
    lock's rows until it commits)."""

    def beat(self) -> None:
        try:
            done, total = self.done, max(self.total, self.done)
            RevertRun.objects.filter(job_id=self.job_id).update(
                progress_done=done, progress_total=total, heartbeat_at=Now()
            )
        except Exception:  # a missed beat is retried
            log.warning("revert pulse for job %s failed", self.job_id, exc_info=True)
            close_old_connections()


def import_job_revert_run(*, job: ImportJob) -> RevertRun | None:
    """The worker's revert of a queued RevertRun: claimed once (a task delivered again finds it running; if its worker
    is gone, the run fails, and nothing was removed), then lms_import.revert.import_job_revert with a heartbeat and
    progress. Refusals (reverted meanwhile, an import running) end the run failed with their message."""
    claimed = RevertRun.objects.filter(job=job, status=RevertRun.Status.QUEUED).update(
        status=RevertRun.Status.RUNNING, started_at=Now(), heartbeat_at=Now(), progress_done=0
    )
    if not claimed:
        stopped = RevertRun.objects.filter(silent(), job=job, status=RevertRun.Status.RUNNING)
        stopped.update(
            status=RevertRun.Status.FAILED,
            finished_at=Now(),
            failure_message=REVERT_WORKER_STOPPED.format(lease=settings.IMPORT_LOCK_LEASE_SECONDS),
        )
        return RevertRun.objects.filter(job=job).first()
    run = RevertRun.objects.select_related("requested_by").get(job=job)
    outcome = {"status": RevertRun.Status.DONE, "failure_message": ""}
    with RevertPulse(job.pk) as pulse:
        pulse.progress(0, run.progress_total)
        try:
            import_job_revert(job=job, user=run.requested_by, on_progress=pulse.progress)
        except RevertRefused as refused:
            outcome = {"status": RevertRun.Status.FAILED, "failure_message": str(refused)}
        except Exception:
            reference = incident_reference(job)
            log.exception("revert of import job %s failed (reference %s)", job.pk, reference)
            outcome = {
                "status": RevertRun.Status.FAILED,
                "failure_message": f"The revert stopped because of an unexpected error; it was rolled back and nothing "
                f"was removed. Reference {reference}: the site's operators find the details in the server log.",
            }
    RevertRun.objects.filter(pk=run.pk).update(
        finished_at=Now(),
        heartbeat_at=Now(),
        progress_done=pulse.done,
        progress_total=max(pulse.total, pulse.done),
        **outcome,
    )
    run.refresh_from_db()
    return run
