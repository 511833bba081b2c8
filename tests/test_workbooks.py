"""Workbooks (.xlsx, .xls, .ods) are just another reader (SPEC §13): the same checks and records as CSV.

The files under tests/fixtures were written by openpyxl, xlwt and odfpy, and saved again by LibreOffice Calc
(tests/fixtures/make_workbooks.py): dates stored as dates, as text and as numbers, ids as text and as numbers, a
flag as a boolean, a blank row.
"""

import csv
import io
import json
import re
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from enrollments.models import Enrollment, PendingRecord
from lms_import.importer.workbook import cell_text
from lms_import.models import ImportJob

from .conftest import run_cli

pytestmark = pytest.mark.django_db(transaction=True)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_cells_become_the_text_a_person_would_have_typed():
    assert cell_text(1.5) == "1.5" and cell_text(2.0) == "2" and cell_text(12345.0) == "12345"
    assert cell_text(7) == "7" and cell_text(True) == "1" and cell_text(False) == "0"
    assert cell_text(date(2026, 3, 14)) == "2026-03-14"
    assert cell_text(datetime(2026, 3, 14)) == "2026-03-14"
    assert cell_text(datetime(2026, 3, 14, 10, 30)) == "2026-03-14T10:30:00"
    assert cell_text(time(9, 5)) == "09:05:00" and cell_text("00123") == "00123" and cell_text("") == ""


WORKBOOKS = ["records.xlsx", "records.xls", "records.ods"]  # written by openpyxl, xlwt, odfpy
SAVED_BY_LIBREOFFICE = ["records-libreoffice.xlsx", "records-libreoffice.xls", "records-libreoffice.ods"]


@pytest.mark.parametrize("name", WORKBOOKS + SAVED_BY_LIBREOFFICE)
def test_a_workbook_imports_with_its_cells_types_and_its_row_numbers(name, course, learner, tmp_path):
    report = tmp_path / "report.csv"

    code, out, _ = run_cli(
        FIXTURES / name, "--course", "CARD101", "--skip-invalid", "--format", "json", "--error-report", report
    )

    result = json.loads(out)
    assert code == 0, result
    assert result["rows"] == {"total": 4, "valid": 3, "invalid": 1, "skipped": 1}
    # The serial number 46279 in date_completed is a number, not a date: row 6 of the sheet (row 3 is blank).
    assert [(e["line"], e["code"], e["column"], e["value"]) for e in result["errors"]] == [
        (6, "E_DATE_INVALID", "date_completed", "46279")
    ]
    assert "W_HEADER_NORMALIZED" in {w["code"] for w in result["warnings"]}  # "Email Address" → external_email
    maria = Enrollment.objects.get(user=learner)
    assert maria.enrollment_start.date() == date(2026, 9, 1) and maria.date_completed.date() == date(2026, 9, 14)
    assert [(a.credit_type.machine_name, a.credits) for a in maria.credit_awards.all()] == [
        ("ama_pra_1", Decimal("1.5"))
    ]
    assert maria.user.learner_profile.license_id == "0012345"  # text keeps its zeros
    held = {p.external_user_id: p for p in PendingRecord.objects.all()}
    assert set(held) == {"N-2", "12345"}  # a whole-number id stored as a number loses only its .0
    assert held["N-2"].date_completed.time() == time(10, 30) and held["N-2"].credits == Decimal("2")
    job = ImportJob.objects.get(pk=result["job"])
    assert job.sheet == "Records" and job.encoding.endswith(("(.xlsx)", "workbook", "(.ods)"))
    assert [line.split(",")[-3] for line in report.read_text(encoding="utf-8-sig").splitlines()[1:]] == ["6"]


def test_the_sheet_to_read_is_chosen_by_name(course, learner):
    code, out, _ = run_cli(FIXTURES / "records.xlsx", "--course", "CARD101", "--sheet", "Notes", "--format", "json")
    failure = json.loads(out)["failure"]
    assert code == 1 and failure["code"] == "F_MISSING_COLUMN"  # the Notes sheet has no course records

    code, out, _ = run_cli(FIXTURES / "records.xlsx", "--course", "CARD101", "--sheet", "Nope", "--format", "json")
    failure = json.loads(out)["failure"]
    assert code == 1 and failure["code"] == "F_NOT_CSV"
    assert "no sheet named 'Nope'. Its sheets are: 'Records', 'Notes'" in failure["message"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("records-password.xlsx", "protected by a password. Open it in your spreadsheet program, remove the password"),
        ("records-damaged.xlsx", "cannot be read as one"),
    ],
)
def test_a_protected_or_damaged_workbook_is_refused_with_what_to_do(name, says, course):
    code, out, _ = run_cli(FIXTURES / name, "--course", "CARD101", "--format", "json")

    failure = json.loads(out)["failure"]
    assert code == 1 and failure["code"] == "F_NOT_CSV" and says in failure["message"]
    assert not Enrollment.objects.exists()


