"""Templates (SPEC §13): the file to fill in, as CSV and .xlsx, for a course and for the global importer.

What an admin downloads: the schema's columns, an example row per credit type the course offers (its
maximum), columns Excel cannot mangle; and what they upload back imports as it is.
"""

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from courses.models import Course
from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile, PendingRecord
from lms_import.importer.schema import NAMES
from lms_import.template_files import template_csv, template_for_course, template_global

from .conftest import run_cli

pytestmark = pytest.mark.django_db
COURSE_COLUMNS = [name for name in NAMES if name != "title"]
DATES = ("enrollment_start", "enrollment_end", "date_completed", "credit_expiration")


@pytest.fixture
def staff_client(db):
    user = get_user_model().objects.create(username="importer", email="importer@example.org")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    client = Client()
    client.force_login(user)
    return client


def csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, like the error report
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def workbook(content: bytes):
    return openpyxl.load_workbook(io.BytesIO(content))


# -- what the files hold -------------------------------------------------------------------------------------------
def test_course_csv_is_the_schema_s_columns_and_a_row_per_offered_credit_type(staff_client, course):
    response = staff_client.get("/courses/CARD101/import/template.csv")

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="CARD101-template.csv"'
    header, *rows = csv_rows(response.content)
    assert header == COURSE_COLUMNS
    examples = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(r["credit_type"], r["credits"]) for r in examples] == [
        ("abim_moc", "2.00"),
        ("ama_pra_1", "2.00"),
        ("ancc", "2.00"),
    ]
    assert {r["external_course_id"] for r in examples} == {"CARD101"}
    assert {(r["complete"], r["license_id"], r["dob_month"]) for r in examples} == {("1", "0012345678", "03")}


def test_global_csv_has_every_column_and_a_shell_row(staff_client, credit_types):
    header, row = csv_rows(staff_client.get("/import/course-records/template.csv").content)

    assert header == list(NAMES)
    example = dict(zip(header, row, strict=True))
    assert example["external_course_id"] and example["title"]
    assert (example["credit_type"], example["credits"]) == ("abim_moc", "1.00")


def test_csv_cells_are_formula_safe(credit_types):
    course = Course.objects.create(external_course_id="=HYPERLINK(1)", title="Odd")
    _, row = csv_rows(template_csv(template_for_course(course)))
    assert "'=HYPERLINK(1)" in row


def test_xlsx_formats_columns_as_the_schema_reads_them(staff_client, course):
    response = staff_client.get("/courses/CARD101/import/template.xlsx")

    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"] == 'attachment; filename="CARD101-template.xlsx"'
    book = workbook(response.content)
    assert book.sheetnames == ["Course records", "Credit types"]
    sheet = book["Course records"]
    assert [c.value for c in sheet[1]] == COURSE_COLUMNS
    assert sheet.freeze_panes == "A2"
    assert sheet.max_row == 4  # the header and one row per offered credit type
    for position, name in enumerate(COURSE_COLUMNS, start=1):
        cell = sheet.cell(row=2, column=position)
        dimension = sheet.column_dimensions[cell.column_letter]
        if name in DATES:
            assert cell.number_format == "yyyy-mm-dd", name
            if cell.value is not None:
                assert isinstance(cell.value, datetime), name
        elif name == "credits":
            assert cell.number_format == "0.00" and cell.value == 2.0
        else:
            assert cell.number_format == "@", name  # text: Excel keeps leading zeros
            assert cell.value is None or isinstance(cell.value, str), name
        assert dimension.width >= len(name), name
    assert sheet.cell(row=2, column=COURSE_COLUMNS.index("license_id") + 1).value == "0012345678"
    # Every cell below the examples is formatted too: what an admin types there is kept as typed.
    assert sheet.column_dimensions["A"].number_format == "@"
    credits_cell = sheet.cell(row=2, column=COURSE_COLUMNS.index("credits") + 1)
    assert "at most 2.00, in steps of 0.50" in credits_cell.comment.text  # abim_moc

    types = book["Credit types"]
    assert [[c.value for c in row] for row in types.iter_rows()] == [
        ["credit_type", "name", "max_credits", "increment", "variable", "what to write in credits"],
        ["abim_moc", "ABIM MOC Points", 2, 0.5, "yes", "abim_moc (ABIM MOC Points): at most 2.00, in steps of 0.50"],
        [
            "ama_pra_1",
            "AMA PRA Category 1 Credit",
            2,
            0.25,
            "yes",
            "ama_pra_1 (AMA PRA Category 1 Credit): at most 2.00, in steps of 0.25",
        ],
        ["ancc", "ANCC Contact Hours", 2, 0.25, "no", "ancc (ANCC Contact Hours): exactly 2.00 (not variable)"],
    ]


