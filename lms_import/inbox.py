"""The inbox (SPEC §12): files dropped in a folder are imported without a person at the browser.

    IMPORT_INBOX_DIR/
      CARD101/                  the course-level importer, into the course whose external_course_id is CARD101
        records.csv             waiting: taken once it has the same size (and time) at two looks, a round apart
        claimed/                taken by a worker (job.inbox_file names it) until its job ends
        done/job42-records.csv  imported (with job42-records.errors.csv beside it if it has an error report)
        failed/job43-records.csv, job43-records.errors.csv
      _global/                  the global (legacy) importer
      CARD101/mapping.txt       optional, one line: the saved column mapping (SPEC §13) the folder's files are read with
      .inbox-looks.json         the last look at each waiting file

Celery beat sends the scan (inbox_scan) every IMPORT_INBOX_SECONDS. A file is claimed by renaming it into
claimed/: a rename of one name succeeds once, so of two workers racing for a file exactly one takes it. The job is
made through lms_import.services like any upload (stored through Django's storage, so any worker can check it),
as IMPORT_INBOX_USER's, with IMPORT_INBOX_AUTO_CONFIRM. When the job ends — imported, failed, lost, cancelled, or
checked with errors so that it cannot be imported as it is — the services queue inbox_settle, which moves the file
to done/ or failed/ with its error report. A workbook (.xlsx, .xls, .ods) is imported from its first sheet. A file
that is neither a CSV file nor a workbook, or that sits in a folder named after no course, is moved to failed/ at
once with a .errors.txt saying why; no job is made for it. So is every file of a folder whose mapping.txt names no
saved column mapping.

Every worker that may take the scan must see IMPORT_INBOX_DIR (it is a shared directory, like the inboxes that
other systems drop files into).
"""

import csv
import json
import logging
import os
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import IntegrityError

from core.csv_safety import csv_safe_reversible
from courses.models import Course

from .models import ImportJob
from .selectors import EVENT_FAILED, EVENT_LOST, EVENT_SUCCEEDED, job_outcome
from .services import MappingRefused, UploadRefused, column_mapping_find, import_job_create

log = logging.getLogger(__name__)

GLOBAL_FOLDER = "_global"
CLAIMED, DONE, FAILED = "claimed", "done", "failed"
LOOKS_FILE = ".inbox-looks.json"
# Not files to import: the folder's column mapping (SPEC §13), and what other programs write while they copy.
MAPPING_FILE = "mapping.txt"  # one line: the name of the saved column mapping the folder's files are read with
IGNORED_NAMES = {MAPPING_FILE}
IGNORED_PREFIXES = (".", "~$")
IGNORED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".errors.txt", ".errors.csv")

NO_SUCH_COURSE = (
    "The inbox folder {folder!r} is named after no course: name a folder after a course's external_course_id for "
    "the course-level importer, or put the file in _global/ for the global importer."
)


def inbox_root() -> Path | None:
    return Path(settings.IMPORT_INBOX_DIR) if settings.IMPORT_INBOX_DIR else None


# -- the scan ----------------------------------------------------------------------------------------------
def inbox_scan() -> dict[str, list]:
    """One round over every inbox folder: claim the files that stopped changing, refuse what cannot be imported,
    put back claims whose worker died, settle claimed files whose job has ended. What it did, by file."""
    done: dict[str, list] = {"claimed": [], "waiting": [], "refused": [], "returned": []}
    root = inbox_root()
    if root is None:
        return done
    if not root.is_dir():
        log.warning("IMPORT_INBOX_DIR %s is not a directory; nothing to scan", root)
        return done
    earlier = _looks_read(root)
    looks: dict[str, list] = {}
    now = time.time()
    # Two looks "a round apart" even when rounds bunch up (a worker that was busy takes two scans in a row).
    apart = max(settings.IMPORT_INBOX_SECONDS / 2, 0.5)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(IGNORED_PREFIXES)):
        _claims_check(root, folder, done)
        for path in _waiting_files(folder):
            key = f"{folder.name}/{path.name}"
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # another worker took it meanwhile
            look = [stat.st_size, stat.st_mtime_ns]
            seen = earlier.get(key) or [None, None, now]
            if seen[:2] != look:  # new, or still being written: the next round looks again
                looks[key] = [*look, now]
                done["waiting"].append(key)
                continue
            if now - seen[2] < apart:  # the same, but looked at only just now
                looks[key] = seen
                done["waiting"].append(key)
                continue
            job = _claim(root, folder, path, done)
            if job is not None:
                done["claimed"].append(job.pk)
    _looks_write(root, looks)
    return done


