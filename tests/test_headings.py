"""Headers people actually write (issue 14): the headings of spreadsheets made by hand or by other systems.

Each column's aliases live in lms_import/importer/schema.py; a header cell matches after its case is folded
and its spaces, hyphens and punctuation become one underscore. No alias may name two columns, and a file
whose header is written the way people write it imports without an unknown-column warning.
"""

import json
from collections import Counter
from decimal import Decimal

import pytest

from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile
from lms_import.importer.schema import COLUMNS, header_read, normalize_name

from .conftest import run_cli

# What the headings mean, as spreadsheets write them.
HEADINGS = {
    "Email Address": "external_email",
    "E-mail": "external_email",
    "Email": "external_email",
    "E-Mail Address:": "external_email",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Course ID": "external_course_id",
    "Course Code": "external_course_id",
    "Course #": None,  # "course" alone could be its id or its title: not guessed
    "Course Title": "title",
    "Completed": "complete",
    "Completion Date": "date_completed",
    "Date Completed": "date_completed",
    "Enrolled": "enrollment_start",
    "Enrollment Date": "enrollment_start",
    "Credit Type": "credit_type",
    "Credits Earned": "credits",
    "Credit Hours": "credits",
    "NPI": "license_id",
    "NPI Number": "license_id",
    "License State": "licensing_state",
    "Board ID": "board_id",
    "Member ID": "external_user_id",
    "Employee ID*": "external_user_id",
    "Expiration Date": "credit_expiration",
}


def test_no_alias_names_two_columns_or_another_column():
    spellings = Counter(name for column in COLUMNS for name in (column.name, *column.aliases))
    assert [name for name, count in spellings.items() if count > 1] == []


def test_every_alias_is_written_as_a_header_cell_becomes():
    for column in COLUMNS:
        for name in (column.name, *column.aliases):
            assert normalize_name(name) == name, (column.name, name)


@pytest.mark.parametrize("heading,column", HEADINGS.items())
def test_a_heading_people_write_names_its_column(heading, column):
    required = [name for name in ("external_user_id", "complete", "external_course_id") if name != column]
    header = header_read([heading, *required], global_importer=True)
    warnings = [code for code, _, _ in header.warnings]
    if column is None:
        assert 0 not in header.index.values() and warnings == ["W_UNKNOWN_COLUMN"]
    else:
        assert header.index[column] == 0 and "W_UNKNOWN_COLUMN" not in warnings


def test_case_spaces_and_punctuation_fold_away():
    assert normalize_name("  E-Mail  Address: ") == "e_mail_address"
    assert normalize_name("\ufeffCREDITS (earned)") == "credits_earned"
    assert normalize_name("Date\u00a0Completed") == "date_completed"  # a no-break space, as Excel pastes it


@pytest.mark.django_db(transaction=True)
def test_a_file_with_the_headings_people_write_imports_without_an_unknown_column(course, learner, write_csv):
    header = [
        "Member ID",
        "Email Address",
        "First Name",
        "Last Name",
        "Course Code",
        "Enrollment Date",
        "Completed",
        "Completion Date",
        "Credit Type",
        "Credit Hours",
        "Expiration Date",
        "NPI",
        "License State",
    ]
    row = ["L-1", "Maria@Example.org", "Maria", "Garcia", "CARD101", "2026-09-01", "Yes", "2026-09-14"]
    path = write_csv(
        [
            [*row, "ama_pra_1", "1.50", "2028-12-31", "0012345", "NY"],
            [*row, "ancc", "2.00", "", "0012345", "NY"],
        ],
        header=header,
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0, result["errors"]
    assert [w["code"] for w in result["warnings"]] == ["W_HEADER_NORMALIZED"]
    assert result["created"]["enrollments"] == 1 and result["created"]["credits"] == 2
    enrollment = Enrollment.objects.get(user=learner, course=course)
    assert enrollment.complete and enrollment.date_completed.date().isoformat() == "2026-09-14"
    assert enrollment.enrollment_start.date().isoformat() == "2026-09-01"
    assert sorted(CreditAward.objects.values_list("credit_type__machine_name", "credits")) == [
        ("ama_pra_1", Decimal("1.50")),
        ("ancc", Decimal("2.00")),
    ]
    profile = LearnerProfile.objects.get(user=learner)
    assert (profile.license_id, profile.licensing_state) == ("0012345", "NY")
