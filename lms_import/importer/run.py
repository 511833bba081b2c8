"""Driving one pass over a file: read → check → plan → apply, batch by batch.

`pass_run` does the whole pass in this process: a dry run, and the apply on databases other
than PostgreSQL. On PostgreSQL the apply is split over two processes (`pass_run_parallel`): a
producer (`python -m lms_import.importer.producer`) reads, checks and plans, and sends each batch
as ready-to-COPY CSV; this process, which holds the lock and the one apply transaction, only
writes. Python's parsing and checking then overlap PostgreSQL's work on the other core.
Both run the same pass_run; only the sink a batch goes to differs.
"""

import gc
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from core.findings import (
    EXPLANATIONS,
    F_COURSE_REQUIRED,
    F_EMPTY,
    W_ALREADY_IMPORTED,
    W_AUTO_COMPLETE,
    W_LEGACY_NOT_IN_PARS,
    W_PENDING_LEARNERS,
    W_PROFILE_CONFLICT,
    W_SHELLS_CREATED,
    FileProblem,
    Finding,
)
from enrollments.models import PendingRecord
from enrollments.services import pending_records_apply
from lms_import.models import ImportJob

from . import lookups
from .apply import CopyWriter, SerializingWriter, StagedWriter, Writer, writer_for_connection
from .check import Checker, CheckTotals
from .lock import LockLost
from .lookups import CourseInfo
from .plan import Created, Planner
from .read import CsvSource, FileFacts, encoding_warning, file_inspect, recorded_facts
from .report import ErrorReport
from .schema import header_read
from .workbook import WorkbookSource, source_open

log = logging.getLogger("lms_import.importer")
DEFAULT_SETTINGS = "lms_import.settings"
LOST = "The import was unlocked or taken over while it ran; nothing was committed."


class Progress:
    """What a pass reports to: rows done of rows expected, and whether the lock was lost meanwhile."""

    def progress(self, done: int, total: int | None = None) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def lost(self) -> bool:
        return False


class Stopwatch:
    """Seconds spent per stage of a pass, for the log (operators tuning a slow import look here first)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def __str__(self) -> str:
        return ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in self.seconds.items())


@dataclass
class PassResult:
    totals: CheckTotals
    created: Created
    warnings: list[dict]
    stopped: bool
    report_path: str
    report_kept: list[dict] = field(default_factory=list)
    report_count: int = 0
    report_groups: list[dict] = field(default_factory=list)  # findings counted by code, column and value


@contextmanager
def collector_relaxed() -> Iterator[None]:
    """Fewer passes of the cyclic garbage collector while a pass runs.

    Rows make a few short-lived objects each and no reference cycles; with the default thresholds the
    collector ran every 700 allocations and took ~15% of the checking process's CPU.
    """
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def job_source_open(job: ImportJob, path: Path, facts: FileFacts) -> CsvSource | WorkbookSource:
    """The rows of the job's file: its CSV rows, or its workbook sheet's (the one it names, else the first)."""
    return source_open(
        path,
        facts,
        max_rows=settings.IMPORT_MAX_ROWS,
        max_columns=settings.IMPORT_MAX_COLUMNS,
        sheet=job.sheet,
    )


def header_sample(job: ImportJob, path: Path, *, rows: int) -> tuple[list[str], list[list[str]]]:
    """The header of a job's file and its first `rows` rows (the mapping step's samples), read with the facts its
    validation recorded: only as far as those rows, never the whole file."""
    facts = recorded_facts(job)
    if facts is None:
        facts = file_inspect(
            path, max_bytes=settings.IMPORT_MAX_UPLOAD_BYTES, max_workbook_bytes=settings.IMPORT_MAX_WORKBOOK_BYTES
        )
    with job_source_open(job, path, facts) as source:
        first = next(source.batches(rows, settings.IMPORT_BATCH_BYTES), [])
        return list(source.header), [fields for _, fields in first]


def pass_facts(job: ImportJob, path: Path) -> tuple[CourseInfo | None, FileFacts]:
    """Before any transaction: check the course and what the file is, and record the file's facts on the job.

    `path` is the job's file on this machine (lms_import.services.job_file_local: the stored upload, a copy of it
    when the storage is a bucket, or the command line's file read in place)."""
    course = None
    if job.importer == ImportJob.Importer.COURSE:
        if job.course is None or job.course.is_shell:
            raise FileProblem(
                Finding(
                    F_COURSE_REQUIRED,
                    "The course-level importer needs a course: choose one in the form (or pass --course ID). "
                    + ("The chosen id is a course shell; shells only take the global importer." if job.course else ""),
                )
            )
        course = lookups.courses_find({job.course.external_course_id})[job.course.external_course_id]
    facts = file_inspect(
        path,
        max_bytes=settings.IMPORT_MAX_UPLOAD_BYTES,
        max_workbook_bytes=settings.IMPORT_MAX_WORKBOOK_BYTES,
    )
    job.sha256, job.encoding, job.file_size = facts.sha256, facts.encoding_label, facts.size
    ImportJob.objects.filter(pk=job.pk).update(sha256=job.sha256, encoding=job.encoding, file_size=job.file_size)
    return course, facts