def _waiting_files(folder: Path) -> list[Path]:
    found = []
    for entry in os.scandir(folder):
        name = entry.name
        if not entry.is_file(follow_symlinks=False) or name in IGNORED_NAMES:
            continue
        if name.startswith(IGNORED_PREFIXES) or name.lower().endswith(IGNORED_SUFFIXES):
            continue
        found.append(Path(entry.path))
    return sorted(found)


def _looks_read(root: Path) -> dict[str, list]:
    """{"<folder>/<file>": [size, mtime_ns, when that size and time were first seen]}"""
    try:
        return json.loads((root / LOOKS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _looks_write(root: Path, looks: dict[str, list]) -> None:
    """Replaced whole (a rename), so that a scan running at the same time reads one look or the other, never half."""
    temporary = root / f"{LOOKS_FILE}.{uuid.uuid4().hex}"
    temporary.write_text(json.dumps(looks))
    os.replace(temporary, root / LOOKS_FILE)


def _claim(root: Path, folder: Path, path: Path, done: dict) -> ImportJob | None:
    """Take the file (rename it into claimed/) and make its job; None if another worker took it first or it was
    refused (then it is in failed/, with why)."""
    course = None
    if folder.name != GLOBAL_FOLDER:
        course = Course.objects.filter(external_course_id=folder.name, kind=Course.KIND_COURSE).first()
        if course is None:
            if _refuse(folder, path, NO_SUCH_COURSE.format(folder=folder.name)):
                done["refused"].append(f"{folder.name}/{path.name}")
            return None
    try:
        mapping = _folder_mapping(folder)
    except MappingRefused as refused:
        if _refuse(folder, path, f"{folder.name}/{MAPPING_FILE}: {refused}"):
            done["refused"].append(f"{folder.name}/{path.name}")
        return None
    claimed = folder / CLAIMED / f"{uuid.uuid4().hex[:12]}-{path.name}"
    claimed.parent.mkdir(exist_ok=True)
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return None  # another worker claimed it
    try:
        with claimed.open("rb") as opened:
            return import_job_create(
                user=_inbox_user(),
                importer=ImportJob.Importer.GLOBAL if course is None else ImportJob.Importer.COURSE,
                course=course,
                upload=File(opened, name=path.name),
                filename=path.name,
                queue_validation=True,
                auto_confirm=settings.IMPORT_INBOX_AUTO_CONFIRM,
                source=f"inbox: {folder.name}/{path.name}",
                inbox_file=str(claimed.relative_to(root)),
                mapping=mapping,
            )
    except UploadRefused as refused:
        if _refuse(folder, claimed, str(refused), name=path.name):
            done["refused"].append(f"{folder.name}/{path.name}")
    except Exception:
        log.exception("the inbox could not make a job of %s; it is put back for the next round", path)
        os.rename(claimed, path)
    return None


def _folder_mapping(folder: Path):
    """The saved column mapping named by the folder's mapping.txt (its first non-blank line), or None without one;
    MappingRefused when it names no saved mapping."""
    try:
        text = (folder / MAPPING_FILE).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    name = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return column_mapping_find(name=name) if name else None


def _refuse(folder: Path, path: Path, reason: str, *, name: str | None = None) -> bool:
    """Move a file no job is made for to failed/, with <name>.errors.txt saying why; whether this call moved it."""
    name = name or path.name
    target = _free(folder / FAILED, name)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return False
    target.with_name(target.name + ".errors.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("inbox file %s/%s refused: %s", folder.name, name, reason)
    return True


def _free(directory: Path, name: str) -> Path:
    """directory/name, or name with -2, -3… before its suffix if that is taken."""
    directory.mkdir(exist_ok=True)
    candidate, number = directory / name, 1
    stem, suffix = Path(name).stem, Path(name).suffix
    while candidate.exists():
        number += 1
        candidate = directory / f"{stem}-{number}{suffix}"
    return candidate


def _inbox_user():
    """IMPORT_INBOX_USER, made (without a usable password: nobody logs in as it) the first time it is needed."""
    users = get_user_model()
    name = settings.IMPORT_INBOX_USER
    user = users.objects.filter(username=name).first()
    if user is not None:
        return user
    try:
        user = users(username=name, first_name="Import inbox")
        user.set_unusable_password()
        user.save()
        log.info("made the inbox's service user %r", name)
        return user
    except IntegrityError:  # another worker made it just now
        return users.objects.get(username=name)


def _claims_check(root: Path, folder: Path, done: dict) -> None:
    """Claimed files whose job has ended are settled (if their settle task was lost); a claim that has no job a
    lease after it was made (its worker died in between) goes back to the folder for the next round."""
    claimed = folder / CLAIMED
    if not claimed.is_dir():
        return
    for path in sorted(claimed.iterdir()):
        relative = str(path.relative_to(root))
        job = ImportJob.objects.filter(inbox_file=relative).first()
        if job is not None:
            inbox_settle(job=job)
            continue
        try:
            # A rename changes the file's ctime, not its mtime: ctime is when it was claimed.
            age = time.time() - path.stat().st_ctime
        except FileNotFoundError:
            continue
        if age > settings.IMPORT_LOCK_LEASE_SECONDS:
            original = path.name.split("-", 1)[-1]
            try:
                os.rename(path, _free(folder, original))
            except FileNotFoundError:
                continue
            log.warning("inbox claim %s had no job after %.0f s: put back", relative, age)
            done["returned"].append(relative)


# -- the end of an inbox job ---------------------------------------------------------------------------------
def inbox_settle(*, job: ImportJob) -> Path | None:
    """Move an ended job's claimed file to done/ or failed/, its error report beside it; where it went, or None if
    the job has not ended (or its file was settled already)."""
    root = inbox_root()
    if root is None or not job.inbox_file:
        return None
    claimed = root / job.inbox_file
    if claimed.parent.name != CLAIMED:
        return None  # settled already
    outcome = job_outcome(job=job)
    if job.status == ImportJob.Status.CANCELLED or outcome in (EVENT_FAILED, EVENT_LOST):
        where = FAILED
    elif outcome == EVENT_SUCCEEDED:
        where = DONE
    else:
        return None  # on its way, or waiting for someone's confirmation
    directory = claimed.parent.parent / where
    directory.mkdir(exist_ok=True)
    target = directory / f"job{job.pk}-{job.display_name}"
    try:
        os.rename(claimed, target)
    except FileNotFoundError:
        return None  # another worker settled it
    ImportJob.objects.filter(pk=job.pk, inbox_file=job.inbox_file).update(inbox_file=str(target.relative_to(root)))
    _report_write(job, directory / f"job{job.pk}-{Path(job.display_name).stem}.errors.csv", failed=where == FAILED)
    log.info("inbox job %s is %s: %s", job.pk, job.status, target)
    return target


def _report_write(job: ImportJob, path: Path, *, failed: bool) -> None:
    """The job's error report (from its storage), or for a job without one that failed, its findings."""
    if job.error_report:
        try:
            with job.error_report.open("rb") as stored, path.open("wb") as copy:
                for chunk in stored.chunks():
                    copy.write(chunk)
            return
        except FileNotFoundError:
            pass
    if not failed:
        return
    findings = job.errors or [{"code": job.failure_code, "message": job.failure_message}]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "code", "column", "value", "message"])
        for finding in findings:
            row = [finding.get(key) for key in ("line", "code", "column", "value", "message")]
            writer.writerow([csv_safe_reversible("" if cell is None else str(cell)) for cell in row])
