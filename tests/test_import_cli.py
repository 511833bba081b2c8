"""The command-line importer end to end on PostgreSQL: what an operator sees and what the database holds."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile, PendingRecord
from lms_import.models import ImportJob

from .conftest import HEADER, make_learner, manage, run_cli

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def test_course_level_import_creates_enrollments_and_one_award_per_row(course, learner, write_csv):
    other = make_learner("L-2", "james@example.org")
    path = write_csv(
        [
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"],
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ancc", "2.00"],
            ["L-2", "james@example.org", "James", "Chen", "2026-09-02", "0", "", "", ""],
        ]
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    assert code == 0
    result = json.loads(out)
    assert result["status"] == "succeeded"
    assert result["rows"] == {"total": 3, "valid": 3, "invalid": 0, "skipped": 0}
    assert result["created"] == {"enrollments": 2, "credits": 2, "pending": 0, "accounts": 0, "shells": 0}
    maria = Enrollment.objects.get(user=learner, course=course)
    assert maria.complete and maria.date_completed.date().isoformat() == "2026-09-14"
    assert maria.source == "course_import" and maria.import_job_id == result["job"]
    assert {(a.credit_type.machine_name, a.credits) for a in maria.credit_awards.all()} == {
        ("ama_pra_1", Decimal("2.00")),
        ("ancc", Decimal("2.00")),
    }
    james = Enrollment.objects.get(user=other, course=course)
    assert not james.complete and not james.credit_awards.exists()


def test_json_output_has_every_contract_key(course, learner, write_csv):
    path = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]])

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json", "--dry-run")

    result = json.loads(out)
    assert code == 0
    assert {
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
    } <= set(result)
    assert result["importer"] == "course" and result["course"] == "CARD101" and result["dry_run"] is True
    assert result["encoding"] == "UTF-8"
    assert set(result["rows"]) == {"total", "valid", "invalid", "skipped"}
    assert set(result["created"]) == {"enrollments", "credits", "pending", "accounts", "shells"}


def test_dry_run_writes_nothing_but_the_job(course, learner, write_csv):
    path = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]])

    code, out, _ = run_cli(path, "--course", "CARD101", "--dry-run")

    assert code == 0
    assert "Would create: 1 enrollments, 1 credit awards" in out
    assert not Enrollment.objects.exists() and not CreditAward.objects.exists()
    job = ImportJob.objects.get()
    assert job.dry_run and job.status == "validated" and job.created_enrollments == 1


def test_row_errors_refuse_the_whole_file(course, learner, write_csv):
    path = write_csv(
        [
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ["L-9", "bad-address", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
        ]
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    assert code == 1
    result = json.loads(out)
    assert result["created"]["enrollments"] == 0
    assert [(e["line"], e["code"], e["column"], e["value"]) for e in result["errors"]] == [
        (3, "E_EMAIL_INVALID", "external_email", "bad-address")
    ]
    assert not Enrollment.objects.exists()


def test_skip_invalid_applies_valid_rows_and_reports_every_skipped_row(course, learner, write_csv, tmp_path):
    path = write_csv(
        [
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ancc", "9.00"],
            ["", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
        ]
    )
    report = tmp_path / "errors.csv"

    code, out, _ = run_cli(path, "--course", "CARD101", "--skip-invalid", "--format", "json", "--error-report", report)

    assert code == 0
    result = json.loads(out)
    assert result["rows"] == {"total": 3, "valid": 1, "invalid": 2, "skipped": 2}
    assert result["created"]["enrollments"] == 1 and result["created"]["credits"] == 1
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert rows[0] == HEADER + ["_line", "_codes", "_messages"]
    assert [(row[:9], row[9], row[10]) for row in rows[1:]] == [
        (["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ancc", "9.00"], "3", "E_CREDITS_OVER_MAX"),
        (["", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"], "4", "E_LEARNER_ID_MISSING"),
    ]


def test_reimport_of_the_same_file_is_refused_as_already_enrolled(course, learner, write_csv):
    path = write_csv(
        [
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ancc", "2.00"],
        ]
    )
    assert run_cli(path, "--course", "CARD101")[0] == 0

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    assert code == 1
    result = json.loads(out)
    assert {e["code"] for e in result["errors"]} == {"E_CREDIT_EXISTS"}
    assert "W_ALREADY_IMPORTED" in {w["code"] for w in result["warnings"]}
    assert Enrollment.objects.count() == 1 and CreditAward.objects.count() == 2


def test_unknown_learners_are_held_then_applied_when_the_account_appears(course, write_csv):
    path = write_csv(
        [
            ["N-1", "Noor@Example.org", "Noor", "Haddad", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ["N-1", "Noor@Example.org", "Noor", "Haddad", "2026-09-01", "1", "2026-09-14", "ancc", "2.00"],
        ]
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["created"]["pending"] == 2 and result["created"]["enrollments"] == 0
    assert "W_PENDING_LEARNERS" in {w["code"] for w in result["warnings"]}
    assert PendingRecord.objects.filter(status="pending", email="noor@example.org").count() == 2

    user = User.objects.create(username="noor", email="noor@example.org")

    enrollment = Enrollment.objects.get(user=user, course=course)
    assert enrollment.complete and enrollment.source == "course_import"
    assert enrollment.credit_awards.count() == 2
    assert not PendingRecord.objects.filter(status="pending").exists()


def test_create_accounts_gives_unknown_learners_accounts_with_unusable_passwords(course, write_csv):
    path = write_csv(
        [["N-1", "noor@example.org", "Noor", "Haddad", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]]
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--create-accounts", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["created"]["accounts"] == 1 and result["created"]["enrollments"] == 1
    user = User.objects.get(email="noor@example.org")
    assert user.first_name == "Noor" and not user.has_usable_password()
    assert LearnerProfile.objects.get(user=user).external_user_id == "N-1"
    assert Enrollment.objects.filter(user=user, course=course, complete=True).exists()


def test_auto_complete_course_blocks_until_acknowledged(auto_course, learner, write_csv):
    path = write_csv([["L-1", "", "", "", "2026-09-01", "0", "", "", ""]])

    code, out, _ = run_cli(path, "--course", "ETH200", "--format", "json")

    result = json.loads(out)
    assert code == 1
    warning = next(w for w in result["warnings"] if w["code"] == "W_AUTO_COMPLETE")
    assert "L-1" in warning["message"] and "1.00 ama_pra_1" in warning["message"]
    assert "required course object" in warning["message"]
    assert not Enrollment.objects.exists()

    code, out, _ = run_cli(path, "--course", "ETH200", "--format", "json", "--allow-auto-complete")

    assert code == 0 and json.loads(out)["auto_completed"] == 1
    enrollment = Enrollment.objects.get()
    assert enrollment.complete
    assert {(a.credit_type.machine_name, a.credits) for a in enrollment.credit_awards.all()} == {
        ("ama_pra_1", Decimal("1.00")),
        ("ancc", Decimal("1.50")),
    }


def test_global_importer_creates_shells_with_legacy_source(credit_types, learner, write_csv):
    header = ["external_user_id", "external_course_id", "title", "complete", "date_completed", "credit_type", "credits"]
    path = write_csv(
        [
            ["L-1", "OLD-ACLS", "ACLS 2019", "1", "2019-03-02", "ama_pra_1", "4.00"],
            ["L-1", "OLD-ACLS", "ACLS 2019", "1", "2019-03-02", "ancc", "3.75"],
            ["L-1", "OLD-PALS", "", "1", "2018-05-11", "ancc", "6.50"],
        ],
        header=header,
    )

    code, out, _ = run_cli(path, "--global", "--skip-invalid", "--format", "json")

    result = json.loads(out)
    assert code == 0
    assert result["created"]["shells"] == 1 and result["created"]["enrollments"] == 1
    assert [e["code"] for e in result["errors"]] == ["E_TITLE_MISSING"]
    assert {"W_SHELLS_CREATED", "W_LEGACY_NOT_IN_PARS"} <= {w["code"] for w in result["warnings"]}
    shell = Course.objects.get(external_course_id="OLD-ACLS")
    assert shell.kind == "shell" and shell.title == "ACLS 2019" and not shell.certificate_enabled
    enrollment = Enrollment.objects.get(course=shell)
    assert enrollment.source == "legacy_import" and enrollment.credit_awards.count() == 2


def test_manage_py_subprocess_exit_codes(course, learner, write_csv, tmp_path):
    good = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]])
    bad = write_csv([["L-1", "", "", "", "2026-09-01", "maybe", "2026-09-14", "ama_pra_1", "1.50"]])

    applied = manage("import_course_records", good, "--course", "CARD101", "--format", "json")
    invalid = manage("import_course_records", bad, "--course", "CARD101")
    missing = manage("import_course_records", tmp_path / "nope.csv", "--course", "CARD101")
    no_course = manage("import_course_records", good, "--course", "NOPE")

    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["created"]["enrollments"] == 1
    assert invalid.returncode == 1 and "E_COMPLETE_INVALID" in invalid.stdout
    assert missing.returncode == 2 and "not a readable file" in missing.stderr
    assert no_course.returncode == 2
    assert Enrollment.objects.count() == 1


def test_new_learners_and_shells_spanning_batches_are_created_once(credit_types, write_csv, settings):
    """Rows of one new learner (and one new shell) in different batches: the apply must not see its own writes
    as records that existed before."""
    settings.IMPORT_BATCH_ROWS = 2
    header = ["external_user_id", "external_email", "external_course_id", "title", "complete", "date_completed"]
    header += ["credit_type", "credits"]
    rows = [
        ["N-1", "noor@example.org", "OLD-1", "Old one", "1", "2019-03-02", "ama_pra_1", "1.00"],
        ["N-2", "sam@example.org", "OLD-1", "Old one", "1", "2019-03-02", "ama_pra_1", "1.00"],
        ["N-1", "noor@example.org", "OLD-1", "Old one", "1", "2019-03-02", "ancc", "2.00"],
        ["N-1", "noor@example.org", "OLD-2", "Old two", "1", "2019-04-02", "ancc", "2.00"],
        ["N-2", "sam@example.org", "OLD-1", "Old one", "1", "2019-03-02", "ancc", "2.00"],
    ]
    path = write_csv(rows, header=header)

    dry = json.loads(run_cli(path, "--global", "--create-accounts", "--dry-run", "--format", "json")[1])
    code, out, _ = run_cli(path, "--global", "--create-accounts", "--format", "json")

    result = json.loads(out)
    assert code == 0, result
    expected = {"enrollments": 3, "credits": 5, "pending": 0, "accounts": 2, "shells": 2}
    assert result["created"] == expected and dry["created"] == expected
    assert User.objects.count() == 2 and Course.objects.filter(kind="shell").count() == 2
    noor = User.objects.get(email="noor@example.org")
    assert sorted(Enrollment.objects.filter(user=noor).values_list("course__external_course_id", flat=True)) == [
        "OLD-1",
        "OLD-2",
    ]


def test_existing_profiles_take_the_files_pars_data_only_where_blank(course, write_csv, settings):
    # Through the PostgreSQL writer (COPY to a scratch table, one UPDATE per batch), over two batches.
    settings.IMPORT_BATCH_ROWS = 1
    kept = make_learner("L-1", "maria@example.org", licensing_state="NY")
    blank = make_learner("L-2", "james@example.org")
    header = HEADER + ["dob_month", "dob_day", "licensing_state", "license_id"]
    tail = ["2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]
    path = write_csv(
        [
            ["L-1", "maria@example.org", "", "", *tail, "3", "7", "CA", "0012345"],
            ["L-2", "james@example.org", "", "", *tail, "11", "30", "TX", "0099999"],
        ],
        header=header,
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0, result["errors"]
    maria, james = LearnerProfile.objects.get(user=kept), LearnerProfile.objects.get(user=blank)
    assert (maria.dob_month, maria.dob_day, maria.licensing_state, maria.license_id) == ("03", "07", "NY", "0012345")
    assert (james.dob_month, james.dob_day, james.licensing_state, james.license_id) == ("11", "30", "TX", "0099999")
    assert [w["count"] for w in result["warnings"] if w["code"] == "W_PROFILE_CONFLICT"] == [1]


@pytest.mark.parametrize("producer", [True, False], ids=["producer", "one-process"])
def test_a_learner_s_later_rows_fill_the_blanks_of_its_profile_and_a_differing_value_is_reported(
    course, write_csv, settings, producer
):
    # One row a batch: the account and its profile are written by one batch, filled by the next, whether or not
    # this process can see what the writing process wrote.
    settings.IMPORT_BATCH_ROWS, settings.IMPORT_PRODUCER_PROCESS = 1, producer
    no_profile = get_user_model().objects.create(username="olga@example.org", email="olga@example.org")
    header = HEADER + ["dob_month", "licensing_state"]
    done = ["2026-09-01", "1", "2026-09-14"]
    path = write_csv(
        [
            ["N-5", "nina@example.org", "", "", *done, "ama_pra_1", "2.00", "", ""],
            ["N-5", "nina@example.org", "", "", *done, "ancc", "2.00", "4", ""],  # fills the blank month
            ["N-5", "nina@example.org", "", "", *done, "abim_moc", "2.00", "5", "CA"],  # 5 differs from 04: reported
            ["", "olga@example.org", "", "", *done, "ama_pra_1", "2.00", "", "TX"],  # creates Olga's profile
            ["", "olga@example.org", "", "", *done, "ancc", "2.00", "6", "NV"],  # fills it; NV differs from TX
        ],
        header=header,
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--create-accounts", "--format", "json")

    result = json.loads(out)
    assert code == 0, result
    nina = LearnerProfile.objects.get(external_user_id="N-5")
    assert (nina.dob_month, nina.licensing_state) == ("04", "CA")
    olga = LearnerProfile.objects.get(user=no_profile)
    assert (olga.dob_month, olga.licensing_state, olga.external_user_id) == ("06", "TX", None)
    assert [w["count"] for w in result["warnings"] if w["code"] == "W_PROFILE_CONFLICT"] == [2]


def test_a_course_with_a_large_id_imports(credit_types, learner, write_csv):
    big = Course.objects.create(id=3_000_000, external_course_id="BIG-1", title="A course with a large id")
    CourseObject.objects.create(course=big, title="Claim credit", kind="credit_claim", required=True)
    CourseCredit.objects.create(course=big, credit_type=credit_types["ama_pra_1"], max_credits=Decimal("2.00"))
    path = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]])

    code, out, _ = run_cli(path, "--course", "BIG-1", "--format", "json")

    assert code == 0, out
    assert Enrollment.objects.get(user=learner).course_id == 3_000_000
