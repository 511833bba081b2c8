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

from .conftest import make_learner, run_cli

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


# -- every certificate, for site admins ---------------------------------------------------------------------
@pytest.mark.django_db
def test_the_list_filter_is_the_rule(course, learner):
    """certified() picks exactly the enrollments certificate_refusal gives a certificate, in every combination."""
    from itertools import product

    from enrollments.certificates import certified

    users = iter(User.objects.create(username=f"u{i}") for i in range(100))
    expected = set()
    for n, (kind, enabled, complete, source) in enumerate(
        product(["course", "shell"], [True, False], [True, False], ["native", "course_import", "legacy_import"])
    ):
        where = Course.objects.create(external_course_id=f"C{n}", title="t", kind=kind, certificate_enabled=enabled)
        enrollment = Enrollment.objects.create(
            user=next(users),
            course=where,
            complete=complete,
            source=source,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        if certificate_refusal(course_kind=kind, certificate_enabled=enabled, complete=complete, source=source) is None:
            expected.add(enrollment.pk)

    assert set(Enrollment.objects.filter(certified()).values_list("pk", flat=True)) == expected


@pytest.mark.django_db(transaction=True)
def test_site_admins_search_every_certificate_and_a_job_links_to_its_own(
    imported_records, course, learner, client, django_assert_max_num_queries
):
    other = make_learner("L-2", "james@example.org", "James", "Chen")
    enrollment_create(user=other, course=course, complete=True, date_completed=datetime(2026, 9, 20, tzinfo=UTC))
    root = User.objects.create(username="root", email="root@example.org", is_staff=True, is_superuser=True)
    client.force_login(root)

    with django_assert_max_num_queries(8):
        page = client.get("/certificates/")

    text = page_text(page)
    assert "2 certificates" in text
    assert text.index("James Chen") < text.index("Maria Garcia")  # the latest completion first
    assert "OLD-ACLS" not in text  # a shell's record is no certificate
    assert "Cardiology Update" in text and "2026-09-14" in text and "maria@example.org" in text

    found = page_text(client.get("/certificates/", {"q": "garcia MARIA"}))
    assert "1 certificate " in found and "Maria Garcia" in found and "James Chen" not in found
    assert "1 certificate " in page_text(client.get("/certificates/", {"q": "james@"}))
    assert "0 certificates" in page_text(
        client.get(
            "/certificates/",
            {
                "course": Course.objects.create(
                    external_course_id="EMPTY", title="Nobody yet", certificate_enabled=True
                ).pk
            },
        )
    )

    job = imported_records["course"].import_job
    job_page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert f'href="/certificates/?job={job.pk}"' in job_page
    of_job = page_text(client.get("/certificates/", {"job": job.pk}))
    assert f"imported by import #{job.pk}" in of_job
    assert "1 certificate " in of_job and "Maria Garcia" in of_job and "James Chen" not in of_job

    # A learner still sees only their own, and no search
    client.force_login(other)
    mine = page_text(client.get("/certificates/", {"q": "garcia"}))
    assert "My certificates" in mine and "Cardiology Update (CARD101)" in mine and "Maria" not in mine


@pytest.mark.django_db(transaction=True)
def test_the_list_at_100k_certificates_is_one_page_in_a_few_queries(
    course, credit_types, client, django_assert_max_num_queries
):
    from .bulk import big_activity

    big_activity(course=course, credit_type=credit_types["ama_pra_1"], n=100_000)
    client.force_login(User.objects.create(username="root", email="root@example.org", is_superuser=True))

    with django_assert_max_num_queries(8):
        page = client.get("/certificates/", {"page": "1500"})

    text = page_text(page)
    assert "100000 certificates" in text and "Page 1500 of 2000" in text
    assert len(page.context["certificates_page"].object_list) == 50
    assert len(page.content) < 100_000
    with django_assert_max_num_queries(8):
        found = page_text(client.get("/certificates/", {"q": "big-77777@"}))
    assert "1 certificate " in found and "big-77777@example.org" in found
