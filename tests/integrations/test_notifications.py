"""Notifications (SPEC §12) sent by a real worker: e-mails received by a real SMTP server process (aiosmtpd), webhooks
by a local HTTP server that checks their signature; a mail server or a receiver that is down hurts no import."""

import hashlib
import hmac
import json
import mailbox
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from lms_import.models import ImportJob
from lms_import.services import import_job_confirm, import_job_create, import_jobs_sweep

from .conftest import CLEAN, WITH_ERRORS, csv_bytes, free_port, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
SITE = "http://lms.example.org"
OFFICE = "cme-office@example.org"
SECRET = "webhook-test-secret"


class SmtpServer:
    """`python -m aiosmtpd` with the Mailbox handler: every message it receives is a file in a Maildir."""

    def __init__(self, directory, port: int):
        self.port, self.directory = port, directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox"]
            + [str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._listening, timeout=20, what="the SMTP server to listen")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            assert self.process.poll() is None, "aiosmtpd exited"
            return False

    def messages(self) -> list:
        return list(mailbox.Maildir(self.directory, create=False)) if self.directory.exists() else []

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "maildir", free_port())
    yield server
    server.stop()


class Receiver:
    """A webhook receiver on 127.0.0.1:port, in a thread: records every delivery; `answers` are the status codes
    of the first deliveries (then 200)."""

    def __init__(self, port: int, answers=()):
        self.deliveries: list[dict] = []
        self.answers = list(answers)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.deliveries.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed(delivery: dict) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(delivery["headers"].get("X-Import-Signature", ""), expected)


def uploaded(user, course, rows, **options) -> ImportJob:
    """What the web, the API and the inbox do: a stored upload whose validation a worker runs."""
    upload = SimpleUploadedFile("records.csv", csv_bytes(rows), content_type="text/csv")
    return import_job_create(
        user=user, importer="course", course=course, upload=upload, queue_validation=True, **options
    )


def status_of(job: ImportJob, *statuses: str):
    def current():
        job.refresh_from_db()
        return job.status in statuses

    return current


def mails_to(smtp: SmtpServer, subject_part: str) -> dict[str, object]:
    return {m["To"]: m for m in smtp.messages() if subject_part in m["Subject"]}


def test_mail_when_a_job_needs_confirmation_succeeds_fails_or_is_lost(
    start_worker, smtp, staff_user, course, learner, settings
):
    # Every process reads the same environment: this one finds the lost job below, so it addresses that mail.
    settings.IMPORT_NOTIFY_EMAILS, settings.LMS_BASE_URL = [OFFICE], SITE
    worker = start_worker(
        env={"EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}", "IMPORT_NOTIFY_EMAILS": OFFICE, "LMS_BASE_URL": SITE}
    )
    recipients = {"importer@example.org", OFFICE}

    job = uploaded(staff_user, course, CLEAN)
    wait_for(status_of(job, "validated"), what="the validation", log=worker)
    asking = wait_for(lambda: mails_to(smtp, "waits for your confirmation"), what="the mails", log=worker)
    wait_for(lambda: set(mails_to(smtp, "waits for your confirmation")) == recipients, what="both mails", log=worker)
    mail = asking["importer@example.org"]
    assert mail["Subject"] == f"Import #{job.pk} (records.csv) checked: it waits for your confirmation"
    text = mail.get_payload(decode=True).decode()
    assert f"{SITE}/import/jobs/{job.pk}/" in text and "Rows: 1 read, 1 valid, 0 invalid, 0 skipped." in text
    assert "Would create: 1 enrollment, 1 credit award" in text and "from web upload by importer" in text

    import_job_confirm(job=job, user=staff_user)
    wait_for(lambda: set(mails_to(smtp, f"#{job.pk} (records.csv) succeeded")) == recipients, log=worker)
    text = mails_to(smtp, "succeeded")[OFFICE].get_payload(decode=True).decode()
    assert "Created: 1 enrollment, 1 credit award" in text

    bad = uploaded(staff_user, course, WITH_ERRORS)
    wait_for(lambda: set(mails_to(smtp, f"#{bad.pk} (records.csv) failed")) == recipients, log=worker)
    text = mails_to(smtp, f"#{bad.pk}")[OFFICE].get_payload(decode=True).decode()
    assert "First errors (3 of 3; the error report has every one):" in text, text  # L-1's credit is in since #1
    assert "line 3, credits: E_CREDITS_OVER_MAX: 9.00 credits is more than" in text
    assert f"Error report: {SITE}/import/jobs/{bad.pk}/error-report/" in text

    # A worker died in the middle of an apply: the periodic check finds the job lost.
    lost = import_job_create(user=staff_user, importer="course", course=course, upload=_upload())
    ImportJob.objects.filter(pk=lost.pk).update(status="importing", heartbeat_at=timezone.now() - timedelta(hours=1))
    assert import_jobs_sweep()["lost"] == [lost.pk]
    wait_for(lambda: set(mails_to(smtp, f"#{lost.pk} (records.csv) was lost")) == recipients, log=worker)
    assert "Upload the file again" in mails_to(smtp, f"#{lost.pk}")[OFFICE].get_payload(decode=True).decode()


