"""Revert on PostgreSQL: records made by real imports, then reverted by the service, the command and the page."""

import html
import io
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from courses.models import Course, CourseCredit
from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile, PendingRecord
from enrollments.services import enrollment_create
from lms_import.models import AuditEvent, ImportJob, ImportLock
from lms_import.revert import RevertLocked, RevertRefused, import_job_revert, import_job_revert_plan
from lms_import.tasks import revert_import_job

from .conftest import make_learner, run_cli

pytestmark = pytest.mark.django_db(transaction=True)
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


def imported(*args) -> ImportJob:
    code, out, err = run_cli(*args, "--format", "json")
    assert code == 0, out + err
    return ImportJob.objects.get(pk=json.loads(out)["job"])


def page_text(response) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def superuser(db):
    return User.objects.create(username="root", email="root@example.org", is_staff=True, is_superuser=True)


@pytest.fixture
def course_job(course, learner, write_csv):
    """A course-level import: Maria (an existing learner) with two credits, and a new account for Noor."""
    path = write_csv(
        [
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"],
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ancc", "2.00"],
            ["N-1", "noor@example.org", "Noor", "Haddad", "2026-09-02", "1", "2026-09-15", "ama_pra_1", "1.00"],
        ]
    )
    return imported(path, "--course", "CARD101", "--create-accounts")


def test_revert_removes_everything_the_job_created_in_one_audited_step(course_job, learner, superuser):
    assert Enrollment.objects.count() == 2 and CreditAward.objects.count() == 3
    assert User.objects.filter(email="noor@example.org").exists()

    result = import_job_revert(job=course_job, user=superuser)

    assert result.removed == {"enrollments": 2, "credits": 3, "pending": 0, "accounts": 1, "shells": 0}
    assert result.kept_total == 0
    assert not Enrollment.objects.exists() and not CreditAward.objects.exists()
    assert not User.objects.filter(email="noor@example.org").exists()
    assert not LearnerProfile.objects.filter(external_user_id="N-1").exists()
    assert User.objects.filter(pk=learner.pk).exists()  # Maria's account was not the import's
    course_job.refresh_from_db()
    assert course_job.status == "reverted" and course_job.reverted_by == superuser and course_job.reverted_at
    event = AuditEvent.objects.get(action="revert")
    assert event.actor == superuser and event.job == course_job
    assert event.details["removed"]["enrollments"] == 2 and event.details["kept_records"] == []


def test_records_changed_since_are_listed_and_kept(course_job, learner, superuser, credit_types):
    maria = Enrollment.objects.get(user=learner)
    maria.attended = True
    maria.save()  # an admin's edit moves updated_at
    noor = Enrollment.objects.get(user__email="noor@example.org")
    award = noor.credit_awards.get()
    award.credits = Decimal("0.75")
    award.save()

    plan = import_job_revert_plan(job=course_job)
    result = import_job_revert(job=course_job, user=superuser)

    assert plan.removed == result.removed == {"enrollments": 0, "credits": 0, "pending": 0, "accounts": 0, "shells": 0}
    assert result.kept == {"enrollments": 2, "credits": 3, "pending": 0, "accounts": 1, "shells": 0}
    reasons = {k.label.split(":")[0]: k.reason for k in result.kept_records}
    assert reasons[f"Enrollment #{maria.pk}"].startswith("changed since the import")
    assert reasons[f"Enrollment #{noor.pk}"] == "its credit was changed since the import"
    assert "the account has other records" in reasons["Account noor@example.org"]
    assert Enrollment.objects.count() == 2 and CreditAward.objects.count() == 3
    kept = AuditEvent.objects.get(action="revert").details["kept_records"]
    assert {k["record"] for k in kept} >= {f"Enrollment #{maria.pk}: maria@example.org in CARD101"}


def test_credit_added_natively_keeps_the_enrollment_and_a_used_account_is_kept(course_job, superuser, credit_types):
    noor_user = User.objects.get(email="noor@example.org")
    noor = Enrollment.objects.get(user=noor_user)
    CreditAward.objects.create(enrollment=noor, credit_type=credit_types["abim_moc"], credits=Decimal("1.00"))
    maria = Enrollment.objects.get(user__email="maria@example.org")

    result = import_job_revert(job=course_job, user=superuser)

    assert not Enrollment.objects.filter(pk=maria.pk).exists()
    assert Enrollment.objects.filter(pk=noor.pk).exists()
    assert result.removed["enrollments"] == 1 and result.removed["credits"] == 2
    assert any(k.reason == "credit was added to it since the import" for k in result.kept_records)
    assert User.objects.filter(pk=noor_user.pk).exists()


