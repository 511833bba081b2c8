"""Shared fixtures: a small catalog that mirrors a real CME site, CSV builders, and CLI runners."""

import csv
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditType
from enrollments.models import LearnerProfile

ROOT = Path(__file__).resolve().parent.parent
HEADER = [
    "external_user_id",
    "external_email",
    "first_name",
    "last_name",
    "enrollment_start",
    "complete",
    "date_completed",
    "credit_type",
    "credits",
]


@pytest.fixture(autouse=True)
def _media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_HEARTBEAT_SECONDS = 1


def csv_text(rows: list[list], header: list[str] = HEADER, delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(rows, header=HEADER, name=..., encoding='utf-8') -> Path"""
    counter = iter(range(1, 10_000))

    def write(rows, header=HEADER, name=None, encoding="utf-8", delimiter=","):
        path = tmp_path / (name or f"records-{next(counter)}.csv")
        path.write_bytes(csv_text(rows, header, delimiter).encode(encoding))
        return path

    return write


@pytest.fixture
def credit_types(db):
    return {
        name: CreditType.objects.create(machine_name=name, name=title)
        for name, title in [
            ("ama_pra_1", "AMA PRA Category 1 Credit"),
            ("ancc", "ANCC Contact Hours"),
            ("abim_moc", "ABIM MOC Points"),
            ("acpe", "ACPE Contact Hours"),
        ]
    }


@pytest.fixture
def course(credit_types):
    """CARD101: a required course object, so the completion engine leaves enrollments alone."""
    course = Course.objects.create(
        external_course_id="CARD101", title="Cardiology Update", pars_activity_id="0012345", certificate_enabled=True
    )
    CourseObject.objects.create(course=course, title="Claim credit", kind="credit_claim", required=True)
    CourseCredit.objects.create(
        course=course, credit_type=credit_types["ama_pra_1"], max_credits=Decimal("2.00"), variable=True
    )
    CourseCredit.objects.create(
        course=course, credit_type=credit_types["ancc"], max_credits=Decimal("2.00"), variable=False
    )
    CourseCredit.objects.create(
        course=course,
        credit_type=credit_types["abim_moc"],
        max_credits=Decimal("2.00"),
        variable=True,
        increment=Decimal("0.50"),
    )
    return course


@pytest.fixture
def auto_course(credit_types):
    """ETH200: no course objects at all, so every new enrollment completes at once with maximum credit."""
    course = Course.objects.create(external_course_id="ETH200", title="Ethics Grand Rounds")
    CourseCredit.objects.create(course=course, credit_type=credit_types["ama_pra_1"], max_credits=Decimal("1.00"))
    CourseCredit.objects.create(course=course, credit_type=credit_types["ancc"], max_credits=Decimal("1.50"))
    return course


@pytest.fixture
def learner(db):
    return make_learner("L-1", "maria@example.org", "Maria", "Garcia")


def make_learner(external_id, email, first="", last="", **profile):
    user = get_user_model().objects.create(username=email or external_id, email=email, first_name=first, last_name=last)
    # update_or_create: a held row matching this e-mail may already have given the account a profile
    LearnerProfile.objects.update_or_create(user=user, defaults={"external_user_id": external_id, **profile})
    return user


def run_cli(*args) -> tuple[int, str, str]:
    """call_command import_course_records in this process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_course_records", *[str(a) for a in args], stdout=out, stderr=err)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, out.getvalue(), err.getvalue()


def manage(*args, env=None, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    """A real manage.py subprocess against the test database."""
    from django.db import connection

    environment = os.environ | {"DATABASE_URL": database_url(connection.settings_dict)} | (env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=ROOT,
        **kwargs,
    )


def database_url(settings_dict) -> str:
    s = settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