def _upload():
    return SimpleUploadedFile("records.csv", csv_bytes(CLEAN), content_type="text/csv")


def test_a_signed_webhook_for_each_event(start_worker, staff_user, course, learner):
    receiver = Receiver(free_port())
    try:
        worker = start_worker(
            env={
                "IMPORT_WEBHOOK_URL": f"http://127.0.0.1:{receiver.server.server_port}/lms-hook",
                "IMPORT_WEBHOOK_SECRET": SECRET,
                "LMS_BASE_URL": SITE,
                "EMAIL_URL": "dummymail://",
            }
        )
        clean = uploaded(staff_user, course, CLEAN, auto_confirm="when_clean")
        bad = uploaded(staff_user, course, WITH_ERRORS, auto_confirm="when_clean")
        wait_for(lambda: len(receiver.deliveries) >= 2, what="two deliveries", log=worker)
        time.sleep(1)  # nothing else comes: a clean job that confirms itself is announced once, when it succeeds
    finally:
        receiver.stop()

    assert len(receiver.deliveries) == 2 and all(signed(d) for d in receiver.deliveries)
    events = {json.loads(d["body"])["job"]["job"]: json.loads(d["body"]) for d in receiver.deliveries}
    assert events[clean.pk]["event"] == "succeeded" and events[bad.pk]["event"] == "failed"
    document = events[bad.pk]["job"]
    assert document["status"] == "validated" and document["rows"]["invalid"] == 2 and document["error_count"] == 2
    assert {e["code"] for e in document["errors"]} == {"E_CREDITS_OVER_MAX", "E_LEARNER_ID_MISSING"}
    assert document["links"]["page"] == f"{SITE}/import/jobs/{bad.pk}/" and document["source"] == "web upload"
    assert receiver.deliveries[0]["headers"]["X-Import-Event"] in ("succeeded", "failed")
    assert receiver.deliveries[0]["headers"]["Content-Type"] == "application/json"


def test_a_receiver_and_a_mail_server_that_are_down_hurt_no_import(start_worker, staff_user, course, learner):
    port, closed_smtp = free_port(), free_port()
    worker = start_worker(
        env={
            "IMPORT_WEBHOOK_URL": f"http://127.0.0.1:{port}/lms-hook",
            "IMPORT_WEBHOOK_SECRET": SECRET,
            "IMPORT_WEBHOOK_RETRY_SECONDS": "1",
            "EMAIL_URL": f"smtp://127.0.0.1:{closed_smtp}",
        }
    )
    job = uploaded(staff_user, course, CLEAN, auto_confirm="when_clean")

    wait_for(status_of(job, "succeeded", "failed"), timeout=30, what="the import", log=worker)
    assert job.status == "succeeded" and job.created_enrollments == 1
    wait_for(lambda: "webhook of import job" in worker.log(), what="a failed delivery", log=worker)

    receiver = Receiver(port, answers=[503])  # the receiver comes back, answers 503 once, then takes it
    try:
        wait_for(lambda: [d["status"] for d in receiver.deliveries] == [503, 200], timeout=60, log=worker)
    finally:
        receiver.stop()
    bodies = {d["body"] for d in receiver.deliveries}
    assert len(bodies) == 1 and all(signed(d) for d in receiver.deliveries)  # the same delivery, retried
    assert json.loads(bodies.pop())["event"] == "succeeded"
    assert "e-mail of import job" in worker.log() and f"import job {job.pk}" in worker.log()
    job.refresh_from_db()
    assert job.status == "succeeded"
