"""PARS on PostgreSQL: records made by real imports and natively, the page, its CSV and manage.py pars_report."""

import csv
import html
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from courses.models import Course, CourseObject
from enrollments.models import Enrollment
from enrollments.services import enrollment_create

from .conftest import make_learner, run_cli

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()

PARS_HEADER = [
    "external_user_id",
    "first_name",
    "last_name",
    "enrollment_start",
    "complete",
    "date_completed",
    "credit_type",
    "credits",
    "participant_category",
    "dob_month",
    "dob_day",
    "licensing_state",
    "license_id",
    "certifying_board",
    "board_id",
]
GLOBAL_HEADER = [
    "external_user_id",
    "external_course_id",
    "title",
    "enrollment_start",
    "complete",
    "date_completed",
    "credit_type",
    "credits",
    "participant_category",
]


def page_text(response) -> str:
    """What a user reads: the page without tags, whitespace collapsed."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return re.sub(r"\s+", " ", text)


def pars_rows(report_csv: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(report_csv.lstrip("\ufeff"))))


@pytest.fixture
def pars_site(course, credit_types, write_csv):
    """CARD101 (activity 0012345) with course-level, native and legacy records; a shell with an activity id."""
    names = {"L-1": "Maria Garcia", "L-2": "James Chen", "L-3": "Aisha Okafor", "L-4": "Noor Haddad"}
    names |= {"L-5": "Sam Patel", "L-6": "Olga Novak", "L-7": "Lee Kim"}
    for uid, name in names.items():
        make_learner(uid, f"{uid.lower()}@example.org", *name.split())
    course_level = write_csv(
        [
            # a physician with everything a state board and ABIM need; leading zeros everywhere
            ["L-1", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00", "physician"]
            + ["04", "09", "CA", "0045123", "ABIM", "0981"],
            ["L-1", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "abim_moc", "2.00", "physician"]
            + ["04", "09", "CA", "0045123", "ABIM", "0981"],
            # a physician whose MOC needs a board id that nobody gave
            ["L-2", "James", "Chen", "2026-09-02", "1", "2026-09-20", "abim_moc", "1.50", "physician"]
            + ["11", "23", "NY", "1234567890", "ABIM", ""],
            # another learner: counted, not in the physicians' file
            ["L-3", "Aisha", "Okafor", "2026-09-03", "1", "2026-09-18", "ancc", "2.00", "other"] + [""] * 6,
            # enrolled, not complete: counted only
            ["L-4", "Noor", "Haddad", "2026-09-05", "0", "", "", "", "physician"] + [""] * 6,
            # no category: not counted
            ["L-5", "Sam", "Patel", "2026-09-05", "0", "", "", "", ""] + [""] * 6,
        ],
        header=PARS_HEADER,
    )
    code, out, err = run_cli(course_level, "--course", "CARD101")
    assert code == 0, out + err

    native_learner = User.objects.get(username="l-6@example.org")
    profile = native_learner.learner_profile
    profile.dob_month, profile.dob_day, profile.licensing_state, profile.license_id = "02", "28", "TX", "0077889"
    profile.save()
    enrollment_create(
        user=native_learner,
        course=course,
        enrollment_start=parse_datetime("2026-09-06T00:00:00+00:00"),
        complete=True,
        date_completed=parse_datetime("2026-10-01T00:00:00+00:00"),
        participant_category="physician",
        awards={credit_types["ama_pra_1"].pk: (Decimal("1.75"), None)},
    )

    # A second course reported under the same activity, and a course that is no PARS activity at all
    second = Course.objects.create(external_course_id="CARD102", title="Cardiology Lab", pars_activity_id="0012345")
    CourseObject.objects.create(course=second, title="Evaluation", required=True)
    no_start = enrollment_create(user=User.objects.get(username="l-7@example.org"), course=second)
    Enrollment.objects.filter(pk=no_start.pk).update(participant_category="physician")  # no enrollment_start
    enrollment_create(
        user=native_learner,
        course=Course.objects.create(external_course_id="NOPARS", title="Not reported"),
        enrollment_start=parse_datetime("2026-09-06T00:00:00+00:00"),
        participant_category="physician",
    )

    Course.objects.create(external_course_id="NEW101", title="Not started yet", pars_activity_id="0077777")
    shell = Course.objects.create(
        external_course_id="OLD-PARS", title="Old activity", kind="shell", pars_activity_id="0099999"
    )
    legacy = write_csv(
        [
            # legacy rows into a real PARS course and into a shell that has an activity id: never reported
            ["L-7", "CARD101", "", "2026-09-01", "1", "2026-09-10", "ama_pra_1", "1.00", "physician"],
            ["L-7", "OLD-PARS", "Old activity", "2019-03-01", "1", "2019-03-02", "ama_pra_1", "4.00", "physician"],
            ["L-7", "OLD-NEW", "Brand new shell", "2018-03-01", "1", "2018-03-02", "ancc", "4.00", "other"],
        ],
        header=GLOBAL_HEADER,
    )
    code, out, err = run_cli(legacy, "--global")
    assert code == 0, out + err
    return {"course": course, "shell": shell}


@pytest.fixture
def admin_client(client):
    admin = User.objects.create(username="admin", email="admin@example.org", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_counts_include_native_and_course_level_records_only(pars_site, admin_client):
    page = admin_client.get("/reports/pars/")

    assert page.status_code == 200
    text = page_text(page)
    report = page.context["report"]
    # the shell's 0099999 never appears; a PARS course without records yet does, with zero learners
    assert [a.activity_id for a in report.activities] == ["0012345", "0077777"]
    assert (report.activities[1].physicians, report.activities[1].others) == (0, 0)
    card = report.activities[0]
    # physicians: L-1, L-2, L-4 (imported) and the native L-6; the legacy L-7 never counts; L-5 has no category
    # and L-7's native CARD102 enrollment no start, so neither is counted; NOPARS is no activity at all
    assert (card.physicians, card.others, card.not_counted) == (4, 1, 2)
    assert card.courses == ["CARD101 Cardiology Update", "CARD102 Cardiology Lab"]
    assert 'data-activity="0012345"' in page.content.decode()
    assert report.left_out == {"shell": 2, "legacy": 1}
    assert "2 records left out: in course shells" in text
    assert "1 record left out: imported with the global (legacy) importer" in text
    assert "2 not counted: enrollments without an enrollment start or a participant category" in text


def test_learner_csv_has_the_accme_layout_and_only_reportable_physicians(pars_site, admin_client):
    response = admin_client.get("/reports/pars/learners.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="pars-learners-all-')
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeffRecord Action,ACCME Activity ID,Completion Date,First Name,Last Name,")
    rows = pars_rows(body)
    assert [(r["Last Name"], r["Completion Date"]) for r in rows] == [("Garcia", "09/14/2026"), ("Novak", "10/01/2026")]
    maria = rows[0]
    assert maria["ACCME Activity ID"] == "0012345"
    assert maria["Date of Birth MM/DD"] == "04/09"
    assert maria["Licensing ID or NPI"] == "0045123"
    assert maria["Certifying Board"] == "ABIM" and maria["Certifying Board ID"] == "0981"
    assert maria["Number of CME Credits"] == "2.00" and maria["Number of MOC Points"] == "2.00"
    assert maria["Record Action"] == "Add"


def test_learners_missing_board_data_are_listed_not_dropped(pars_site, admin_client):
    page = admin_client.get("/reports/pars/")

    missing = page.context["missing_page"].items
    assert [(m.completion.learner, m.missing) for m in missing] == [("L-2", ["certifying board ID"])]
    text = page_text(page)
    assert "Learners missing data a board needs" in text and "L-2" in text and "certifying board ID" in text
    assert "1 completion is not in the file" in text
    assert "1 completion missing certifying board ID" in text

    listed = pars_rows(admin_client.get("/reports/pars/missing.csv").content.decode())
    assert [(r["Learner"], r["Last Name"], r["Missing"]) for r in listed] == [("L-2", "Chen", "certifying board ID")]


def test_period_and_activity_filters(pars_site, admin_client):
    september = admin_client.get("/reports/pars/learners.csv", {"date_from": "2026-09-01", "date_to": "2026-09-30"})
    assert [r["Last Name"] for r in pars_rows(september.content.decode())] == ["Garcia"]

    other = admin_client.get("/reports/pars/", {"activity": "0012345", "date_from": "2026-09-06"})
    card = other.context["report"].activities[0]
    assert (card.physicians, card.others) == (1, 0)  # only the native enrollment started on or after 6 Sep

    wrong = admin_client.get("/reports/pars/", {"date_from": "2026-10-01", "date_to": "2026-09-01"})
    assert "start is after its end" in page_text(wrong)


def test_completion_date_does_not_drift_in_a_zone_west_of_utc(course, learner, write_csv, settings, admin_client):
    settings.TIME_ZONE = "America/Los_Angeles"
    path = write_csv(
        [
            ["L-1", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00", "physician"]
            + ["04", "09", "CA", "0045123", "", ""]
        ],
        header=PARS_HEADER,
    )
    assert run_cli(path, "--course", "CARD101")[0] == 0

    rows = pars_rows(admin_client.get("/reports/pars/learners.csv").content.decode())

    assert rows[0]["Completion Date"] == "09/14/2026"


def test_the_report_is_for_admins_and_enrollment_viewers(pars_site, client):
    assert client.get("/reports/pars/").status_code == 302
    assert client.get("/reports/pars/")["Location"].startswith("/accounts/login/")
    plain = User.objects.create(username="plain")
    client.force_login(plain)
    assert client.get("/reports/pars/").status_code == 403
    assert client.get("/reports/pars/learners.csv").status_code == 403
    plain.user_permissions.add(Permission.objects.get(codename="view_enrollment"))
    client.force_login(User.objects.get(pk=plain.pk))
    assert client.get(reverse("enrollments:pars-report")).status_code == 200


def test_manage_py_pars_report(pars_site, tmp_path):
    output = tmp_path / "pars.csv"
    out = io.StringIO()

    call_command("pars_report", "--output", str(output), stdout=out)

    text = out.getvalue()
    assert "Activity 0012345 (CARD101 Cardiology Update, CARD102 Cardiology Lab): 4 physicians, 1 other" in text
    assert "Left out: 2 records in course shells" in text
    assert "Left out: 1 record imported with the global (legacy) importer" in text
    assert "Missing data: L-2 (James Chen), activity 0012345, course CARD101: certifying board ID" in text
    rows = pars_rows(output.read_text(encoding="utf-8-sig"))
    assert [r["Licensing ID or NPI"] for r in rows] == ["0045123", "0077889"]

    one = io.StringIO()
    call_command(
        "pars_report",
        "--activity",
        "0012345",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--output",
        "-",
        stdout=one,
    )
    assert [r["First Name"] for r in pars_rows(one.getvalue())] == ["Olga"]
