"""Tasks are queued in one place (lms_import.services), by name, once the job is committed; a dry run is never applied.

That no face queues a task itself, and that services never import the tasks, is held by import-linter
(.importlinter, run by make lint).
"""

import json
import logging

import celery
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from enrollments.models import Enrollment
from lms_import.models import ImportJob
from lms_import.services import (
    APPLY_TASK,
    INBOX_SCAN_TASK,
    INBOX_SETTLE_TASK,
    MAIL_TASK,
    PURGE_TASK,
    REVERT_TASK,
    SWEEP_TASK,
    VALIDATE_TASK,
    WEBHOOK_TASK,
    ImportRefused,
    import_job_apply,
    import_job_apply_later,
    import_job_confirm,
    import_job_create,
    import_job_validate,
)

from .conftest import manage, run_cli

pytestmark = pytest.mark.django_db
ROWS = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]]


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, int]]:
    """What would have gone to the broker, as (task name, job id)."""
    sent = []
    for name in (VALIDATE_TASK, APPLY_TASK):
        task = celery.current_app.tasks[name]
        monkeypatch.setattr(task, "delay", lambda job_id, name=name: sent.append((name, job_id)))
    return sent


@pytest.fixture
def staff(db):
    user = get_user_model().objects.create(username="importer", email="importer@example.org")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    return user


def test_every_process_knows_the_tasks_by_name():
    """LmsImportConfig.ready registers them, so the web and the command line can queue what they never import."""
    shell = manage(
        "shell",
        "-c",
        "import celery; print(sorted(n for n in celery.current_app.tasks if n.startswith('lms_import.')))",
    )

    assert shell.returncode == 0, shell.stderr
    tasks = [
        APPLY_TASK,
        PURGE_TASK,
        SWEEP_TASK,
        VALIDATE_TASK,
        MAIL_TASK,
        WEBHOOK_TASK,
        INBOX_SCAN_TASK,
        INBOX_SETTLE_TASK,
        REVERT_TASK,
    ]
    assert shell.stdout.splitlines()[-1] == str(sorted(tasks))
    assert [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()] == [SWEEP_TASK, PURGE_TASK]  # beat sends


def test_a_validation_is_sent_only_once_the_job_is_committed(
    course, write_csv, staff, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        job = import_job_create(
            user=staff, importer="course", course=course, path=write_csv(ROWS), queue_validation=True
        )
        assert sent == []  # not before the commit: the worker must find the job

    for callback in callbacks:
        callback()
    assert sent == [(VALIDATE_TASK, job.pk)]
    assert ImportJob.objects.get(pk=job.pk).status == "uploaded"


def test_an_unreachable_broker_is_logged_and_the_job_waits_for_a_worker(
    course, write_csv, staff, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def unreachable(job_id):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(celery.current_app.tasks[VALIDATE_TASK], "delay", unreachable)
    with caplog.at_level(logging.ERROR, logger="lms_import"), django_capture_on_commit_callbacks(execute=True):
        job = import_job_create(
            user=staff, importer="course", course=course, path=write_csv(ROWS), queue_validation=True
        )

    assert f"could not queue {VALIDATE_TASK} for import job {job.pk}" in caplog.text
    html = Client(raise_request_exception=True)
    html.force_login(staff)
    assert "Waiting for a worker to check the file" in html.get(f"/import/jobs/{job.pk}/").content.decode()


def test_the_command_lines_async_queues_the_apply(course, learner, write_csv, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run_cli(write_csv(ROWS), "--course", "CARD101", "--async", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["status"] == "queued" and result["dry_run"] is False
    assert sent == [(APPLY_TASK, result["job"])]
    assert not Enrollment.objects.exists()  # the worker applies it


def test_the_command_lines_async_dry_run_queues_a_validation_and_is_never_applied(
    course, learner, write_csv, staff, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run_cli(write_csv(ROWS), "--course", "CARD101", "--async", "--dry-run", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["status"] == "uploaded" and result["dry_run"] is True
    assert sent == [(VALIDATE_TASK, result["job"])]

    job = import_job_validate(job=ImportJob.objects.get(pk=result["job"]))  # what the worker does
    assert job.status == "validated" and job.rows_valid == 1 and job.created_enrollments == 1  # would create

    with pytest.raises(ImportRefused, match="dry run"):
        import_job_confirm(job=job, user=staff)
    with pytest.raises(ImportRefused, match="dry run"):
        import_job_apply_later(job=job)
    ImportJob.objects.filter(pk=job.pk).update(status="queued")  # even a job forced into the queue
    with pytest.raises(ImportRefused, match="dry run"):
        import_job_apply(job=job)

    assert sent == [(VALIDATE_TASK, job.pk)]
    assert not Enrollment.objects.exists()
    assert ImportJob.objects.get(pk=job.pk).status == "queued"  # untouched by the refusals


def test_a_dry_run_page_offers_no_import(course, learner, write_csv, staff, sent):
    code, out, _ = run_cli(write_csv(ROWS), "--course", "CARD101", "--dry-run", "--format", "json")
    job_id = json.loads(out)["job"]
    client = Client()
    client.force_login(staff)

    html = client.get(f"/import/jobs/{job_id}/").content.decode()
    assert code == 0 and 'value="import"' not in html and "This was a dry run" in html

    refused = client.post(f"/import/jobs/{job_id}/", {"action": "import"}, follow=True).content.decode()
    assert "is a dry run; it is validated, never applied." in refused
    assert ImportJob.objects.get(pk=job_id).status == "validated" and sent == []
