"""The inbox (SPEC §12) with a real `celery beat` and real workers: files dropped in folders are imported once each,
never half-written, clean ones confirmed by themselves, and each ends in done/ or failed/ beside its report."""

import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from enrollments.models import Enrollment
from lms_import.models import ColumnMapping, ImportJob
from lms_import.tasks import scan_import_inbox
from tests.conftest import HEADER, csv_text
from tests.test_column_mapping import FOREIGN, MAPPING, ROWS

from .conftest import CLEAN, WITH_ERRORS, csv_bytes, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


@pytest.fixture
def inbox(tmp_path, settings) -> Path:
    root = tmp_path / "inbox"
    for folder in ("CARD101", "_global", "NOPE1"):
        (root / folder).mkdir(parents=True)
    settings.IMPORT_INBOX_DIR = str(root)  # this process settles a job it cancels, as every process may
    return root


def inbox_env(root: Path, **extra) -> dict:
    return {"IMPORT_INBOX_DIR": str(root), "IMPORT_INBOX_SECONDS": "1", "EMAIL_URL": "dummymail://"} | extra


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_beat_takes_each_file_to_its_end(inbox, start_worker, start_beat, course, learner, admin_user):
    env = inbox_env(inbox, IMPORT_INBOX_AUTO_CONFIRM="when_clean")
    worker = start_worker(env=env)
    beat = start_beat(env=env)
    (inbox / "CARD101" / "clean.csv").write_bytes(csv_bytes(CLEAN))
    rows = [["L-9", "ext@example.org", "Ext", "Ernal", "2026-09-01", "1", "2026-09-14", "acpe", "1.00"]]
    legacy_header = HEADER[:4] + ["external_course_id", "title"] + HEADER[4:]
    legacy = [row[:4] + ["OLD-7", "Old course"] + row[4:] for row in rows]
    (inbox / "_global" / "legacy.csv").write_bytes(csv_bytes(legacy, legacy_header))
    (inbox / "NOPE1" / "lost.csv").write_bytes(csv_bytes(CLEAN))
    (inbox / "CARD101" / "workbook.csv").write_bytes(b"PK\x03\x04" + b"\x00" * 100)

    done = inbox / "CARD101" / "done"
    wait_for(lambda: files(done), what="the clean file to be imported", log=[worker, beat])
    job = ImportJob.objects.get(source="inbox: CARD101/clean.csv")
    assert (job.status, job.created_by.username, job.auto_confirm) == ("succeeded", "inbox", "when_clean")
    assert files(done) == [f"job{job.pk}-clean.csv"] and Enrollment.objects.get().import_job == job
    assert job.inbox_file == f"CARD101/done/job{job.pk}-clean.csv"

    shelled = wait_for(lambda: files(inbox / "_global" / "done"), what="the global file", log=[worker, beat])
    legacy_job = ImportJob.objects.get(source="inbox: _global/legacy.csv")
    assert legacy_job.importer == "global" and legacy_job.created_shells == 1 and shelled[0].startswith("job")

    refused = wait_for(lambda: len(files(inbox / "NOPE1" / "failed")) == 2, log=[worker, beat])
    assert refused and files(inbox / "NOPE1" / "failed") == ["lost.csv", "lost.csv.errors.txt"]
    assert "named after no course" in (inbox / "NOPE1" / "failed" / "lost.csv.errors.txt").read_text()
    wait_for(lambda: "workbook.csv.errors.txt" in files(inbox / "CARD101" / "failed"), log=[worker, beat])
    assert "F_NOT_CSV" in (inbox / "CARD101" / "failed" / "workbook.csv.errors.txt").read_text()
    assert not ImportJob.objects.filter(source__in=["inbox: NOPE1/lost.csv", "inbox: CARD101/workbook.csv"]).exists()
    assert files(inbox / "CARD101") == ["claimed", "done", "failed"]

    history = Client()
    history.force_login(admin_user)
    page = history.get("/import/course-records/history/").content.decode()
    assert "inbox: CARD101/clean.csv" in page and "inbox: _global/legacy.csv" in page


def test_auto_confirm_leaves_a_file_with_errors_waiting_and_a_cancel_ends_it(
    inbox, start_worker, start_beat, course, learner, admin_user
):
    env = inbox_env(inbox, IMPORT_INBOX_AUTO_CONFIRM="when_clean")
    worker, beat = start_worker(env=env), start_beat(env=env)
    (inbox / "CARD101" / "errors.csv").write_bytes(csv_bytes(WITH_ERRORS))

    failed = inbox / "CARD101" / "failed"
    wait_for(lambda: len(files(failed)) == 2, what="the file and its report in failed/", log=[worker, beat])
    job = ImportJob.objects.get(source="inbox: CARD101/errors.csv")
    assert job.status == "validated" and job.rows_invalid == 2  # waiting: nothing was imported
    assert files(failed) == [f"job{job.pk}-errors.csv", f"job{job.pk}-errors.errors.csv"]
    report = (failed / f"job{job.pk}-errors.errors.csv").read_text(encoding="utf-8-sig")
    assert "E_CREDITS_OVER_MAX" in report and "E_LEARNER_ID_MISSING" in report
    assert not Enrollment.objects.exists()

    # Auto-confirm off: even a clean file waits in claimed/ for someone's Import.
    worker.stop()
    beat.stop()
    env = inbox_env(inbox, IMPORT_INBOX_AUTO_CONFIRM="never")
    worker, beat = start_worker(env=env), start_beat(env=env)
    (inbox / "CARD101" / "clean.csv").write_bytes(csv_bytes(CLEAN))
    waiting = wait_for(
        lambda: ImportJob.objects.filter(source="inbox: CARD101/clean.csv", status="validated").first(),
        what="the clean file to be checked",
        log=[worker, beat],
    )
    assert waiting.auto_confirm == "never" and files(inbox / "CARD101" / "claimed")

    client = Client()
    client.force_login(admin_user)
    client.post(f"/import/jobs/{waiting.pk}/", {"action": "cancel"})
    wait_for(lambda: f"job{waiting.pk}-clean.csv" in files(failed), what="the cancelled file", log=[worker, beat])
    assert not files(inbox / "CARD101" / "claimed")


