"""PARS rules on plain values (no database): inclusion, counting, ACCME formatting, missing board data."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from enrollments.pars import (
    ACCME_COLUMNS,
    LEFT_OUT_LEGACY,
    LEFT_OUT_SHELL,
    MISSING_BOARD_ID,
    MISSING_CREDIT,
    MISSING_DOB,
    MISSING_LICENSE,
    MISSING_NAME,
    Completion,
    accme_csv,
    accme_date,
    accme_row,
    completion_missing,
    counted_category,
    dob_text,
    dob_valid,
    in_period,
    record_left_out,
)

PACIFIC = ZoneInfo("America/Los_Angeles")


def completion(**values) -> Completion:
    base = dict(
        activity_id="0012345",
        course="CARD101",
        learner="L-1",
        completed=datetime(2026, 9, 14, tzinfo=PACIFIC),
        first_name="Maria",
        last_name="Garcia",
        dob_month="04",
        dob_day="09",
        licensing_state="CA",
        license_id="0045123",
        cme_credits=Decimal("2.00"),
    )
    return Completion(**(base | values))


@pytest.mark.parametrize(
    ("kind", "source", "expected"),
    [
        ("course", "native", None),
        ("course", "course_import", None),
        ("course", "legacy_import", LEFT_OUT_LEGACY),
        ("shell", "legacy_import", LEFT_OUT_SHELL),
        ("shell", "native", LEFT_OUT_SHELL),
        ("shell", "course_import", LEFT_OUT_SHELL),
    ],
)
def test_native_and_course_level_records_count_legacy_and_shells_never(kind, source, expected):
    assert record_left_out(course_kind=kind, source=source) == expected


def test_only_enrollments_with_a_start_and_a_category_are_counted():
    start = datetime(2026, 9, 1, tzinfo=UTC)
    assert counted_category(enrollment_start=start, participant_category="physician") == "physician"
    assert counted_category(enrollment_start=start, participant_category="other") == "other"
    assert counted_category(enrollment_start=start, participant_category="") is None
    assert counted_category(enrollment_start=None, participant_category="physician") is None


def test_period_takes_whole_days_in_the_site_zone():
    late_evening = datetime(2026, 9, 30, 23, 30, tzinfo=PACIFIC)  # already 1 October in UTC
    assert in_period(late_evening, date_from=date(2026, 9, 1), date_to=date(2026, 9, 30), zone=PACIFIC)
    assert not in_period(late_evening, date_from=date(2026, 9, 1), date_to=date(2026, 9, 30), zone=UTC)
    assert in_period(None, date_from=None, date_to=None, zone=UTC)
    assert not in_period(None, date_from=date(2026, 1, 1), date_to=None, zone=UTC)


def test_completion_date_is_mm_dd_yyyy_of_the_stored_day_without_drift():
    midnight_pacific = datetime(2026, 9, 14, tzinfo=PACIFIC)  # how the importer stores 2026-09-14 there
    assert accme_date(midnight_pacific, PACIFIC) == "09/14/2026"
    assert accme_date(datetime(2026, 1, 5, tzinfo=UTC), UTC) == "01/05/2026"


def test_date_of_birth_keeps_leading_zeros_and_pads_single_digits():
    assert dob_text("04", "09") == "04/09"
    assert dob_text("4", "9") == "04/09"
    assert dob_text("", "09") == ""
    assert dob_valid("02", "29") and not dob_valid("02", "30") and not dob_valid("13", "01")
    assert not dob_valid("", "") and not dob_valid("ab", "01")


def test_accme_row_is_text_in_the_upload_layout():
    row = accme_row(completion(certifying_board="ABIM", board_id="0981", moc_points=Decimal("2")), PACIFIC)

    assert dict(zip(ACCME_COLUMNS, row, strict=True)) == {
        "Record Action": "Add",
        "ACCME Activity ID": "0012345",
        "Completion Date": "09/14/2026",
        "First Name": "Maria",
        "Last Name": "Garcia",
        "Date of Birth MM/DD": "04/09",
        "Licensing State": "CA",
        "Licensing ID or NPI": "0045123",
        "Number of CME Credits": "2.00",
        "Certifying Board": "ABIM",
        "Certifying Board ID": "0981",
        "Number of MOC Points": "2.00",
    }


def test_accme_csv_neutralises_formulas_and_keeps_zeros():
    text = accme_csv([completion(first_name="=HYPERLINK(1)", last_name="@SUM", license_id="0045123")], UTC)

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["Record Action", "ACCME Activity ID", "Completion Date"]
    assert rows[1][1] == "0012345" and rows[1][7] == "0045123"
    assert rows[1][3] == "'=HYPERLINK(1)" and rows[1][4] == "'@SUM"


def test_a_complete_record_needs_nothing():
    assert completion_missing(completion()) == []


def test_every_learner_needs_a_name_and_a_date_of_birth():
    assert completion_missing(completion(first_name="", dob_month="")) == [MISSING_NAME, MISSING_DOB]
    assert completion_missing(completion(dob_month="02", dob_day="31")) == [MISSING_DOB]


def test_moc_needs_the_board_id():
    moc = completion(cme_credits=None, moc_points=Decimal("2.00"), certifying_board="ABIM", board_id="")
    assert completion_missing(moc) == [MISSING_BOARD_ID]


def test_a_board_on_the_profile_needs_its_id_even_for_cme_only():
    assert MISSING_BOARD_ID in completion_missing(completion(certifying_board="ABP"))


def test_cme_needs_a_license_unless_the_learner_has_a_board_id():
    assert completion_missing(completion(licensing_state="", license_id="")) == [MISSING_LICENSE]
    with_board = completion(licensing_state="", license_id="", certifying_board="ABIM", board_id="0981")
    assert completion_missing(with_board) == []


def test_a_completion_without_cme_or_moc_has_nothing_to_report():
    assert completion_missing(completion(cme_credits=None)) == [MISSING_CREDIT]
    assert completion_missing(completion(cme_credits=Decimal("0.00"))) == [MISSING_CREDIT]