def test_an_account_that_logged_in_is_kept(course_job, superuser):
    User.objects.filter(email="noor@example.org").update(last_login=timezone.now())

    result = import_job_revert(job=course_job, user=superuser)

    assert result.removed["enrollments"] == 2 and result.removed["accounts"] == 0
    assert [k.reason for k in result.kept_records if k.kind == "accounts"] == [
        "the account has been used since the import (logged in, a password set, or staff rights)"
    ]


def test_pending_records_waiting_and_applied_since_are_removed_with_their_enrollments(course, write_csv, superuser):
    path = write_csv(
        [
            ["P-1", "pia@example.org", "Pia", "Berg", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ["P-2", "tom@example.org", "Tom", "Berg", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
        ]
    )
    job = imported(path, "--course", "CARD101")
    pia = User.objects.create(username="pia", email="pia@example.org")  # the holding table applies her row
    assert Enrollment.objects.get(user=pia).import_job == job

    result = import_job_revert(job=job, user=superuser)

    assert result.removed == {"enrollments": 1, "credits": 1, "pending": 2, "accounts": 0, "shells": 0}
    assert not PendingRecord.objects.exists() and not Enrollment.objects.exists()
    assert User.objects.filter(pk=pia.pk).exists()  # she signed up herself


def test_global_import_revert_removes_empty_shells_and_keeps_used_ones(learner, credit_types, write_csv, superuser):
    path = write_csv(
        [
            ["L-1", "OLD-ACLS", "ACLS 2019", "1", "2019-03-02", "ama_pra_1", "4.00"],
            ["L-1", "OLD-PALS", "PALS 2018", "1", "2018-05-11", "ancc", "6.50"],
        ],
        header=GLOBAL_HEADER,
    )
    job = imported(path, "--global")
    pals = Course.objects.get(external_course_id="OLD-PALS")
    other = make_learner("L-2", "james@example.org")
    enrollment_create(user=other, course=pals)  # someone else's record in the shell since

    result = import_job_revert(job=job, user=superuser)

    assert result.removed == {"enrollments": 2, "credits": 2, "pending": 0, "accounts": 0, "shells": 1}
    assert not Course.objects.filter(external_course_id="OLD-ACLS").exists()
    assert Course.objects.filter(pk=pals.pk).exists()
    assert [(k.label, k.reason) for k in result.kept_records] == [
        ("Course shell OLD-PALS", "the shell still holds records (other enrollments or pending records)")
    ]


def test_a_shell_given_credit_since_is_kept(learner, credit_types, write_csv, superuser):
    path = write_csv([["L-1", "OLD-ACLS", "ACLS 2019", "1", "2019-03-02", "ama_pra_1", "4.00"]], header=GLOBAL_HEADER)
    job = imported(path, "--global")
    shell = Course.objects.get(external_course_id="OLD-ACLS")
    CourseCredit.objects.create(course=shell, credit_type=credit_types["ancc"], max_credits=Decimal("1.00"))

    result = import_job_revert(job=job, user=superuser)

    assert result.removed["enrollments"] == 1 and result.removed["shells"] == 0
    assert Course.objects.filter(pk=shell.pk).exists()


def test_reverting_twice_or_a_job_that_did_not_succeed_is_refused(course_job, course, learner, write_csv, superuser):
    import_job_revert(job=course_job, user=superuser)
    with pytest.raises(RevertRefused, match="already reverted"):
        import_job_revert(job=course_job, user=superuser)

    path = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]])
    code, out, _ = run_cli(path, "--course", "CARD101", "--dry-run", "--format", "json")
    dry = ImportJob.objects.get(pk=json.loads(out)["job"])
    with pytest.raises(RevertRefused, match="dry run"):
        import_job_revert(job=dry, user=superuser)
    assert AuditEvent.objects.filter(action="revert").count() == 1


def test_revert_waits_for_no_running_import(course_job, superuser):
    ImportLock.objects.filter(scope="course_records").update(
        token="abc", job=course_job, acquired_at=timezone.now(), heartbeat_at=timezone.now()
    )

    with pytest.raises(RevertLocked, match="An import is running"):
        import_job_revert(job=course_job, user=superuser)

    assert Enrollment.objects.count() == 2
    course_job.refresh_from_db()
    assert course_job.status == "succeeded"