def test_a_file_written_slowly_is_not_taken_half_written(inbox, start_worker, start_beat, course):
    env = inbox_env(inbox, IMPORT_INBOX_AUTO_CONFIRM="never")
    worker, beat = start_worker(env=env), start_beat(env=env)
    rows = [[f"L-{n}", f"learner{n}@example.org", "", "", "2026-09-01", "0", "", "", ""] for n in range(400)]
    content = csv_bytes(rows)
    path = inbox / "CARD101" / "slow.csv"
    chunks = [content[i : i + len(content) // 8 + 1] for i in range(0, len(content), len(content) // 8 + 1)]

    def write_slowly():
        with path.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                out.flush()
                time.sleep(0.5)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    writer.join()
    wait_for(lambda: ImportJob.objects.filter(status="validated").exists(), what="the file's job", log=[worker, beat])

    job = ImportJob.objects.get()  # one job, of the whole file
    assert job.rows_total == 400 and job.rows_invalid == 0 and job.file_size == len(content)
    assert worker.log().count("scan_import_inbox") > 8  # rounds ran while it was written


def test_two_workers_racing_for_one_folder_take_each_file_exactly_once(inbox, start_worker, course):
    env = inbox_env(inbox, IMPORT_INBOX_AUTO_CONFIRM="never")
    workers = [start_worker(concurrency=2, env=env), start_worker(concurrency=2, env=env)]
    folder = inbox / "CARD101"
    names: list[str] = []
    for round_number in range(5):
        batch = [f"round{round_number}-file{n}.csv" for n in range(8)]
        for name in batch:
            (folder / name).write_bytes(csv_bytes([[f"{name}", "", "", "", "2026-09-01", "0", "", "", ""]]))
        names += batch

        deadline = time.monotonic() + 60
        while any(name in files(folder) for name in batch):  # both workers scan again and again, at once
            assert time.monotonic() < deadline, [w.log()[-3000:] for w in workers]
            for _ in range(4):
                scan_import_inbox.delay()
            time.sleep(0.1)

        # A file leaves the folder when it is claimed; its job is committed a moment later.
        expected = len(names)
        wait_for(lambda: ImportJob.objects.count() >= expected, timeout=30, what="the jobs", log=workers)  # noqa: B023 (called at once)
        sources = list(ImportJob.objects.values_list("source", flat=True))
        assert sorted(sources) == sorted(f"inbox: CARD101/{name}" for name in names), round_number
    time.sleep(1)  # no late second job for any file
    assert ImportJob.objects.count() == len(names)
    claimed = files(folder / "claimed")
    assert len(claimed) == len(names) == 40 and sorted(c.split("-", 1)[1] for c in claimed) == sorted(names)
    assert len(set(ImportJob.objects.values_list("inbox_file", flat=True))) == 40
    scanned_by = [w for w in workers if "scan_import_inbox" in w.log()]
    assert len(scanned_by) == 2  # both took part in the race


def test_a_folders_mapping_txt_names_the_mapping_its_files_are_read_with(
    inbox, start_worker, start_beat, course, learner
):
    ColumnMapping.objects.create(name="Registration export", columns=MAPPING)
    env = inbox_env(inbox, IMPORT_INBOX_AUTO_CONFIRM="when_clean")
    worker, beat = start_worker(env=env), start_beat(env=env)
    (inbox / "CARD101" / "mapping.txt").write_text("Registration export\n")
    (inbox / "CARD101" / "theirs.csv").write_text(csv_text(ROWS[:2], FOREIGN))
    (inbox / "_global" / "mapping.txt").write_text("Registraton export\n")
    (inbox / "_global" / "legacy.csv").write_text(csv_text(ROWS[:2], FOREIGN))

    wait_for(lambda: files(inbox / "CARD101" / "done"), what="the mapped file to be imported", log=[worker, beat])
    job = ImportJob.objects.get(source="inbox: CARD101/theirs.csv")
    assert job.status == "succeeded" and job.mapping.name == "Registration export" and job.created_credits == 2
    assert Enrollment.objects.get().user == learner
    assert files(inbox / "CARD101") == ["claimed", "done", "mapping.txt"]  # the mapping stays for the next files

    failed = inbox / "_global" / "failed"
    wait_for(lambda: len(files(failed)) == 2, what="the file of the folder with an unknown mapping", log=[worker, beat])
    assert files(failed) == ["legacy.csv", "legacy.csv.errors.txt"]
    reason = (failed / "legacy.csv.errors.txt").read_text()
    assert reason.startswith("_global/mapping.txt: There is no saved column mapping named 'Registraton export'.")
    assert "The saved mappings are: 'Registration export'." in reason
    assert not ImportJob.objects.filter(source="inbox: _global/legacy.csv").exists()