def test_a_course_without_credit_gets_one_example_row(credit_types):
    course = Course.objects.create(external_course_id="ETH 200/b", title="Ethics")
    template = template_for_course(course)
    assert len(template.rows) == 1 and "credit_type" not in template.rows[0]
    assert template.filename_stem == "ETH_200_b-template"  # a safe file name, whatever the id holds


def test_unknown_courses_and_shells_have_no_template(staff_client, credit_types):
    Course.objects.create(external_course_id="OLD-2019", title="ACLS 2019", kind=Course.KIND_SHELL)
    assert staff_client.get("/courses/OLD-2019/import/template.csv").status_code == 404
    assert staff_client.get("/courses/NOPE/import/template.xlsx").status_code == 404


def test_the_upload_forms_link_their_templates(staff_client, course):
    page = staff_client.get("/courses/CARD101/import/").content.decode()
    assert 'href="/courses/CARD101/import/template.csv"' in page
    assert 'href="/courses/CARD101/import/template.xlsx"' in page
    page = staff_client.get("/import/course-records/").content.decode()
    assert 'href="/import/course-records/template.csv"' in page
    assert 'href="/import/course-records/template.xlsx"' in page


# -- round trips: what is downloaded imports as it is -------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_course_csv_imports_its_example_rows_as_they_are(staff_client, course, tmp_path):
    path = tmp_path / "template.csv"
    path.write_bytes(staff_client.get("/courses/CARD101/import/template.csv").content)

    code, out, _ = run_cli(path, "--course", "CARD101", "--create-accounts", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["errors"] == [] and result["rows"]["invalid"] == 0, result
    assert result["created"] == {"enrollments": 1, "credits": 3, "pending": 0, "accounts": 1, "shells": 0}
    assert sorted(CreditAward.objects.values_list("credit_type__machine_name", "credits")) == [
        ("abim_moc", Decimal("2.00")),
        ("ama_pra_1", Decimal("2.00")),
        ("ancc", Decimal("2.00")),
    ]
    assert LearnerProfile.objects.get(external_user_id="EXAMPLE-0001").license_id == "0012345678"


@pytest.mark.django_db(transaction=True)
def test_the_course_xlsx_filled_in_by_a_spreadsheet_imports(staff_client, course, learner, tmp_path):
    book = workbook(staff_client.get("/courses/CARD101/import/template.xlsx").content)
    sheet = book["Course records"]
    column = {name: position for position, name in enumerate(COURSE_COLUMNS, start=1)}
    # Replace the examples with a real learner, the way someone types into the sheet.
    sheet.delete_rows(2, sheet.max_row)
    for line, (credit_type, credits) in enumerate([("ama_pra_1", 1.25), ("abim_moc", 1.5)], start=2):
        for name, value in {
            "external_user_id": "L-1",
            "enrollment_start": datetime(2026, 9, 1),
            "complete": "1",
            "date_completed": datetime(2026, 9, 14),
            "credit_type": credit_type,
            "credits": credits,
            "license_id": "0099",
        }.items():
            sheet.cell(row=line, column=column[name], value=value)
    path = tmp_path / "filled.xlsx"
    book.save(path)

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["errors"] == [], result
    enrollment = Enrollment.objects.get(user=learner, course=course)
    assert enrollment.date_completed.date() == date(2026, 9, 14)
    assert sorted(enrollment.credit_awards.values_list("credit_type__machine_name", "credits")) == [
        ("abim_moc", Decimal("1.50")),
        ("ama_pra_1", Decimal("1.25")),
    ]
    assert LearnerProfile.objects.get(user=learner).license_id == "0099"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_global_template_imports_its_example_row(staff_client, credit_types, tmp_path, kind):
    path = tmp_path / f"template.{kind}"
    path.write_bytes(staff_client.get(f"/import/course-records/template.{kind}").content)

    code, out, _ = run_cli(path, "--global", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["errors"] == [], result
    assert result["created"]["shells"] == 1 and result["created"]["pending"] == 1
    pending = PendingRecord.objects.get()
    assert pending.course.external_course_id == template_global().rows[0]["external_course_id"]
    assert (pending.credit_type.machine_name, pending.credits) == ("abim_moc", Decimal("1.00"))
