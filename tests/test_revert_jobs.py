"""A site admin's revert runs in a worker (issue 11, item 5): the typed number above IMPORT_CONFIRM_THRESHOLD, one
revert at a time, a revert whose worker died, and every kept record listed, paged and as CSV.

The worker's side is the task itself (lms_import.tasks.revert_import_job), run here as a worker runs it; the
browser tests (tests/browser/test_revert_browser.py) run it in a real Celery worker.
"""

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from enrollments.models import Enrollment
from lms_import.models import AuditEvent, RevertKept, RevertRun
from lms_import.revert import RevertRefused, revert_size
from lms_import.services import RevertUnconfirmed, import_job_revert_later
from lms_import.tasks import revert_import_job
from tests.test_revert import course_job, imported, page_text, superuser  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_large_revert_needs_the_typed_number_and_nothing_happens_without_it(course_job, superuser, settings):  # noqa: F811
    settings.IMPORT_CONFIRM_THRESHOLD = 5
    assert revert_size(course_job) == 6  # 2 enrollments, 3 credits, 1 account

    for typed in (None, 5, 60):
        with pytest.raises(RevertUnconfirmed, match="To confirm, type the number 6 in the box"):
            import_job_revert_later(job=course_job, user=superuser, confirm_count=typed)
    assert not RevertRun.objects.exists() and Enrollment.objects.count() == 2

    run = import_job_revert_later(job=course_job, user=superuser, confirm_count=6)

    assert (run.status, run.progress_total, run.requested_by) == ("queued", 6, superuser)
    assert Enrollment.objects.count() == 2  # queued: a worker reverts
    assert revert_import_job(course_job.pk) == "done"
    run.refresh_from_db()
    course_job.refresh_from_db()
    assert (run.progress_done, run.progress_total, course_job.status) == (6, 6, "reverted")
    assert not Enrollment.objects.exists()
    assert AuditEvent.objects.get(action="revert").actor == superuser


def test_a_small_revert_asks_for_no_number(course_job, superuser, settings):  # noqa: F811
    settings.IMPORT_CONFIRM_THRESHOLD = 6
    assert import_job_revert_later(job=course_job, user=superuser).status == "queued"


def test_a_revert_is_asked_for_once_while_it_is_under_way(course_job, superuser):  # noqa: F811
    import_job_revert_later(job=course_job, user=superuser)

    with pytest.raises(RevertRefused, match="already under way"):
        import_job_revert_later(job=course_job, user=superuser)
    assert revert_import_job(course_job.pk) == "done"
    with pytest.raises(RevertRefused, match="already reverted"):
        import_job_revert_later(job=course_job, user=superuser)
    assert revert_import_job(course_job.pk) == "done"  # the task delivered again does nothing


def test_a_revert_whose_worker_died_fails_and_may_be_asked_for_again(course_job, superuser, settings):  # noqa: F811
    settings.IMPORT_LOCK_LEASE_SECONDS = 30
    import_job_revert_later(job=course_job, user=superuser)
    # A worker claimed it and died: its transaction rolled back, its heartbeat stopped.
    RevertRun.objects.update(status="running", heartbeat_at=timezone.now() - timedelta(minutes=5))

    assert revert_import_job(course_job.pk) == "failed"  # the task, delivered again, finds it so

    run = RevertRun.objects.get()
    assert "stopped" in run.failure_message and "nothing was removed. Revert again." in run.failure_message
    assert Enrollment.objects.count() == 2
    assert import_job_revert_later(job=course_job, user=superuser).status == "queued"
    assert revert_import_job(course_job.pk) == "done" and not Enrollment.objects.exists()


def test_a_kept_enrollment_with_its_credit_is_one_listed_record_not_and_2_more(course_job, learner, superuser):  # noqa: F811
    maria = Enrollment.objects.get(user=learner)
    maria.attended = True
    maria.save()
    client = Client()
    client.force_login(superuser)
    url = f"/import/jobs/{course_job.pk}/revert/"

    confirm = page_text(client.get(url))
    client.post(url)
    revert_import_job(course_job.pk)
    done = page_text(client.get(url))

    for text in (confirm, done):
        assert f"Enrollment #{maria.pk}: maria@example.org in CARD101" in text
        assert "Kept records 1–1 of 1" in text and "more" not in text
    assert list(RevertKept.objects.values_list("record", flat=True)) == [
        f"Enrollment #{maria.pk}: maria@example.org in CARD101"
    ]


def test_every_kept_record_is_listed_paged_and_as_csv(write_csv, course, superuser):  # noqa: F811
    rows = [
        [
            f"N-{n:03d}",
            f"learner{n}@example.org",
            "Pat",
            f"Doe{n}",
            "2026-09-01",
            "1",
            "2026-09-14",
            "ama_pra_1",
            "1.00",
        ]
        for n in range(60)
    ]
    job = imported(write_csv(rows), "--course", "CARD101", "--create-accounts")
    changed = list(Enrollment.objects.order_by("id")[:55])
    for enrollment in changed:
        enrollment.attended = True
        enrollment.save()
    client = Client()
    client.force_login(superuser)
    url = f"/import/jobs/{job.pk}/revert/"

    def kept_csv() -> list[list[str]]:
        response = client.get(f"{url}kept.csv")
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="import-{job.pk}-revert-kept.csv"'
        return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    first, second = page_text(client.get(url)), page_text(client.get(f"{url}?kept_page=2"))
    before = kept_csv()
    client.post(url)
    revert_import_job(job.pk)
    after_second = page_text(client.get(f"{url}?kept_page=2"))
    after = kept_csv()

    assert "Kept records 1–50 of 110" in first and "Kept records 51–100 of 110" in second
    assert "Kept records 51–100 of 110" in after_second
    for listing in (before, after):
        assert listing[0] == ["kind", "record", "reason"] and len(listing) == 1 + 110  # 55 enrollments, 55 accounts
        assert {row[0] for row in listing[1:]} == {"enrollments", "accounts"}
    assert Enrollment.objects.count() == 55


def test_the_revert_page_follows_a_running_revert_and_says_when_it_went_silent(course_job, superuser, settings):  # noqa: F811
    settings.IMPORT_LOCK_LEASE_SECONDS = 600
    settings.IMPORT_HEARTBEAT_SECONDS = 5
    import_job_revert_later(job=course_job, user=superuser)
    client = Client()
    client.force_login(superuser)
    url = f"/import/jobs/{course_job.pk}/revert/"

    queued = client.get(url).content.decode()
    RevertRun.objects.update(status="running", started_at=timezone.now(), heartbeat_at=timezone.now(), progress_done=3)
    running = client.get(url).content.decode()
    RevertRun.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=100))
    silent = client.get(url).content.decode()

    assert '<meta http-equiv="refresh" content="2">' in queued and "Waiting for a worker to revert" in queued
    assert '<progress id="revert-progress-bar" max="6" aria-labelledby' in queued  # indeterminate: no value yet
    assert 'max="6" value="3"' in running and "3 of 6 records (50%)" in running and "may be hung" not in running
    assert "No heartbeat for 100 s — may be hung." in silent
    assert 'name="confirm_count"' not in running and "Revert import</button>" not in running
