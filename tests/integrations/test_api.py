"""The API of SPEC §12 over HTTP (the live server), with a real Celery worker on PostgreSQL and Redis.

Every endpoint, every refusal (with its code, and no job made), and who may do what.
"""

import csv
import io
from pathlib import Path

import pytest
import requests

from enrollments.models import Enrollment
from lms_import.models import ColumnMapping, ImportJob
from tests.browser.conftest import PASSWORD
from tests.conftest import csv_text
from tests.test_column_mapping import FOREIGN, MAPPING, NOBODY, ROWS

from .conftest import CLEAN, WITH_ERRORS, csv_bytes, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def upload(session, content: bytes, name: str = "records.csv", **fields) -> requests.Response:
    data = {"importer": "course", "course": "CARD101"} | {
        key: str(value).lower() if isinstance(value, bool) else value for key, value in fields.items()
    }
    return session.post("imports/", data=data, files={"file": (name, content, "text/csv")})


def job_when(session, job_id: int, *statuses: str, worker=None) -> dict:
    def current():
        document = session.get(f"imports/{job_id}/").json()
        return document if document["status"] in statuses else None

    return wait_for(current, what=f"job {job_id} to be {' or '.join(statuses)}", log=worker)


CLI_KEYS = {
    "job",
    "status",
    "importer",
    "course",
    "dry_run",
    "encoding",
    "rows",
    "created",
    "auto_completed",
    "errors",
    "warnings",
    "duration_s",
}