def pass_open(job: ImportJob, path: Path) -> tuple[CourseInfo | None, CsvSource | WorkbookSource]:
    """pass_facts, and the file opened for its rows (its delimiter or sheet, and how many rows to expect)."""
    course, facts = pass_facts(job, path)
    source = job_source_open(job, path, facts)
    source_record(job, source)
    return course, source


def source_record(job: ImportJob, source: CsvSource | WorkbookSource) -> None:
    """What opening the file told: its delimiter or the sheet read, and the rows to expect (the progress bar's)."""
    job.delimiter, job.sheet, job.progress_total = source.delimiter, source.sheet, source.expected_rows
    ImportJob.objects.filter(pk=job.pk).update(
        delimiter=job.delimiter, sheet=job.sheet, progress_total=job.progress_total
    )


def pass_run(
    job: ImportJob,
    course: CourseInfo | None,
    source: CsvSource | WorkbookSource,
    *,
    write: bool,
    pulse: Progress,
    sink: "Sink",
) -> PassResult:
    """check → plan → (sink) over every row of the file. Raises FileProblem for file-level problems."""
    global_importer = job.importer == ImportJob.Importer.GLOBAL
    pulse.progress(0, source.expected_rows)
    facts = source.facts
    with source, collector_relaxed():
        header = header_read(source.header, global_importer=global_importer, mapping=job.mapping_applied or None)
        credit_types = lookups.credit_types_all()
        now = timezone.now()
        checker = Checker(
            header=header,
            importer_global=global_importer,
            course=course,
            credit_types=credit_types,
            zone=timezone.get_current_timezone(),
            now=now,
            job_id=job.pk,
            create_accounts=job.create_accounts,
            expected_rows=source.expected_rows,
            fast=not settings.IMPORT_REFERENCE_RULES,
            credit_type_labels=lookups.credit_type_labels(),
        )
        planner = Planner(
            writer=sink.writer(),
            learners=checker.learners,
            job_id=job.pk,
            global_importer=global_importer,
            create_accounts=job.create_accounts,
            credit_types=credit_types,
            now=now,
        )
        report = ErrorReport(source.header, keep=settings.IMPORT_MAX_STORED_ERRORS)
        waiting = write and PendingRecord.objects.filter(status=PendingRecord.STATUS_PENDING).exists()
        stopped = False
        clock = Stopwatch()
        try:
            batches = source.batches(settings.IMPORT_BATCH_ROWS, settings.IMPORT_BATCH_BYTES)
            while True:
                with clock("read"):
                    batch = next(batches, None)
                if batch is None:
                    break
                if pulse.lost:
                    raise LockLost(LOST)
                with clock("check"):
                    checked = checker.check_batch(batch)
                    report.add(checked)
                # Without "skip invalid rows" one bad row means nothing is written: stop writing, keep checking
                # so that the report lists every problem at once.
                stopped = stopped or (write and checker.totals.invalid > 0 and not job.skip_invalid)
                if not stopped:
                    with clock("plan"):
                        new_accounts = planner.plan_batch([c.row for c in checked if c.valid])
                    with clock("write"):
                        sink.flush(planner.writer, new_accounts if waiting else [])
                pulse.progress(batch[-1][0] - 1)
            if not checker.totals.rows:
                raise FileProblem(
                    Finding(
                        F_EMPTY,
                        "The file has a header but no course records below it. Export the records again, with "
                        "their rows, and upload that file.",
                        line=2,
                    )
                )
            if not stopped:
                sink.finish()
            log.info("import job %s (%s rows): %s", job.pk, checker.totals.rows, clock)
        except BaseException:
            report.discard()
            raise
        warnings = header.warnings + [w for w in [encoding_warning(facts)] if w]
        warnings = [_warning(code, message, count) for code, message, count in warnings]
        warnings += _row_warnings(job, checker.totals, course, global_importer)
        pulse.progress(source.rows_read)
    path = report.close()
    return PassResult(
        checker.totals, planner.created, warnings, stopped, str(path), report.kept, report.count, report.group_list()
    )


