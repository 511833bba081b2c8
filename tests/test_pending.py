"""The holding table: rows for learners without an account wait, then apply through the completion engine."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from enrollments.models import Enrollment, LearnerProfile, PendingRecord

from .conftest import run_cli

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def test_pending_rows_apply_when_a_profile_with_the_external_id_appears(course, write_csv):
    path = write_csv([["N-7", "", "", "", "2026-09-01", "1", "2026-09-14", "abim_moc", "1.50"]])
    assert run_cli(path, "--course", "CARD101")[0] == 0
    user = User.objects.create(username="n7")
    assert not Enrollment.objects.exists()  # no e-mail to match: still waiting

    LearnerProfile.objects.create(user=user, external_user_id="N-7")

    enrollment = Enrollment.objects.get(user=user)
    assert enrollment.import_job_id == PendingRecord.objects.get().import_job_id
    assert [(a.credit_type.machine_name, a.credits) for a in enrollment.credit_awards.all()] == [
        ("abim_moc", Decimal("1.50"))
    ]
    assert PendingRecord.objects.get().status == "applied"


def test_pending_rows_in_an_auto_complete_course_are_completed_with_all_credit(auto_course, write_csv):
    path = write_csv([["N-8", "n8@example.org", "", "", "2026-09-01", "0", "", "", ""]])
    code, out, _ = run_cli(path, "--course", "ETH200", "--allow-auto-complete", "--format", "json")
    assert code == 0 and json.loads(out)["created"]["pending"] == 1
    assert json.loads(out)["auto_completed"] == 1

    user = User.objects.create(username="n8", email="N8@example.org")

    enrollment = Enrollment.objects.get(user=user)
    assert enrollment.complete and enrollment.date_completed is not None
    assert {(a.credit_type.machine_name, a.credits) for a in enrollment.credit_awards.all()} == {
        ("ama_pra_1", Decimal("1.00")),
        ("ancc", Decimal("1.50")),
    }


def test_an_import_that_creates_the_account_applies_its_rows_waiting_from_earlier(course, auto_course, write_csv):
    waiting = write_csv([["N-9", "n9@example.org", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00"]])
    assert run_cli(waiting, "--course", "CARD101")[0] == 0
    later = write_csv([["N-9", "n9@example.org", "Nia", "Nine", "2026-10-01", "0", "", "", ""]])

    flags = ("--create-accounts", "--allow-auto-complete", "--format", "json")
    code, out, _ = run_cli(later, "--course", "ETH200", *flags)

    assert code == 0, out
    user = User.objects.get(email="n9@example.org")
    assert set(Enrollment.objects.filter(user=user).values_list("course__external_course_id", flat=True)) == {
        "CARD101",
        "ETH200",
    }
    assert not PendingRecord.objects.filter(status="pending").exists()