def test_a_corrected_file_imports_cleanly_after_a_revert(course, learner, write_csv, superuser):
    wrong = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00"]])
    job = imported(wrong, "--course", "CARD101")

    refused = run_cli(wrong, "--course", "CARD101", "--format", "json")
    assert refused[0] == 1 and "E_CREDIT_EXISTS" in refused[1]

    import_job_revert(job=job, user=superuser)
    corrected = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]])
    code, out, _ = run_cli(corrected, "--course", "CARD101", "--format", "json")

    assert code == 0 and json.loads(out)["errors"] == []
    assert "W_ALREADY_IMPORTED" not in {w["code"] for w in json.loads(out)["warnings"]}
    assert Enrollment.objects.get().credit_awards.get().credits == Decimal("2.00")


def test_manage_py_revert_import(course_job, superuser):
    plan = io.StringIO()
    call_command("revert_import", course_job.pk, "--plan", stdout=plan)
    assert "Would remove: 2 enrollments, 3 credits, 0 pending, 1 accounts, 0 shells." in plan.getvalue()
    assert Enrollment.objects.count() == 2

    with pytest.raises(CommandError, match="not a site admin") as not_admin:
        call_command("revert_import", course_job.pk, "--user", "maria@example.org", stdout=io.StringIO())
    assert not_admin.value.returncode == 2

    out = io.StringIO()
    call_command("revert_import", course_job.pk, "--user", "root", "--format", "json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["reverted"] is True and result["removed"]["enrollments"] == 2
    assert AuditEvent.objects.get(action="revert").actor == superuser

    with pytest.raises(CommandError, match="already reverted") as twice:
        call_command("revert_import", course_job.pk, stdout=io.StringIO())
    assert twice.value.returncode == 1
    with pytest.raises(CommandError, match="no import job") as missing:
        call_command("revert_import", 999999, stdout=io.StringIO())
    assert missing.value.returncode == 2


def test_revert_page_confirms_then_reverts(course_job, superuser, client):
    client.force_login(superuser)
    url = f"/import/jobs/{course_job.pk}/revert/"

    confirm = client.get(url)

    text = page_text(confirm)
    assert confirm.status_code == 200
    assert "Will be removed Enrollments 2 Credits 3 Pending 0 Accounts 1 Shells 0" in text
    assert "Nothing: no record of this import has changed since." in text
    assert Enrollment.objects.count() == 2  # GET changes nothing

    asked = client.post(url, follow=True)

    assert f"The revert of import #{course_job.pk} is queued; this page shows its progress." in page_text(asked)
    assert "Waiting for a worker to revert" in page_text(asked)
    assert Enrollment.objects.count() == 2  # the request removes nothing: a worker does
    assert revert_import_job(course_job.pk) == "done"  # what the queued task runs in a worker

    text = page_text(client.get(url))
    assert "This import was reverted on" in text and "Status Reverted" in text
    assert all(f"{kind} {count}" in text for kind, count in [("Enrollments", 2), ("Credits", 3), ("Accounts", 1)])
    assert not Enrollment.objects.exists()
    again = client.post(url, follow=True)
    assert "already reverted" in page_text(again)


def test_revert_page_is_for_superusers_with_csrf(course_job, learner, superuser):
    url = f"/import/jobs/{course_job.pk}/revert/"
    anonymous = Client()
    assert anonymous.get(url)["Location"].startswith("/accounts/login/")
    staff = User.objects.create(username="staff", is_staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(url).status_code == 403 and staff_client.post(url).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(superuser)
    assert strict.post(url).status_code == 403
    assert Enrollment.objects.count() == 2


def test_revert_page_lists_what_it_keeps_before_and_after(course_job, learner, superuser, client):
    maria = Enrollment.objects.get(user=learner)
    maria.attended = True
    maria.save()
    client.force_login(superuser)
    url = f"/import/jobs/{course_job.pk}/revert/"

    confirm = page_text(client.get(url))
    client.post(url)
    revert_import_job(course_job.pk)
    done = page_text(client.get(url))

    kept = f"Enrollment #{maria.pk}: maria@example.org in CARD101 changed since the import (last change"
    assert "Will be kept (changed since the import)" in confirm and kept in confirm
    assert "Kept (changed since the import)" in done and kept in done
    assert list(Enrollment.objects.all()) == [maria]
