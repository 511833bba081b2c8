"""SPEC §12 in one process: what each job state means to its watchers, the mail and the webhook's signature, the
auto-confirm, the shared upload check, and the inbox's rounds. (tests/integrations/ runs them with real processes.)"""

import hashlib
import hmac
import os
import time
from pathlib import Path

import celery
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from lms_import.inbox import inbox_scan, inbox_settle
from lms_import.models import ImportJob
from lms_import.notifications import notification_mail, notification_recipients, webhook_body, webhook_signature
from lms_import.selectors import job_outcome
from lms_import.services import (
    APPLY_TASK,
    INBOX_SETTLE_TASK,
    MAIL_TASK,
    VALIDATE_TASK,
    WEBHOOK_TASK,
    import_job_create,
    import_job_validate,
    upload_refusal,
)

from .conftest import csv_text

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLEAN = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]]


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    """What would have gone to the broker, as (task name, *arguments); run the code under test in
    `with django_capture_on_commit_callbacks(execute=True):`, as the test's transaction never commits."""
    sent = []
    for name in (VALIDATE_TASK, APPLY_TASK, MAIL_TASK, WEBHOOK_TASK, INBOX_SETTLE_TASK):
        task = celery.current_app.tasks[name]
        monkeypatch.setattr(task, "delay", lambda *args, name=name: sent.append((name, *args)))
    return sent


@pytest.fixture
def alice(db):
    return get_user_model().objects.create(username="alice", email="Alice@Example.org")


def upload(rows=CLEAN, name="records.csv"):
    return ContentFile(csv_text(rows).encode(), name=name)


@pytest.mark.parametrize(
    ("fields", "event"),
    [
        ({"status": "succeeded"}, "succeeded"),
        ({"status": "failed", "failure_code": "F_NOT_CSV"}, "failed"),
        ({"status": "failed", "failure_code": "LOST"}, "lost"),
        ({"status": "validated", "rows_valid": 3}, "needs_confirmation"),
        ({"status": "validated", "rows_valid": 3, "rows_invalid": 1}, "failed"),  # not importable as it is
        ({"status": "validated", "rows_valid": 3, "rows_invalid": 1, "skip_invalid": True}, "needs_confirmation"),
        ({"status": "validated", "rows_valid": 0}, "failed"),
        ({"status": "validated", "rows_valid": 3, "dry_run": True}, "succeeded"),
        ({"status": "validated", "rows_valid": 3, "rows_invalid": 1, "dry_run": True}, "failed"),
        ({"status": "queued"}, None),
        ({"status": "cancelled"}, None),
    ],
)
def test_what_a_job_means_to_whoever_waits_for_it(fields, event):
    assert job_outcome(job=ImportJob(original_filename="f.csv", **fields)) == event


def test_the_uploader_and_the_office_hear_once_each(alice, settings):
    settings.IMPORT_NOTIFY_EMAILS = ["cme@example.org", "alice@example.org", " "]
    job = ImportJob(created_by=alice, original_filename="f.csv")
    assert notification_recipients(job) == ["Alice@Example.org", "cme@example.org"]
    alice.is_active = False
    assert notification_recipients(job) == ["cme@example.org", "alice@example.org"]


def test_the_webhook_signature_is_hmac_sha256_of_the_body():
    body = b'{"event":"succeeded"}'
    assert webhook_signature(body, "s3cret") == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_a_clean_job_with_auto_confirm_queues_its_own_apply_and_tells_nobody_yet(
    course, learner, alice, sent, django_capture_on_commit_callbacks
):
    job = import_job_create(user=alice, importer="course", course=course, upload=upload(), auto_confirm="when_clean")
    assert job.source == "web upload"

    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_validate(job=job)

    assert job.status == "queued" and sent == [(APPLY_TASK, job.pk)]
    assert job.audit_events.filter(action="confirm", actor=alice).exists()


def test_a_job_that_needs_confirmation_is_announced_by_mail_and_webhook(
    course, learner, alice, sent, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_WEBHOOK_URL, settings.LMS_BASE_URL = "http://127.0.0.1:9/hook", "https://lms.example.org"
    job = import_job_create(user=alice, importer="course", course=course, upload=upload(), source="API")

    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_validate(job=job)

    (mail_task, job_id, event, mail, recipients), (hook_task, _, hook_event, body) = sent
    assert (mail_task, job_id, event, recipients) == (MAIL_TASK, job.pk, "needs_confirmation", ["Alice@Example.org"])
    assert mail == notification_mail(job, "needs_confirmation")
    assert "from API by alice" in mail["body"] and f"https://lms.example.org/import/jobs/{job.pk}/" in mail["body"]
    assert (hook_task, hook_event) == (WEBHOOK_TASK, "needs_confirmation")
    assert '"event":"needs_confirmation"' in body and webhook_body(job, "needs_confirmation") != body  # a new id


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("records.csv", b"PK\x03\x04rest", "F_NOT_CSV"),
        ("records.xlsx", b"a,b\n", "F_NOT_CSV"),  # named like a workbook, but not one
        ("records.pdf", b"%PDF-1.7\n", "F_NOT_CSV"),
        ("records.csv", b"", "F_EMPTY"),
        ("records.tsv", b"a\tb\n", None),
        ("records.xlsx", FIXTURES / "records.xlsx", None),
        ("records.xls", FIXTURES / "records.xls", None),
        ("export.csv", FIXTURES / "records.ods", None),  # a workbook is known by its contents, whatever its name
    ],
)
def test_the_upload_check_the_web_the_api_and_the_inbox_share(name, content, code):
    content = content.read_bytes() if isinstance(content, Path) else content
    refusal = upload_refusal(upload=ContentFile(content, name=name))
    assert (refusal.code if refusal else None) == code


