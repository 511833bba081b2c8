"""The error report: one line per rejected row, the file's own columns first, fixed and uploaded as it is."""

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model

from core.csv_safety import csv_safe_reversible, csv_unescape
from enrollments.models import Enrollment, PendingRecord
from lms_import.models import ImportJob
from lms_import.services import import_job_create, import_job_validate

from .conftest import HEADER, run_cli

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]


def read(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


@pytest.mark.parametrize("value", ["=1+2", "+SUM(A1)", "-2", "@cmd", "\tx", "'quoted", "''", "'=x", "plain", ""])
def test_a_report_cell_comes_back_as_it_was(value):
    assert csv_unescape(csv_safe_reversible(value)) == value
    assert not csv_safe_reversible(value).startswith(("=", "+", "-", "@", "\t"))


def test_a_rejected_row_is_one_line_with_every_finding_after_its_own_cells(course, learner, write_csv, tmp_path):
    # Two findings on one row: one line, both codes.
    bad = ["L-2", "not-an-email", "=Eve", "O'Neill", "2026-09-01", "maybe", "2026-09-14", "ama_pra_1", "9.00"]
    short = ["L-3", "x@example.org"]
    path = write_csv([GOOD, bad, short])
    report = tmp_path / "report.csv"

    code, out, _ = run_cli(path, "--course", "CARD101", "--dry-run", "--format", "json", "--error-report", report)

    assert code == 1
    rows = read(report)
    assert rows[0] == HEADER + ["_line", "_codes", "_messages"]
    assert len(rows) == 3  # the header and the two rejected rows
    assert rows[1][:9] == [*bad[:2], "'=Eve", *bad[3:]]  # as sent, a formula neutralised
    assert rows[1][9] == "3" and rows[1][10] == "E_EMAIL_INVALID; E_COMPLETE_INVALID; E_CREDIT_ON_INCOMPLETE"
    assert "external_email: 'not-an-email' is not a valid e-mail address" in rows[1][11]
    assert rows[2] == ["L-3", "x@example.org", "", "", "", "", "", "", "", "4", "E_COLUMN_COUNT", rows[2][11]]
    assert json.loads(out)["error_count"] == 4


def test_a_fixed_report_uploaded_as_it_is_imports_its_rows(course, learner, write_csv, tmp_path):
    rows = [
        GOOD,
        ["N-2", "eve@example.org", "=Eve", "'t Hooft", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "9.00"],
        ["N-3", "ann@example.org", "Ann", "-Lee", "2026-09-01", "1", "14/09/2026", "ancc", "2.00"],
    ]
    path = write_csv(rows)
    report = tmp_path / "report.csv"
    assert run_cli(path, "--course", "CARD101", "--skip-invalid", "--error-report", report)[0] == 0

    # The admin fixes the two values in a spreadsheet and saves the report as it is.
    fixed = read(report)
    fixed[1][8] = "2.00"
    fixed[2][6] = "2026-09-14"
    with report.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(fixed)

    code, out, _ = run_cli(report, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0, result["errors"]
    assert result["rows"] == {"total": 2, "valid": 2, "invalid": 0, "skipped": 0}
    assert not [w for w in result["warnings"] if w["code"] in ("W_UNKNOWN_COLUMN", "W_HEADER_NORMALIZED")]
    held = {(p.external_user_id, p.first_name, p.last_name) for p in PendingRecord.objects.all()}
    assert held == {("N-2", "=Eve", "'t Hooft"), ("N-3", "Ann", "-Lee")}  # each cell exactly as first sent
    assert Enrollment.objects.count() == 1


def test_a_report_with_errors_left_reports_them_on_its_own_lines(course, learner, write_csv, tmp_path):
    path = write_csv([GOOD, GOOD[:5] + ["maybe"] + GOOD[6:], ["N-9", "", "", "", "2026-09-01", "1", "", "", ""]])
    report = tmp_path / "report.csv"
    run_cli(path, "--course", "CARD101", "--dry-run", "--error-report", report)
    again = tmp_path / "again.csv"

    code, out, _ = run_cli(report, "--course", "CARD101", "--dry-run", "--format", "json", "--error-report", again)

    result = json.loads(out)
    assert code == 1 and result["rows"]["total"] == 2 and result["rows"]["invalid"] == 2
    assert [(e["line"], e["code"]) for e in result["errors"]] == [
        (2, "E_COMPLETE_INVALID"),
        (2, "E_CREDIT_ON_INCOMPLETE"),
        (3, "E_DATE_REQUIRED"),
    ]
    assert read(again)[0] == HEADER + ["_line", "_codes", "_messages"]  # not the diagnosis columns twice


def test_a_report_stays_within_twice_the_file_s_size(course, learner, write_csv, tmp_path):
    # A real export's rows (every column of the template), a tenth of them wrong in one value.
    header = HEADER + ["enrollment_end", "credit_expiration", "attended", "participant_category", "licensing_state"]
    rows = []
    for n in range(5_000):
        completed = "2026-09-14" if n % 10 else "14/09/2026"
        rows.append(
            [
                f"L-{n:05d}",
                f"learner{n:05d}@example.org",
                "Maria",
                "Garcia",
                "2026-09-01",
                "1",
                completed,
                "ama_pra_1",
                "1.50",
                "2026-12-31",
                "2028-12-31",
                "1",
                "physician",
                "CA",
            ]
        )
    path = write_csv(rows, header=header)
    report = tmp_path / "report.csv"

    run_cli(path, "--course", "CARD101", "--dry-run", "--error-report", report)

    assert len(read(report)) == 501
    assert report.stat().st_size <= 2 * path.stat().st_size


def test_a_new_report_replaces_the_old_one_on_disk(course, learner, write_csv, settings):
    user = get_user_model().objects.create(username="admin", is_superuser=True)
    path = write_csv([GOOD[:5] + ["maybe"] + GOOD[6:]])
    job = import_job_validate(job=import_job_create(user=user, importer="course", course=course, path=path))
    first = job.error_report.path
    ImportJob.objects.filter(pk=job.pk).update(status="uploaded")

    job = import_job_validate(job=ImportJob.objects.get(pk=job.pk))

    reports = list((settings.MEDIA_ROOT / "reports").iterdir())
    assert [str(p) for p in reports] == [job.error_report.path] and job.error_report.path != first
