"""The web workflow's pages through Django's test client: access, uploads refused early, states of a job."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from courses.models import Course
from lms_import.models import AuditEvent, ImportJob, ImportLock
from tests.conftest import csv_text

pytestmark = pytest.mark.django_db
User = get_user_model()
ROWS = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]]


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def admin(db):
    return User.objects.create(username="admin", email="admin@example.org", is_staff=True, is_superuser=True)


@pytest.fixture
def staff(db):
    user = User.objects.create(username="importer", email="importer@example.org")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    return user


@pytest.fixture
def plain(db):
    return User.objects.create(username="learner", email="learner@example.org")


def make_job(user, course=None, **fields) -> ImportJob:
    values = {"importer": "course", "course": course, "original_filename": "records.csv", "status": "validated"}
    return ImportJob.objects.create(created_by=user, **(values | fields))


def hold_lock(job: ImportJob, *, heartbeat_age: timedelta, progress: tuple[int, int] = (0, 0)) -> None:
    """The lock row as a running (or dead) import leaves it."""
    beat = timezone.now() - heartbeat_age
    ImportLock.objects.update_or_create(
        scope="course_records",
        defaults={"token": "t0k3n", "job": job, "holder": job.created_by, "acquired_at": beat, "heartbeat_at": beat}
        | dict(zip(["progress_done", "progress_total"], progress, strict=True)),
    )


def upload_data(content: bytes, name: str = "records.csv", **fields) -> dict:
    return {"csv_file": ContentFile(content, name=name), "importer": "course", "course": "CARD101"} | fields


# -- who may see what ------------------------------------------------------------------------------------
PAGES = [
    "/import/",
    "/import/course-records/",
    "/import/course-records/history/",
    "/import/course-records/holding/",
    "/courses/CARD101/import/",
]


@pytest.mark.parametrize("url", PAGES + ["/import/course-records/unlock/", "/import/jobs/{job}/"])
def test_anonymous_users_are_sent_to_login(url, course, staff):
    job = make_job(staff, course)
    url = url.format(job=job.pk)

    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize(
    "url",
    PAGES
    + [
        "/import/course-records/unlock/",
        "/import/jobs/{job}/",
        "/import/jobs/{job}/progress/",
        "/import/jobs/{job}/error-report/",
    ],
)
def test_users_without_the_permission_get_403(url, course, staff, plain):
    job = make_job(staff, course, error_count=1)
    job.error_report.save("errors.csv", ContentFile(b"line,code\n"), save=True)

    response = client_for(plain).get(url.format(job=job.pk))

    assert response.status_code == 403
    assert "You do not have permission" in response.content.decode()


@pytest.mark.parametrize("url", PAGES + ["/import/jobs/{job}/"])
def test_import_staff_can_use_every_page_but_see_no_unlock(url, course, staff):
    job = make_job(staff, course)

    response = client_for(staff).get(url.format(job=job.pk))

    assert response.status_code == 200
    assert ">Unlock<" not in response.content.decode()


def test_import_staff_cannot_unlock(course, staff):
    job = make_job(staff, course, status="importing")
    hold_lock(job, heartbeat_age=timedelta(minutes=10))

    assert client_for(staff).get("/import/course-records/unlock/").status_code == 403
    assert client_for(staff).post("/import/course-records/unlock/").status_code == 403

    assert ImportLock.objects.get().token == "t0k3n"
    assert not AuditEvent.objects.filter(action="unlock").exists()


def test_site_admins_see_the_unlock_tab(admin, course):
    html = client_for(admin).get("/import/course-records/").content.decode()

    assert '<a href="/import/course-records/unlock/"' in html and ">Unlock</a>" in html


# -- uploading ---------------------------------------------------------------------------------------------
def test_an_upload_creates_a_job_and_queues_its_validation(staff, course, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(staff).post(
            "/import/course-records/", upload_data(csv_text(ROWS).encode(), skip_invalid="on")
        )

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/import/jobs/{job.pk}/"
    assert (job.status, job.course, job.created_by, job.skip_invalid, job.create_accounts) == (
        "uploaded",
        course,
        staff,
        True,
        False,
    )
    assert job.original_filename == "records.csv" and job.file.name != "imports/records.csv"  # a random name
    assert len(callbacks) == 1  # validate_import_job.delay, once the job is committed


def test_a_course_page_opens_the_form_with_its_course_chosen(staff, course):
    html = client_for(staff).get("/courses/CARD101/import/").content.decode()

    assert '<option value="CARD101" selected>' in html
    assert client_for(staff).get("/courses/NOPE/import/").status_code == 404


def test_course_level_import_needs_a_course(staff, course):
    response = client_for(staff).post("/import/course-records/", upload_data(b"a,b\n1,2\n", course=""))

    assert "the course-level importer needs one" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("size", [5_000, 1_001])
def test_an_upload_over_the_limit_is_refused_and_nothing_is_written(size, staff, course, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1_000
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    token = client.get("/import/course-records/").cookies["csrftoken"].value
    body = (csv_text(ROWS) * 200).encode()[:size]

    response = client.post("/import/course-records/", {"csrfmiddlewaretoken": token} | upload_data(body))

    assert response.status_code == 200
    assert "F_TOO_LARGE" in response.content.decode()
    assert "the limit is 1,000" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not list(settings.MEDIA_ROOT.rglob("*.*"))  # no upload stored


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("records.docx", b"PK\x03\x04" + b"\x00" * 200, "is a zip archive (a Word document, say), not a workbook"),
        ("records.csv", b"%PDF-1.7\n" + b"x" * 200, "is a PDF document, not a CSV file"),
        ("records.docx", b"a,b\n1,2\n", "is not a CSV file"),
    ],
)
def test_a_file_of_the_wrong_type_is_refused_and_nothing_is_written(name, content, message, staff, course, settings):
    response = client_for(staff).post("/import/course-records/", upload_data(content, name=name))

    html = response.content.decode()
    assert response.status_code == 200 and "F_NOT_CSV" in html and message in html
    assert not ImportJob.objects.exists()


def test_a_post_without_the_csrf_token_is_refused_with_a_clear_message(staff, course):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post("/import/course-records/", upload_data(csv_text(ROWS).encode()))

    assert response.status_code == 403
    assert "Nothing was uploaded or changed" in response.content.decode()
    assert not ImportJob.objects.exists()


# -- a job's page --------------------------------------------------------------------------------------------
def test_errors_are_paged_and_escaped(staff, course):
    errors = [
        {"line": n, "code": "E_DATE_INVALID", "column": "date_completed", "value": "<script>x</script>", "message": "m"}
        for n in range(2, 122)
    ]
    job = make_job(staff, course, rows_total=120, rows_invalid=120, errors=errors, error_count=1500)

    first = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()
    third = client_for(staff).get(f"/import/jobs/{job.pk}/?errors_page=3").content.decode()

    assert first.count('<td class="code">E_DATE_INVALID</td>') == 50
    assert "Errors 1–50 of 120 listed here (all 1,500 are in the error report)" in first
    assert "Errors 101–120 of 120" in third and '<td class="num">121</td>' in third
    assert "<script>x</script>" not in first and "&lt;script&gt;x&lt;/script&gt;" in first
    assert "cannot be imported as it is" in first
    assert '<button type="submit" name="action" value="import"' not in first  # invalid rows and no skip


def test_a_file_level_failure_is_explained(staff, course):
    finding = {"line": None, "code": "F_NOT_CSV", "column": "", "value": "", "message": "This file is a PDF."}
    job = make_job(staff, course, status="failed", failure_code="F_NOT_CSV", failure_message="This file is a PDF.")
    job.errors, job.error_count = [finding], 1
    job.save()

    html = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()

    assert "This import failed (F_NOT_CSV).</strong> This file is a PDF." in html
    assert "Nothing of this file was imported" in html


def test_the_error_report_is_a_permission_checked_attachment(staff, course):
    job = make_job(staff, course, error_count=1)
    job.error_report.save("errors.csv", ContentFile(b"line,code\r\n2,E_DATE_INVALID\r\n"), save=True)

    response = client_for(staff).get(f"/import/jobs/{job.pk}/error-report/")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="import-{job.pk}-errors.csv"'
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))) == [
        ["line", "code"],
        ["2", "E_DATE_INVALID"],
    ]
    assert client_for(staff).get(f"/import/jobs/{make_job(staff, course).pk}/error-report/").status_code == 404


def test_an_importing_job_whose_lock_went_stale_is_shown_lost(staff, course, settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = 30
    settings.IMPORT_SWEEP_SECONDS = 15
    settings.IMPORT_HEARTBEAT_SECONDS = 5
    job = make_job(staff, course, status="importing", progress_done=20000, progress_total=20000)  # validated
    hold_lock(job, heartbeat_age=timedelta(minutes=10), progress=(5000, 20000))  # the apply's, on the lock row

    html = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()
    progress = client_for(staff).get(f"/import/jobs/{job.pk}/progress/").json()

    assert "This import is lost." in html and "Ask a site admin to unlock the importer" in html
    assert re.search(r"stopped sending heartbeats 60[01] s ago \(the lease is 30 s\)", html)  # a busy machine
    assert "A periodic check marks it failed within 15 s and frees the importer" in html
    assert '<progress id="progress-bar" max="20000" value="5000"' in html
    assert progress | {"heartbeat_age": None, "elapsed": None} == {
        "job": job.pk,
        "status": "importing",
        "status_label": "Importing",
        "active": True,
        "lost": True,
        "stalled": False,
        "done": 5000,
        "total": 20000,
        "percent": 25,
        "stage": "importing",
        "indeterminate": False,
        "elapsed": None,
        "heartbeat_age": None,
        "quiet": True,
        "quiet_after": 30,
        "waiting_for": None,
    }


def test_an_importing_job_with_a_live_lock_is_not_lost(staff, course):
    job = make_job(staff, course, status="importing", heartbeat_at=timezone.now())
    hold_lock(job, heartbeat_age=timedelta(seconds=-5))

    html = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()

    assert "Importing…" in html and "This import is lost." not in html
    assert client_for(staff).get(f"/import/jobs/{job.pk}/progress/").json()["lost"] is False


def test_revert_is_offered_to_site_admins_on_succeeded_jobs(admin, staff, course):
    job = make_job(staff, course, status="succeeded", created_enrollments=3)

    assert (
        f'href="/import/jobs/{job.pk}/revert/">Revert import</a>'
        in client_for(admin).get(f"/import/jobs/{job.pk}/").content.decode()
    )
    assert "Revert import" not in client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()


def test_import_without_the_acknowledgment_is_refused(staff, course):
    warning = {"code": "W_AUTO_COMPLETE", "message": "m", "count": 1, "explanation": "e"}
    job = make_job(staff, course, rows_total=1, rows_valid=1, warnings=[warning])

    response = client_for(staff).post(f"/import/jobs/{job.pk}/", {"action": "import"}, follow=True)

    assert "Tick the acknowledgment" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "validated"


def test_the_unlock_page_shows_the_holder_and_unlock_releases_it(admin, staff, course, settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = 30
    job = make_job(staff, course, status="importing")
    hold_lock(job, heartbeat_age=timedelta(minutes=10))
    client = client_for(admin)

    html = client.get("/import/course-records/unlock/").content.decode()
    assert f"import #{job.pk}</a> (records.csv) of <strong>importer</strong>" in html
    assert "Stale" in html and "lease of 30 s" in html

    response = client.post("/import/course-records/unlock/", {"reason": "hung on a stray quote"}, follow=True)

    assert f"Unlocked. Import #{job.pk} is marked failed" in response.content.decode()
    assert "The import lock is free" in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.failure_code) == ("failed", "UNLOCKED")
    event = AuditEvent.objects.get(action="unlock")
    assert event.actor == admin and event.job == job and event.details["reason"] == "hung on a stray quote"


def test_shells_have_no_course_page_form(staff, course):
    Course.objects.create(external_course_id="OLD-1", title="Old", kind="shell")

    assert client_for(staff).get("/courses/OLD-1/import/").status_code == 404


def test_a_silent_validation_is_shown_stalled(staff, course, settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = 30
    job = make_job(staff, course, status="validating", heartbeat_at=timezone.now() - timedelta(minutes=5))

    html = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()

    assert "The worker checking this file seems to have stopped" in html
    assert client_for(staff).get(f"/import/jobs/{job.pk}/progress/").json()["stalled"] is True


def test_a_stalled_validation_can_be_cancelled_but_a_live_one_cannot(staff, course, settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = 30
    stalled = make_job(staff, course, status="validating", heartbeat_at=timezone.now() - timedelta(minutes=5))
    live = make_job(staff, course, status="validating", heartbeat_at=timezone.now())

    client_for(staff).post(f"/import/jobs/{stalled.pk}/", {"action": "cancel"})
    client_for(staff).post(f"/import/jobs/{live.pk}/", {"action": "cancel"})

    stalled.refresh_from_db()
    live.refresh_from_db()
    assert (stalled.status, live.status) == ("cancelled", "validating")
    assert AuditEvent.objects.get(action="cancel").job == stalled


def test_a_queued_job_does_not_show_the_validations_progress(staff, course, settings):
    settings.IMPORT_HEARTBEAT_SECONDS = 5
    job = make_job(staff, course, status="queued", progress_done=800, progress_total=800)

    assert client_for(staff).get(f"/import/jobs/{job.pk}/progress/").json() | {"elapsed": None} == {
        "job": job.pk,
        "status": "queued",
        "status_label": "Queued",
        "active": True,
        "lost": False,
        "stalled": False,
        "done": 0,
        "total": 800,
        "percent": 0,
        "stage": "waiting",  # no count can be known until a worker starts it: an indeterminate bar
        "indeterminate": True,
        "elapsed": None,
        "heartbeat_age": None,
        "quiet": False,
        "quiet_after": 30,
        "waiting_for": None,
    }


def test_a_queued_job_waiting_for_the_lock_says_for_which_import(staff, course):
    running = make_job(staff, course, status="importing")
    hold_lock(running, heartbeat_age=timedelta(seconds=0))
    job = make_job(staff, course, status="queued", waiting_for=running)

    html = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()
    progress = client_for(staff).get(f"/import/jobs/{job.pk}/progress/").json()

    assert f"Waiting for import #{running.pk} to finish…" in html
    assert f'this one waits for <a href="/import/jobs/{running.pk}/">import #{running.pk}</a>' in html
    assert f'data-waiting-for="{running.pk}"' in html  # progress.js reloads the page when it changes
    assert (progress["status"], progress["waiting_for"], progress["lost"]) == ("queued", running.pk, False)


def test_the_site_header_links_to_what_the_user_may_open(staff, course):
    learner = User.objects.create_user("plain", password="x")

    staff_html = client_for(staff).get("/import/").content.decode()
    learner_html = client_for(learner).get("/certificates/").content.decode()

    assert 'href="/import/">Import' in staff_html and 'href="/certificates/">Certificates' in staff_html
    assert 'href="/certificates/">Certificates' in learner_html
    assert 'href="/import/">Import' not in learner_html and "PARS report" not in learner_html


def test_a_workbook_upload_is_taken(staff, course):
    from pathlib import Path

    from django.core.files.uploadedfile import SimpleUploadedFile

    workbook = (Path(__file__).parent / "fixtures" / "records.xlsx").read_bytes()
    upload = SimpleUploadedFile("records.xlsx", workbook, content_type="application/vnd.ms-excel")

    response = client_for(staff).post(
        "/import/course-records/", {"importer": "course", "course": "CARD101", "csv_file": upload}
    )

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/import/jobs/{job.pk}/"
    assert job.original_filename == "records.xlsx" and job.file.read() == workbook


# -- liveness from the heartbeat's age (issue 11, item 4) ----------------------------------------------------
def test_an_import_whose_heartbeat_stopped_says_may_be_hung_long_before_the_lease(admin, staff, course, settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = 600
    settings.IMPORT_HEARTBEAT_SECONDS = 5  # quiet after 6 missed beats: 30 s
    job = make_job(staff, course, status="importing", progress_done=100, progress_total=100)
    hold_lock(job, heartbeat_age=timedelta(seconds=155), progress=(40, 100))

    staff_page = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()
    admin_page = client_for(admin).get(f"/import/jobs/{job.pk}/").content.decode()
    home = client_for(admin).get("/import/").content.decode()
    history = client_for(admin).get("/import/course-records/history/").content.decode()
    unlock = client_for(admin).get("/import/course-records/unlock/").content.decode()

    assert re.search(r"No heartbeat for <span id=\"heartbeat-age\">15[56]</span> s — may be hung", staff_page)
    assert "the import goes on" not in staff_page and "This import is lost." not in staff_page
    assert 'href="/import/course-records/unlock/">Unlock</a>' in admin_page
    assert 'href="/import/course-records/unlock/"' not in staff_page  # only site admins unlock
    for page in (home, unlock):
        assert re.search(r"no heartbeat for 15[56] s — may be hung", page) and ">Live<" not in page
    assert re.search(r"no heartbeat for 15[56] s — may be hung \(<a href=\"/import/course-records/unlock/\">", history)
    progress = client_for(staff).get(f"/import/jobs/{job.pk}/progress/").json()
    assert (progress["quiet"], progress["lost"], progress["stage"]) == (True, False, "importing")


def test_a_live_import_says_live_and_nothing_of_a_hang(staff, course, settings):
    settings.IMPORT_HEARTBEAT_SECONDS = 5
    job = make_job(staff, course, status="importing")
    hold_lock(job, heartbeat_age=timedelta(seconds=2), progress=(40, 100))

    page = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()
    home = client_for(staff).get("/import/").content.decode()

    assert "Live: last heartbeat" in page and "may be hung" not in page
    assert ">Live<" in home and "may be hung" not in home


def test_a_count_that_cannot_be_known_is_an_indeterminate_bar_with_the_elapsed_time(staff, course):
    waiting = make_job(staff, course, status="uploaded")
    writing = make_job(staff, course, status="importing", apply_started_at=timezone.now() - timedelta(seconds=42))
    hold_lock(writing, heartbeat_age=timedelta(seconds=0), progress=(900, 900))  # every row checked: the commit

    waiting_page = client_for(staff).get(f"/import/jobs/{waiting.pk}/").content.decode()
    writing_page = client_for(staff).get(f"/import/jobs/{writing.pk}/").content.decode()

    assert '<progress id="progress-bar" max="1" aria-labelledby="progress-title"></progress>' in waiting_page
    assert '<progress id="progress-bar" max="900" aria-labelledby="progress-title"></progress>' in writing_page
    assert re.search(r"All 900 rows checked; writing them to the database · 4[2-9] s elapsed", writing_page)


def test_unlocking_a_live_lock_needs_a_reason_and_the_box_and_a_stale_one_neither(admin, staff, course, settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = 600
    job = make_job(staff, course, status="importing")
    hold_lock(job, heartbeat_age=timedelta(seconds=1))
    client = client_for(admin)

    page = client.get("/import/course-records/unlock/").content.decode()
    bare = client.post("/import/course-records/unlock/", {}).content.decode()
    no_box = client.post("/import/course-records/unlock/", {"reason": "stuck at 40%"}).content.decode()

    assert "Reason (for the audit log) (required: the import is live)" in page and 'name="confirm_live"' in page
    assert "say why you unlock it" in bare and "Tick the box to confirm" in bare
    assert "say why you unlock it" not in no_box and "Tick the box to confirm" in no_box
    assert ImportLock.objects.get().token and not AuditEvent.objects.filter(action="unlock").exists()

    done = client.post(
        "/import/course-records/unlock/", {"reason": "stuck at 40%", "confirm_live": "on"}, follow=True
    ).content.decode()

    assert f"Unlocked. Import #{job.pk} is marked failed" in done
    assert AuditEvent.objects.get(action="unlock").details["reason"] == "stuck at 40%"
    job.refresh_from_db()
    assert job.failure_code == "UNLOCKED"

    stale = make_job(staff, course, status="importing")
    hold_lock(stale, heartbeat_age=timedelta(minutes=20))
    assert 'name="confirm_live"' not in client.get("/import/course-records/unlock/").content.decode()
    client.post("/import/course-records/unlock/", {})  # a stale lock unlocks as it always did
    stale.refresh_from_db()
    assert stale.failure_code == "UNLOCKED" and not ImportLock.objects.get().token