class Sink:
    """Where planned batches go: written here (LocalSink), or sent to the writing process (PipeSink)."""

    def writer(self) -> Writer:
        raise NotImplementedError

    def flush(self, writer: Writer, new_accounts: list[int]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the last batch: whatever waits for every batch to be written."""


class LocalSink(Sink):
    def __init__(self, *, dry_run: bool):
        self.dry_run = dry_run
        self.new_accounts = array("q")

    def writer(self) -> Writer:
        return writer_for_connection(dry_run=self.dry_run)

    def flush(self, writer: Writer, new_accounts: list[int]) -> None:
        writer.flush()
        self.new_accounts.extend(new_accounts)

    def finish(self) -> None:
        held_rows_apply(self.new_accounts)


class StagingSink(LocalSink):
    """SQLite's apply (see apply.StagedWriter): the pass checks, plans and stages; `write` then writes it all,
    in the apply's short transaction."""

    def __init__(self) -> None:
        super().__init__(dry_run=False)
        self._writer = StagedWriter()

    def writer(self) -> Writer:
        return self._writer

    def finish(self) -> None:
        pass  # nothing is written yet: the held rows wait for write()

    def write(self) -> None:
        self._writer.replay()
        held_rows_apply(self.new_accounts)

    def close(self) -> None:
        self._writer.close()


def held_rows_apply(new_accounts) -> None:
    """Learners who got an account in this import may have rows waiting from earlier imports: apply them.

    Once every batch is written, not batch by batch: until then, every path checks the file against the holding
    table as the import found it (the producer process cannot see what the writing process changes).
    """
    step = settings.IMPORT_BATCH_ROWS
    for start in range(0, len(new_accounts), step):
        ids = list(new_accounts[start : start + step])
        pending_records_apply(users=get_user_model().objects.filter(pk__in=ids))


# -- the two-process apply (PostgreSQL) ------------------------------------------------------------------
def pipe_end(fd: int, *, reading: bool) -> Connection:
    """A message connection (length-prefixed pickles, multiprocessing.connection) over one end of a pipe.

    It takes its own copy of the descriptor: closing it leaves the caller's file object alone.
    """
    return Connection(os.dup(fd), readable=reading, writable=not reading)


class PipeSink(Sink):
    """In the producer: each planned batch leaves as ready-to-COPY CSV text."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def writer(self) -> Writer:
        return SerializingWriter()

    def flush(self, writer: Writer, new_accounts: list[int]) -> None:
        self.connection.send(("batch", writer.take(), new_accounts))


class PipeProgress(Progress):
    def __init__(self, connection: Connection):
        self.connection = connection
        self.total = 0

    def progress(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.connection.send(("progress", done, self.total))


def pass_run_parallel(
    job: ImportJob, course: CourseInfo | None, path: Path, facts: FileFacts, *, pulse: Progress
) -> PassResult:
    """The apply on PostgreSQL: a producer process checks and plans; this process COPYs, in its transaction."""
    spec = {
        "job": job.pk,
        "path": str(path),  # the file pass_open read: the producer reads the same one
        "course": course,  # as pass_open found it: the producer checks against the same course
        "facts": facts,
        "database": {k: connection.settings_dict[k] for k in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
        "settings": {name: getattr(settings, name) for name in dir(settings) if name.startswith("IMPORT_")},
        "time_zone": settings.TIME_ZONE,
    }
    environment = os.environ | {"DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)}
    producer = subprocess.Popen(
        [sys.executable, "-m", "lms_import.importer.producer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=settings.BASE_DIR,
        env=environment,
    )
    messages = None
    try:
        with pipe_end(producer.stdin.fileno(), reading=False) as to_producer:
            to_producer.send(spec)
        producer.stdin.close()
        writer = CopyWriter()
        new_accounts = array("q")
        messages = MessagesAhead(pipe_end(producer.stdout.fileno(), reading=True))
        producer.stdout.close()
        while True:
            message = messages.get()
            if pulse.lost:
                raise LockLost(LOST)
            if message is None:
                raise RuntimeError(f"The checking process ended unexpectedly (exit code {producer.wait()}).")
            kind = message[0]
            if kind == "batch":
                _, payload, batch_accounts = message
                writer.payload_write(payload)
                new_accounts.extend(batch_accounts)
            elif kind == "progress":
                pulse.progress(message[1], message[2])
            elif kind == "problem":
                raise FileProblem(message[1])
            elif kind == "error":
                raise RuntimeError(message[1])
            elif kind == "done":
                if not message[1].stopped:
                    held_rows_apply(new_accounts)
                job.refresh_from_db(fields=["delimiter", "sheet", "progress_total"])  # as the producer found them
                return message[1]
    finally:
        if producer.poll() is None:
            producer.kill()
        producer.wait()
        if messages is not None:
            messages.close()


class MessagesAhead:
    """The producer's messages, read by a thread up to `depth` messages ahead of the writing.

    A pipe holds 64 KB and a batch is a megabyte or two: read only when the writer was ready, each process
    waited for the other whenever a batch took one of them longer than the last. None follows the last message.
    """

    def __init__(self, connection: Connection, depth: int = 8):
        self.connection = connection
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._read, name="producer-reader", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.connection.recv()
            except (OSError, EOFError, ValueError):
                message = None  # the producer is gone (or sent half a message as it died)
            self.queue.put(message)
            if message is None or message[0] in ("done", "problem", "error"):
                return

    def get(self) -> tuple | None:
        return self.queue.get()

    def close(self) -> None:
        """Once the producer has ended: let the thread reach the end of the stream (it may wait on a full queue)."""
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self.connection.close()


def counted(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _warning(code: str, message: str, count: int) -> dict:
    return {"code": code, "message": message, "count": count, "explanation": EXPLANATIONS.get(code, "")}


def _row_warnings(job: ImportJob, totals: CheckTotals, course, global_importer: bool) -> list[dict]:
    found = []
    if totals.pending_rows:
        found.append(
            _warning(
                W_PENDING_LEARNERS,
                f"Held in the holding table for learners without an account: {counted(totals.pending_rows, 'row')} "
                f"of {counted(totals.pending_learners, 'learner')}. Each is applied when an account with its e-mail "
                f"or external id is created; to create the accounts now, import with 'Create accounts for unknown "
                f"learners'.",
                totals.pending_rows,
            )
        )
    if totals.shells:
        names = ", ".join(totals.shells[:10]) + (
            f" and {len(totals.shells) - 10} more" if len(totals.shells) > 10 else ""
        )
        found.append(
            _warning(
                W_SHELLS_CREATED,
                f"{counted(len(totals.shells), 'course shell')} will be created: {names}.",
                len(totals.shells),
            )
        )
    if global_importer and totals.valid:
        found.append(
            _warning(
                W_LEGACY_NOT_IN_PARS,
                f"{counted(totals.valid, 'record')} of this global import are legacy data: they will not be "
                f"included in PARS reports. Use the course-level importer for records that must be reported.",
                totals.valid,
            )
        )
    if totals.profile_conflicts:
        found.append(
            _warning(
                W_PROFILE_CONFLICT,
                f"{counted(totals.profile_conflicts, 'row')} {'carries' if totals.profile_conflicts == 1 else 'carry'} "
                f"learner data that differs from the learner's profile; the profile keeps its values.",
                totals.profile_conflicts,
            )
        )
    earlier = (
        ImportJob.objects.filter(sha256=job.sha256, status=ImportJob.Status.SUCCEEDED, dry_run=False)
        .exclude(pk=job.pk)
        .order_by("-created_at")
        .first()
    )
    if earlier:
        found.append(
            _warning(
                W_ALREADY_IMPORTED,
                f"This exact file was imported before as job #{earlier.pk} on {earlier.created_at:%Y-%m-%d %H:%M}.",
                1,
            )
        )
    if totals.auto_completed:
        names = ", ".join(totals.auto_learners) + (
            f" and {totals.auto_completed - len(totals.auto_learners)} more"
            if totals.auto_completed > len(totals.auto_learners)
            else ""
        )
        if course is not None:
            credit = ", ".join(f"{o.max_credits} {o.machine_name}" for o in course.offers.values()) or "no credit"
            where = f"Course {course.external_course_id} has no required course object"
        else:
            credit = "the maximum of every credit type each course offers"
            courses = ", ".join(totals.auto_courses)
            have = "has" if len(totals.auto_courses) == 1 else "have"
            where = f"{counted(len(totals.auto_courses), 'course')} of this file ({courses}) {have} no required "
            where += "course object"
        found.append(
            _warning(
                W_AUTO_COMPLETE,
                f"{where}, so {counted(totals.auto_completed, 'enrollment')} ({names}) will be completed on "
                f"enrollment and given all available credit ({credit}) regardless of the file. Add a required course "
                f"object to the course first, or acknowledge this to import anyway.",
                totals.auto_completed,
            )
        )
    return found
