"""Templates (SPEC §13): a file to fill in, for a course or for the global importer, as CSV and as .xlsx.

The header is the schema's own column names for the importer (lms_import.importer.schema: nothing is
listed here by hand), then example rows that import as they are: for a course, one learner with one row
per credit type the course offers, each earning the maximum; for the global importer, a row for a
course shell. The .xlsx formats each column as the schema reads it, so that Excel cannot change what is
typed: date columns hold real dates, credits a number with two decimals, and every other column is
text, so ids, NPIs and dates of birth keep their leading zeros. A second sheet lists the credit types
with their maximum and increment.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import xlsxwriter
from django.utils import timezone

from core.csv_safety import csv_safe
from courses.models import Course, CourseCredit
from credits.models import CreditType
from enrollments.rules import day_parse, moment_parse
from lms_import.importer.schema import COLUMNS, NAMES

# Columns the course-level importer has no use for: a course's file never creates a shell.
COURSE_OMITS = ("title",)
DATE_PARSERS = (moment_parse, day_parse)
CREDITS = "credits"
SHEET = "Course records"
TYPES_SHEET = "Credit types"
EXAMPLE_LEARNER = {
    "external_user_id": "EXAMPLE-0001",
    "external_email": "jane.example@example.org",
    "first_name": "Jane",
    "last_name": "Example",
    "complete": "1",
    "attended": "1",
    "participant_category": "physician",
    "dob_month": "03",
    "dob_day": "07",
    "licensing_state": "NY",
    "license_id": "0012345678",
    "certifying_board": "",
    "board_id": "",
}
SHELL_COURSE = {"external_course_id": "LEGACY-EXAMPLE", "title": "Example legacy course"}


@dataclass(frozen=True)
class CreditLine:
    """A credit type as the template's second sheet lists it."""

    machine_name: str
    name: str
    max_credits: Decimal | None  # None: the global importer's list (a shell takes any amount)
    increment: Decimal | None
    variable: bool | None

    def note(self) -> str:
        if self.max_credits is None:
            return f"{self.machine_name} ({self.name}): any amount up to 9999.99 in a course shell"
        if not self.variable:
            return f"{self.machine_name} ({self.name}): exactly {self.max_credits} (not variable)"
        step = f", in steps of {self.increment}" if self.increment else ""
        return f"{self.machine_name} ({self.name}): at most {self.max_credits}{step}"


@dataclass(frozen=True)
class Template:
    columns: tuple[str, ...]
    rows: list[dict]  # column name -> date, Decimal or text
    credit_types: list[CreditLine]
    filename_stem: str

    def cells(self, row: dict) -> list:
        return [row.get(name, "") for name in self.columns]


def is_date(column: str) -> bool:
    return next(c for c in COLUMNS if c.name == column).parse in DATE_PARSERS


def _columns(*, global_importer: bool) -> tuple[str, ...]:
    return NAMES if global_importer else tuple(name for name in NAMES if name not in COURSE_OMITS)


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "course"


def template_for_course(course: Course, *, today: date | None = None) -> Template:
    """One learner, one row per credit type the course offers (the maximum of each); one row without credit when
    the course offers none."""
    today = today or timezone.localdate()
    offers = list(
        CourseCredit.objects.filter(course=course).select_related("credit_type").order_by("credit_type__machine_name")
    )
    base = EXAMPLE_LEARNER | {
        "external_course_id": course.external_course_id,
        "enrollment_start": today - timedelta(days=14),
        "date_completed": today - timedelta(days=7),
    }
    rows = [base | {"credit_type": o.credit_type.machine_name, CREDITS: o.max_credits} for o in offers] or [base]
    lines = [
        CreditLine(o.credit_type.machine_name, o.credit_type.name, o.max_credits, o.increment, o.variable)
        for o in offers
    ]
    return Template(_columns(global_importer=False), rows, lines, f"{_stem(course.external_course_id)}-template")


def template_global(*, today: date | None = None) -> Template:
    """A row for a course shell (made from its title), with credit of the site's first credit type if any."""
    today = today or timezone.localdate()
    types = list(CreditType.objects.order_by("machine_name"))
    row = (
        EXAMPLE_LEARNER
        | SHELL_COURSE
        | {"enrollment_start": today - timedelta(days=14), "date_completed": today - timedelta(days=7)}
    )
    if types:
        row |= {"credit_type": types[0].machine_name, CREDITS: Decimal("1.00")}
    lines = [CreditLine(t.machine_name, t.name, None, None, None) for t in types]
    return Template(_columns(global_importer=True), [row], lines, "course-records-template")


# -- the files ---------------------------------------------------------------------------------------------------
def _text(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def template_csv(template: Template) -> bytes:
    """UTF-8 with a BOM, like the error report, so that a spreadsheet shows accented names; formula-safe cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(template.columns)
    for row in template.rows:
        writer.writerow([csv_safe(_text(value)) for value in template.cells(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_xlsx(template: Template) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    text = book.add_format({"num_format": "@"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    number = book.add_format({"num_format": "0.00"})
    bold = book.add_format({"bold": True, "bottom": 1})

    sheet = book.add_worksheet(SHEET)
    for position, name in enumerate(template.columns):
        kind = day if is_date(name) else number if name == CREDITS else text
        samples = [len(_text(row.get(name))) for row in template.rows]
        sheet.set_column(position, position, max(len(name), 10 if kind is day else 0, *samples) + 2, kind)
        sheet.write_string(0, position, name, bold)
        for line, row in enumerate(template.rows, start=1):
            value = row.get(name, "")
            if isinstance(value, date):
                sheet.write_datetime(line, position, datetime.combine(value, datetime.min.time()), day)
            elif isinstance(value, Decimal):
                sheet.write_number(line, position, float(value), number)
            elif value != "":
                sheet.write_string(line, position, str(value), text)
            else:
                sheet.write_blank(line, position, None, kind)
    credits_column = template.columns.index(CREDITS)
    for line, row in enumerate(template.rows, start=1):
        credit = next((c for c in template.credit_types if c.machine_name == row.get("credit_type")), None)
        if credit is not None:
            sheet.write_comment(line, credits_column, credit.note(), {"x_scale": 2})
    sheet.freeze_panes(1, 0)

    types = book.add_worksheet(TYPES_SHEET)
    head = ("credit_type", "name", "max_credits", "increment", "variable", "what to write in credits")
    widths = [max(len(head[0]), *(len(c.machine_name) for c in template.credit_types), 0) + 2]
    widths.append(max(len(head[1]), *(len(c.name) for c in template.credit_types), 0) + 2)
    widths += [12, 10, 9, max(40, *(len(c.note()) for c in template.credit_types), 0) + 2]
    for position, title in enumerate(head):
        types.set_column(position, position, widths[position], number if position in (2, 3) else text)
        types.write_string(0, position, title, bold)
    for line, credit in enumerate(template.credit_types, start=1):
        types.write_string(line, 0, credit.machine_name, text)
        types.write_string(line, 1, credit.name, text)
        if credit.max_credits is not None:
            types.write_number(line, 2, float(credit.max_credits), number)
            types.write_number(line, 3, float(credit.increment or 0), number)
            types.write_string(line, 4, "yes" if credit.variable else "no", text)
        types.write_string(line, 5, credit.note(), text)
    types.freeze_panes(1, 0)
    book.close()
    return out.getvalue()