def test_a_whole_session_upload_poll_confirm_then_list_and_filter(api, worker, staff_user, course, learner):
    staff = api(staff_user)

    uploaded = upload(staff, csv_bytes(CLEAN))

    assert uploaded.status_code == 202, uploaded.text
    job = uploaded.json()
    assert CLI_KEYS <= set(job) and {"progress", "links", "source"} <= set(job)
    assert uploaded.headers["Location"] == job["links"]["self"] and job["links"]["self"].endswith(f"/{job['job']}/")
    assert (job["status"], job["source"], job["created_by"], job["file"]) == (
        "uploaded",
        "API",
        "importer",
        "records.csv",
    )

    checked = job_when(staff, job["job"], "validated", "failed", worker=worker)
    assert checked["status"] == "validated" and checked["confirmable"] and checked["rows"]["valid"] == 1
    assert checked["progress"] == {"done": 1, "total": 1}
    assert checked["links"]["confirm"] and not Enrollment.objects.exists()

    confirmed = staff.post(f"imports/{job['job']}/confirm/", json={})
    assert confirmed.status_code == 202, confirmed.text
    assert confirmed.json()["status"] in ("queued", "importing", "succeeded")
    done = job_when(staff, job["job"], "succeeded", "failed", worker=worker)
    assert done["status"] == "succeeded" and done["created"]["enrollments"] == 1
    assert Enrollment.objects.get().import_job_id == job["job"]

    again = staff.post(f"imports/{job['job']}/confirm/", json={})
    assert again.status_code == 409 and again.json()["code"] == "JOB_STATE"

    second = upload(staff, csv_bytes(CLEAN), name="second.csv").json()  # the same rows: E_ALREADY_ENROLLED
    job_when(staff, second["job"], "validated", worker=worker)
    listed = staff.get("imports/").json()
    assert listed["count"] == 2 and [j["job"] for j in listed["results"]] == [second["job"], job["job"]]
    assert [j["job"] for j in staff.get("imports/", params={"status": "succeeded"}).json()["results"]] == [job["job"]]
    assert staff.get("imports/", params={"course": "CARD101"}).json()["count"] == 2
    assert staff.get("imports/", params={"course": "ETH200"}).json()["count"] == 0
    wrong = staff.get("imports/", params={"status": "finished"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "E_VALUE_INVALID"
    paged = staff.get("imports/", params={"page_size": 1, "page": 2}).json()
    assert paged["count"] == 2 and [j["job"] for j in paged["results"]] == [job["job"]] and paged["previous"]


def test_errors_paginated_the_error_report_and_a_refused_confirm(api, worker, staff_user, course, learner, settings):
    staff = api(staff_user)
    job = upload(staff, csv_bytes(WITH_ERRORS)).json()

    checked = job_when(staff, job["job"], "validated", "failed", worker=worker)
    assert checked["status"] == "validated" and checked["rows"] == {"total": 3, "valid": 1, "invalid": 2, "skipped": 0}
    assert not checked["confirmable"] and checked["links"]["confirm"] is None

    first = staff.get(f"imports/{job['job']}/errors/", params={"page": 1}).json()
    codes = {finding["code"] for finding in first["results"]}
    assert {"E_CREDITS_OVER_MAX", "E_LEARNER_ID_MISSING"} <= codes
    assert first["count"] == first["error_count"] == checked["error_count"]
    assert set(first["results"][0]) == {"line", "code", "column", "value", "message"}

    report = staff.get(checked["links"]["error_report"])
    assert report.status_code == 200 and report.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0][-3:] == ["_line", "_codes", "_messages"] and len(rows) == 3

    refused = staff.post(f"imports/{job['job']}/confirm/", json={})
    assert refused.status_code == 409 and refused.json()["code"] == "ROW_ERRORS"
    assert ImportJob.objects.get(pk=job["job"]).status == "validated"  # nothing queued

    cancelled = staff.post(f"imports/{job['job']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert staff.post(f"imports/{job['job']}/cancel/").json()["code"] == "JOB_STATE"

    missing = staff.get(f"imports/{job['job'] + 100}/")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_auto_confirm_imports_a_clean_file_and_an_acknowledgment_goes_with_the_confirm(
    api, worker, staff_user, course, auto_course, learner
):
    staff = api(staff_user)

    clean = upload(staff, csv_bytes(CLEAN), auto_confirm="when_clean").json()
    done = job_when(staff, clean["job"], "succeeded", "failed", worker=worker)
    assert done["status"] == "succeeded" and done["auto_confirm"] == "when_clean"

    # ETH200 completes enrollments at once: W_AUTO_COMPLETE needs an acknowledgment, so it does not confirm itself.
    rows = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00"]]
    blocked = upload(staff, csv_bytes(rows), course="ETH200", auto_confirm="when_clean").json()
    waiting = job_when(staff, blocked["job"], "validated", worker=worker)
    assert waiting["needs_acknowledgment"] and "W_AUTO_COMPLETE" in [w["code"] for w in waiting["warnings"]]

    refused = staff.post(f"imports/{blocked['job']}/confirm/", json={})
    assert refused.status_code == 409 and refused.json()["code"] == "W_AUTO_COMPLETE"
    confirmed = staff.post(f"imports/{blocked['job']}/confirm/", json={"allow_auto_complete": True})
    assert confirmed.status_code == 202, confirmed.text
    assert job_when(staff, blocked["job"], "succeeded", "failed", worker=worker)["status"] == "succeeded"


def test_a_site_admin_reverts_and_import_staff_may_not(api, worker, staff_user, admin_user, course, learner, settings):
    settings.IMPORT_CONFIRM_THRESHOLD = 1  # so that this small revert asks for the typed number
    staff, admin = api(staff_user), api(admin_user)
    job = upload(staff, csv_bytes(CLEAN), auto_confirm="when_clean").json()
    done = job_when(staff, job["job"], "succeeded", "failed", worker=worker)
    assert done["links"]["revert"] is None  # not for import staff
    assert admin.get(f"imports/{job['job']}/").json()["links"]["revert"]

    denied = staff.post(f"imports/{job['job']}/revert/")
    assert denied.status_code == 403 and denied.json()["code"] == "PERMISSION_DENIED"
    assert Enrollment.objects.count() == 1

    size = sum(done["created"].values())  # what the import created: the number the revert's confirmation needs
    assert admin.get(f"imports/{job['job']}/").json()["revert_confirm_count"] == size > 1
    for typed in ({}, {"confirm_count": size - 1}):
        unconfirmed = admin.post(f"imports/{job['job']}/revert/", json=typed)
        assert unconfirmed.status_code == 409 and unconfirmed.json()["code"] == "E_CONFIRM_COUNT", unconfirmed.text
        assert f"type the number {size}" in unconfirmed.json()["message"]
    assert Enrollment.objects.count() == 1

    reverted = admin.post(f"imports/{job['job']}/revert/", json={"confirm_count": size})
    assert reverted.status_code == 202, reverted.text
    assert reverted.json()["job"]["status"] == "succeeded" and reverted.json()["revert"]["status"] == "queued"
    assert job_when(admin, job["job"], "reverted", worker=worker)["revert"]["status"] == "done"  # a worker reverts
    assert not Enrollment.objects.exists()
    twice = admin.post(f"imports/{job['job']}/revert/", json={"confirm_count": size})
    assert twice.status_code == 409 and twice.json()["code"] == "JOB_STATE"


def test_a_workbook_is_uploaded_with_the_sheet_to_read(api, worker, staff_user, course, learner):
    staff = api(staff_user)
    workbook = (FIXTURES / "records.xlsx").read_bytes()

    job = upload(staff, workbook, name="records.xlsx", sheet="Records", skip_invalid=True).json()
    checked = job_when(staff, job["job"], "validated", "failed", worker=worker)
    assert checked["status"] == "validated" and checked["file"] == "records.xlsx"
    assert checked["rows"] == {"total": 4, "valid": 3, "invalid": 1, "skipped": 0} and checked["confirmable"]

    wrong = upload(staff, workbook, name="records.xlsx", sheet="Nope").json()
    failed = job_when(staff, wrong["job"], "validated", "failed", worker=worker)
    assert failed["status"] == "failed" and failed["failure"]["code"] == "F_NOT_CSV"
    assert "no sheet named 'Nope'" in failed["failure"]["message"]


# -- refusals: a refused upload makes no job --------------------------------------------------------------------
XLSX = b"PK\x03\x04" + b"\x00" * 200


@pytest.mark.parametrize(
    ("fields", "name", "content", "status", "code", "column"),
    [
        ({}, "records.xlsx", XLSX, 400, "F_NOT_CSV", "file"),
        ({}, "records.csv", XLSX, 400, "F_NOT_CSV", "file"),  # a workbook named .csv
        ({}, "records.pdf", b"line one\n", 400, "F_NOT_CSV", "file"),
        ({}, "records.csv", b"", 400, "F_EMPTY", "file"),
        ({"course": ""}, "records.csv", None, 400, "F_COURSE_REQUIRED", "course"),
        ({"course": "NOPE1"}, "records.csv", None, 400, "F_COURSE_REQUIRED", "course"),
        ({"importer": "sideways"}, "records.csv", None, 400, "E_VALUE_INVALID", "importer"),
        ({"auto_confirm": "always"}, "records.csv", None, 400, "E_VALUE_INVALID", "auto_confirm"),
        ({"mapping": "Registration export"}, "records.csv", None, 400, "E_VALUE_INVALID", "mapping"),
    ],
)
def test_a_refused_upload_has_its_code_and_makes_no_job(
    api, staff_user, course, settings, fields, name, content, status, code, column
):
    response = upload(api(staff_user), csv_bytes(CLEAN) if content is None else content, name=name, **fields)

    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["errors"][0]["code"] == code and body["errors"][0]["column"] == column
    assert body["message"]
    assert not ImportJob.objects.exists()
    assert not list(settings.MEDIA_ROOT.rglob("*.*"))  # nothing stored


def test_an_upload_over_the_limit_is_refused_while_it_arrives(api, staff_user, course, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10_000
    big = csv_bytes(CLEAN * 2000)
    assert len(big) > 10_000 + 64 * 1024  # more than the limit and the form's overhead: refused at the first byte

    response = upload(api(staff_user), big)

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "F_TOO_LARGE" and "the limit is 10,000" in response.json()["message"]
    assert not ImportJob.objects.exists() and not list(settings.MEDIA_ROOT.rglob("*.*"))

    just_over = csv_bytes(CLEAN * 400)  # the request announces less than limit + overhead: counted as it arrives
    assert 10_000 < len(just_over) < 10_000 + 64 * 1024
    response = upload(api(staff_user), just_over)
    assert response.status_code == 413 and response.json()["code"] == "F_TOO_LARGE"
    assert not ImportJob.objects.exists()


def test_a_missing_file_field_is_refused(api, staff_user, course):
    response = api(staff_user).post("imports/", data={"importer": "course", "course": "CARD101"})

    assert response.status_code == 400 and response.json()["errors"][0]["column"] == "file"
    assert not ImportJob.objects.exists()


# -- who may do what ------------------------------------------------------------------------------------------
ENDPOINTS = [
    ("get", "imports/"),
    ("get", "imports/{job}/"),
    ("get", "imports/{job}/errors/"),
    ("get", "imports/{job}/error-report/"),
    ("post", "imports/{job}/confirm/"),
    ("post", "imports/{job}/cancel/"),
    ("post", "imports/{job}/revert/"),
    ("post", "imports/"),
]


def test_who_may_do_what(api, live_url, staff_user, admin_user, plain_user, course, learner, write_csv):
    from lms_import.services import import_job_create

    job = import_job_create(user=staff_user, importer="course", course=course, path=write_csv(CLEAN))
    anonymous = requests.Session()
    wrong_token = requests.Session()
    wrong_token.headers["Authorization"] = "Token 0123456789abcdef0123456789abcdef01234567"
    learner_api, staff, admin = api(plain_user), api(staff_user), api(admin_user)

    for method, path in ENDPOINTS:
        url = f"{live_url}/api/v1/" + path.format(job=job.pk)
        for who, session, expected, code in [
            ("anonymous", anonymous, 401, "NOT_AUTHENTICATED"),
            ("a wrong token", wrong_token, 401, "AUTHENTICATION_FAILED"),
            ("a user without the permission", learner_api, 403, "PERMISSION_DENIED"),
        ]:
            response = getattr(session, method)(url, timeout=30)
            assert (response.status_code, response.json()["code"]) == (expected, code), (who, method, path)
        if path.endswith("revert/"):
            assert staff.post(url).status_code == 403  # import staff do not revert
            assert admin.post(url).status_code == 409  # a site admin may (this job has not succeeded)
        else:
            response = getattr(staff, method)(url)
            assert response.status_code not in (401, 403), (method, path, response.text)
    assert ImportJob.objects.count() == 1  # none of the refused POSTs made a job


def test_a_logged_in_browser_uses_the_api_with_its_session_and_csrf_token(live_url, staff_user, course):
    browser = requests.Session()
    login_page = browser.get(f"{live_url}/accounts/login/", timeout=30)
    assert login_page.status_code == 200
    browser.post(
        f"{live_url}/accounts/login/",
        data={"username": "importer", "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{live_url}/accounts/login/"},
        timeout=30,
    )

    assert browser.get(f"{live_url}/api/v1/imports/", timeout=30).status_code == 200
    files = {"file": ("records.csv", csv_bytes(CLEAN), "text/csv")}
    data = {"importer": "course", "course": "CARD101"}
    no_token = browser.post(f"{live_url}/api/v1/imports/", data=data, files=files, timeout=30)
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["message"]
    assert not ImportJob.objects.exists()
    headers = {"X-CSRFToken": browser.cookies["csrftoken"], "Referer": f"{live_url}/"}
    with_token = browser.post(f"{live_url}/api/v1/imports/", data=data, files=files, headers=headers, timeout=30)
    assert with_token.status_code == 202, with_token.text


def test_the_schema_and_its_browsable_page_from_local_assets(live_url, api, staff_user):
    assert requests.get(f"{live_url}/api/schema/", timeout=30).status_code == 401  # for the API's users only
    schema = api(staff_user).get(f"{live_url}/api/schema/", params={"format": "json"})
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert {
        "/api/v1/imports/",
        "/api/v1/imports/{id}/",
        "/api/v1/imports/{id}/confirm/",
        "/api/v1/imports/{id}/cancel/",
        "/api/v1/imports/{id}/revert/",
        "/api/v1/imports/{id}/errors/",
        "/api/v1/imports/{id}/error-report/",
    } <= set(document["paths"])
    upload_form = document["paths"]["/api/v1/imports/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload_form["schema"]["$ref"].endswith("/Upload")

    anonymous = requests.get(f"{live_url}/api/docs/", timeout=30)
    assert anonymous.url.startswith(f"{live_url}/accounts/login/?next=")  # sent to log in, like the import pages
    browser = requests.Session()
    browser.get(f"{live_url}/accounts/login/", timeout=30)
    browser.post(
        f"{live_url}/accounts/login/",
        data={"username": "importer", "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{live_url}/accounts/login/"},
        timeout=30,
    )
    docs = browser.get(f"{live_url}/api/docs/", timeout=30)
    assert docs.status_code == 200 and docs.url == f"{live_url}/api/docs/"
    assets = [part.split('"')[0] for part in docs.text.split('src="')[1:]]
    assert assets and all(asset.startswith("/") for asset in assets), assets  # no CDN: our own static files
    for asset in assets:
        assert browser.get(live_url + asset, timeout=30).status_code == 200, asset


def test_a_saved_mapping_reads_a_file_whose_columns_are_named_otherwise(api, worker, staff_user, course, learner):
    ColumnMapping.objects.create(name="Registration export", columns=MAPPING)
    staff = api(staff_user)

    unknown = upload(staff, csv_text(ROWS, FOREIGN).encode(), mapping="Registraton export")
    uploaded = upload(staff, csv_text(ROWS, FOREIGN).encode(), mapping="Registration export")

    assert unknown.status_code == 400 and unknown.json()["code"] == "E_VALUE_INVALID"
    assert unknown.json()["message"].startswith(
        "mapping: There is no saved column mapping named 'Registraton export'. The saved mappings are: "
        "'Registration export'."
    )
    assert uploaded.status_code == 202, uploaded.text
    checked = job_when(staff, uploaded.json()["job"], "validated", "failed", worker=worker)
    assert checked["status"] == "validated" and checked["rows"] == {"total": 3, "valid": 2, "invalid": 1, "skipped": 0}
    assert [(e["line"], e["code"], e["column"]) for e in checked["errors"]] == [NOBODY]
    assert checked["mapping"] == {"name": "Registration export", "columns": MAPPING}
    job = ImportJob.objects.get()
    assert job.mapping.name == "Registration export" and job.mapping_applied == MAPPING