# -- the same rows, as CSV and as a workbook ---------------------------------------------------------------
def _remap(snapshot: dict, sheet_row: dict[int, int]) -> dict:
    """A CSV run's snapshot with its file lines turned into the rows a sheet of the same records has."""

    def line(value):
        return sheet_row.get(int(value), value) if str(value).isdigit() else value

    def text(message: str) -> str:
        return re.sub(r"line (\d+)", lambda m: f"line {line(m.group(1))}", message)

    snapshot = json.loads(json.dumps(snapshot))
    for finding in snapshot["findings"]:
        finding[0], finding[4] = line(finding[0]), text(finding[4])
    for row in (snapshot["report"] or [])[1:]:
        row[-3], row[-1] = str(line(row[-3])), text(row[-1])
    for record in snapshot["records"]["pending"]:
        record["line"] = line(record["line"])
    return snapshot


def _comparable(snapshot: dict) -> dict:
    job = {k: v for k, v in snapshot["job"].items() if k not in ("encoding", "delimiter", "sheet")}
    warnings = [w for w in snapshot["warnings"] if w[0] != "W_ENCODING_GUESSED"]
    # openpyxl writes a cell of spaces without xml:space="preserve", so it reads back empty (the checks strip it)
    report = [[cell.strip() for cell in row] for row in snapshot["report"] or []]
    return {**snapshot, "job": job, "warnings": warnings, "report": report}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["course", "global"])
def test_a_workbook_of_the_same_records_gives_the_same_findings_and_records(name, tmp_path):
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from .differential import csv_bytes, run_and_snapshot, scenario_build
    from .test_differential import assert_same, database_empty

    scenario = scenario_build(name)
    # The records the csv module reads from the scenario's file, each with the line it starts at. What a sheet
    # cannot hold stays out of both files: the control characters XML refuses, and a row shorter or longer than
    # the header (a sheet's rows all have its width).
    text = scenario.csv_bytes().decode(scenario.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=scenario.delimiter)
    records = [
        record
        for record in reader
        if not any(ILLEGAL_CHARACTERS_RE.search(cell) for cell in record) and len(record) in (0, len(scenario.header))
    ]
    csv_path = tmp_path / f"{name}.csv"
    csv_path.write_bytes(csv_bytes(records[0], records[1:]))
    starts, reader, line = [], csv.reader(io.StringIO(csv_path.read_text(), newline="")), 0
    for _ in reader:
        starts.append(line + 1)
        line = reader.line_num
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row, record in enumerate(records, start=1):
        for column, value in enumerate(record, start=1):
            cell = sheet.cell(row=row, column=column)
            cell.value, cell.data_type = value, "s"  # text, as typed: "=x" is not a formula here
    xlsx_path = tmp_path / f"{name}.xlsx"
    workbook.save(xlsx_path)

    from_csv = run_and_snapshot(options=scenario.options, path=csv_path, mode="apply_skip")
    database_empty()
    from_workbook = run_and_snapshot(options=scenario.options, path=xlsx_path, mode="apply_skip")

    sheet_row = {start: row for row, start in enumerate(starts, start=1)}
    assert_same(_comparable(json.loads(json.dumps(from_workbook))), _comparable(_remap(from_csv, sheet_row)), name)
    assert len(from_csv["findings"]) > 40 and from_csv["records"]["enrollments"]


def test_a_workbook_beyond_what_memory_allows_is_refused_with_what_to_do(course, settings):
    settings.IMPORT_MAX_WORKBOOK_BYTES = 1_000

    code, out, _ = run_cli(FIXTURES / "records.xlsx", "--course", "CARD101", "--format", "json")

    failure = json.loads(out)["failure"]
    assert code == 1 and failure["code"] == "F_TOO_LARGE"
    assert "the limit for one is 1,000. Save the sheet as 'CSV UTF-8'" in failure["message"]