# -- the inbox, one round at a time ---------------------------------------------------------------------------
@pytest.fixture
def inbox(tmp_path, settings):
    settings.IMPORT_INBOX_DIR = str(tmp_path / "inbox")
    settings.IMPORT_INBOX_SECONDS = 1  # two looks at least half a second apart
    (tmp_path / "inbox" / "CARD101").mkdir(parents=True)
    return tmp_path / "inbox"


def test_a_round_takes_only_what_it_saw_unchanged_a_round_before(
    inbox, course, learner, sent, django_capture_on_commit_callbacks
):
    path = inbox / "CARD101" / "records.csv"
    path.write_text(csv_text(CLEAN))

    assert inbox_scan()["waiting"] == ["CARD101/records.csv"]
    assert inbox_scan()["waiting"] == ["CARD101/records.csv"]  # the same, but only just now
    time.sleep(0.6)
    with path.open("a") as more:
        more.write("L-2,,,,2026-09-01,0,,,\r\n")  # it grew: looked at again next round
    assert inbox_scan()["waiting"] == ["CARD101/records.csv"]
    time.sleep(0.6)
    with django_capture_on_commit_callbacks(execute=True):
        claimed = inbox_scan()["claimed"]

    job = ImportJob.objects.get(pk__in=claimed)
    assert (job.source, job.created_by.username, job.auto_confirm) == (
        "inbox: CARD101/records.csv",
        "inbox",
        "when_clean",
    )
    assert job.inbox_file.startswith("CARD101/claimed/") and (inbox / job.inbox_file).exists()
    with job.file.open("rb") as stored:
        assert stored.read() == (inbox / job.inbox_file).read_bytes()  # stored through Django's storage
    assert sent == [(VALIDATE_TASK, job.pk)] and not path.exists()

    assert inbox_settle(job=job) is None  # not ended yet
    ImportJob.objects.filter(pk=job.pk).update(status="succeeded")
    job.refresh_from_db()
    assert inbox_settle(job=job) == inbox / "CARD101" / "done" / f"job{job.pk}-records.csv"
    job.refresh_from_db()
    assert job.inbox_file == f"CARD101/done/job{job.pk}-records.csv" and inbox_settle(job=job) is None


def test_a_workbook_dropped_in_the_inbox_is_imported_from_its_first_sheet(
    inbox, course, learner, sent, django_capture_on_commit_callbacks
):
    path = inbox / "CARD101" / "records.xlsx"
    path.write_bytes((FIXTURES / "records.xlsx").read_bytes())
    earlier = time.time() - 10
    os.utime(path, (earlier, earlier))
    inbox_scan()
    time.sleep(0.6)
    with django_capture_on_commit_callbacks(execute=True):
        claimed = inbox_scan()["claimed"]

    job = import_job_validate(job=ImportJob.objects.get(pk__in=claimed))
    assert (job.status, job.sheet) == ("validated", "Records")
    assert (job.rows_total, job.rows_valid, job.rows_invalid) == (4, 3, 1)
    assert [(e["line"], e["code"]) for e in job.errors] == [(6, "E_DATE_INVALID")]  # the sheet's row


def test_a_claim_whose_worker_died_goes_back_and_an_unknown_folder_is_refused(inbox, course, settings, sent):
    settings.IMPORT_LOCK_LEASE_SECONDS = 0
    orphan = inbox / "CARD101" / "claimed" / "0123456789ab-records.csv"
    orphan.parent.mkdir()
    orphan.write_text(csv_text(CLEAN))
    (inbox / "SOMEWHERE").mkdir()
    (inbox / "SOMEWHERE" / "x.csv").write_text(csv_text(CLEAN))
    earlier = time.time() - 10
    os.utime(inbox / "SOMEWHERE" / "x.csv", (earlier, earlier))

    done = inbox_scan()
    assert done["returned"] == ["CARD101/claimed/0123456789ab-records.csv"]
    assert (inbox / "CARD101" / "records.csv").exists() and not orphan.exists()
    time.sleep(0.6)
    assert inbox_scan()["refused"] == ["SOMEWHERE/x.csv"]
    assert sorted(p.name for p in (inbox / "SOMEWHERE" / "failed").iterdir()) == ["x.csv", "x.csv.errors.txt"]
    assert not ImportJob.objects.filter(source__startswith="inbox: SOMEWHERE").exists()
