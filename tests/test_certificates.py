"""Certificates: the rule on plain values, then pages and PDFs of records made by real imports and natively."""

import html
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from pypdf import PdfReader

from courses.models import Course
from enrollments.certificates import (
    HOW_TO_GET_ONE,
    REFUSED_DISABLED,
    REFUSED_INCOMPLETE,
    REFUSED_LEGACY,
    REFUSED_SHELL,
    Certificate,
    certificate_pdf,
    certificate_refusal,
)
from enrollments.models import Enrollment
from enrollments.services import enrollment_create

from .conftest import run_cli

User = get_user_model()
GLOBAL_HEADER = [
    "external_user_id",
    "external_course_id",
    "title",
    "complete",
    "date_completed",
    "credit_type",
    "credits",
]


def page_text(response) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return re.sub(r"\s+", " ", text)


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


# -- the rule ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "enabled", "complete", "source", "expected"),
    [
        ("course", True, True, "course_import", None),
        ("course", True, True, "native", None),
        ("shell", False, True, "legacy_import", REFUSED_SHELL),
        ("shell", True, True, "native", REFUSED_SHELL),
        ("course", True, True, "legacy_import", REFUSED_LEGACY),
        ("course", False, True, "native", REFUSED_DISABLED),
        ("course", True, False, "native", REFUSED_INCOMPLETE),
    ],
)
def test_who_has_a_certificate(kind, enabled, complete, source, expected):
    refusal = certificate_refusal(course_kind=kind, certificate_enabled=enabled, complete=complete, source=source)
    assert refusal == expected


def test_the_pdf_names_learner_course_date_and_each_credit():
    certificate = Certificate(
        enrollment_id=1,
        learner="Zoë Ångström-Łukasz",
        course_title="Cardiology Update",
        course_id="CARD101",
        completed=datetime(2026, 9, 14, tzinfo=UTC),
        credits=[
            ("AMA PRA Category 1 Credit™", Decimal("2.00"), "credits"),
            ("ANCC Contact Hours", Decimal("1.5"), ""),
        ],
    )

    data = certificate_pdf(certificate, UTC)

    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in [
        "Certificate of Completion",
        "Zoë Ångström-Łukasz",
        "Cardiology Update",
        "CARD101",
        "September 14, 2026",
        "2.00 AMA PRA Category 1 Credit™",
        "1.50 ANCC Contact Hours",
    ]:
        assert expected in text


# -- pages and PDFs ----------------------------------------------------------------------------------------
@pytest.fixture
def imported_records(course, learner, credit_types, write_csv):
    """Maria completes CARD101 (course-level import) and an old ACLS course (global import into a shell)."""
    course_level = write_csv(
        [
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"],
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ancc", "2.00"],
        ]
    )
    assert run_cli(course_level, "--course", "CARD101")[0] == 0
    legacy = write_csv([["L-1", "OLD-ACLS", "ACLS 2019", "1", "2019-03-02", "ama_pra_1", "4.00"]], header=GLOBAL_HEADER)
    assert run_cli(legacy, "--global")[0] == 0
    return {
        "course": Enrollment.objects.get(course=course),
        "shell": Enrollment.objects.get(course__external_course_id="OLD-ACLS"),
    }


@pytest.mark.django_db(transaction=True)
def test_a_complete_enrollment_has_a_certificate_page_and_pdf(imported_records, learner, client):
    enrollment = imported_records["course"]
    client.force_login(learner)

    page = client.get(f"/certificates/{enrollment.pk}/")

    text = page_text(page)
    assert page.status_code == 200
    assert "Maria Garcia" in text and "Cardiology Update (CARD101)" in text
    assert "September 14, 2026" in text
    assert "2.00 AMA PRA Category 1 Credit" in text and "2.00 ANCC Contact Hours" in text
    assert f'href="/certificates/{enrollment.pk}/pdf/"' in page.content.decode()

    pdf = client.get(f"/certificates/{enrollment.pk}/pdf/")

    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    # "Download PDF" downloads: an attachment, not a page the browser opens in place.
    assert pdf["Content-Disposition"] == f'attachment; filename="certificate-CARD101-{enrollment.pk}.pdf"'
    text = pdf_text(pdf.content)
    for expected in ["Maria Garcia", "Cardiology Update", "September 14, 2026", "2.00 AMA PRA Category 1 Credit"]:
        assert expected in text
    assert "2.00 ANCC Contact Hours" in text


@pytest.mark.django_db(transaction=True)
def test_a_shell_never_has_a_certificate_and_says_how_to_get_one(imported_records, learner, client):
    enrollment = imported_records["shell"]
    client.force_login(learner)

    page = client.get(f"/certificates/{enrollment.pk}/")

    text = page_text(page)
    assert page.status_code == 200
    assert "No certificate." in text and REFUSED_SHELL in text and HOW_TO_GET_ONE in text
    assert "Download PDF" not in text
    assert client.get(f"/certificates/{enrollment.pk}/pdf/").status_code == 404

    listing = page_text(client.get("/certificates/"))
    assert "Cardiology Update (CARD101)" in listing and "ACLS 2019 (OLD-ACLS) — no certificate" in listing


def without_csrf_token(html: bytes) -> bytes:
    """A page without the CSRF token of its logout form, which differs each time."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", html)


@pytest.mark.django_db
def test_learners_see_only_their_own_certificates_and_admins_see_all(course, learner, client):
    enrollment = enrollment_create(
        user=learner, course=course, complete=True, date_completed=datetime(2026, 9, 14, tzinfo=UTC)
    )
    url = f"/certificates/{enrollment.pk}/"
    assert client.get(url)["Location"].startswith("/accounts/login/")
    someone = User.objects.create(username="someone")
    client.force_login(someone)
    # Another learner's certificate answers exactly like one that does not exist: ids cannot be enumerated.
    for path in ("", "pdf/"):
        theirs, missing = client.get(f"{url}{path}"), client.get(f"/certificates/999999/{path}")
        assert theirs.status_code == missing.status_code == 404
        assert without_csrf_token(theirs.content) == without_csrf_token(missing.content)
    client.force_login(User.objects.create(username="root", email="root@example.org", is_staff=True, is_superuser=True))
    assert client.get(url).status_code == 200 and client.get(url + "pdf/").status_code == 200


@pytest.mark.django_db
def test_disabled_and_incomplete_have_no_certificate(course, learner, client):
    quiet = Course.objects.create(external_course_id="NOCERT", title="No certificates here")
    disabled = enrollment_create(
        user=learner, course=quiet, complete=True, date_completed=datetime(2026, 9, 14, tzinfo=UTC)
    )
    ongoing = enrollment_create(user=learner, course=course)
    client.force_login(learner)

    assert REFUSED_DISABLED in page_text(client.get(f"/certificates/{disabled.pk}/"))
    assert REFUSED_INCOMPLETE in page_text(client.get(f"/certificates/{ongoing.pk}/"))
    assert client.get(f"/certificates/{ongoing.pk}/pdf/").status_code == 404
