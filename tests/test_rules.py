"""One test per rule and code, on plain values: no database."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.csv_safety import csv_safe
from core.findings import FileProblem, show
from courses.rules import course_ref_check, shell_title_check
from credits.rules import Offer, credit_check, credits_parse
from enrollments.engine import completes_on_enrollment, engine_awards
from enrollments.rules import (
    attended_parse,
    category_parse,
    complete_parse,
    date_parse,
    dates_check,
    day_parse,
    dob_day_parse,
    dob_month_parse,
    email_parse,
    learner_check,
    moment_parse,
    when_parse,
)
from lms_import.importer.rows import profile_conflicts
from lms_import.importer.schema import header_read, normalize_name

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SITE = {"ama_pra_1": 1, "ancc": 2, "abim_moc": 3}
OFFERS = {
    "ama_pra_1": Offer(1, "ama_pra_1", Decimal("2.00"), True, Decimal("0.25")),
    "ancc": Offer(2, "ancc", Decimal("2.00"), False, Decimal("0.25")),
}


def codes(findings):
    return [f.code for f in findings]


def credit(credit_type="ama_pra_1", credits="1.50", complete=True, offers=OFFERS):
    return credit_check(
        line=7, credit_type=credit_type, credits=credits, complete=complete, site_types=SITE, offers=offers
    )


# -- learners ------------------------------------------------------------------------------------------
def test_learner_id_missing():
    (finding,) = learner_check(has_external_user_id=False, has_email=False, line=4)
    assert (finding.code, finding.line, finding.column) == ("E_LEARNER_ID_MISSING", 4, "external_user_id")
    assert "external_user_id or an external_email" in finding.message


@pytest.mark.parametrize("email", ["jane", "jane@", "jane doe@example.org", "a@b@example.org", "jane@example"])
def test_email_invalid(email):
    _, (finding,) = email_parse(email, 2, "external_email", UTC)
    assert finding.code == "E_EMAIL_INVALID" and finding.value == email and finding.column == "external_email"


def test_valid_learner_identifiers_pass():
    assert learner_check(has_external_user_id=False, has_email=True, line=2) == []
    assert learner_check(has_external_user_id=True, has_email=False, line=2) == []
    assert email_parse("Jane.Doe+cme@Example.org", 2, "external_email", UTC) == ("jane.doe+cme@example.org", [])
    assert email_parse("", 2, "external_email", UTC) == ("", [])


# -- complete, dates, enumerations --------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,expected", [("1", True), ("0", False), ("YES", True), ("no", False), ("True", True), ("false", False)]
)
def test_complete_accepts_every_spelling(value, expected):
    assert complete_parse(value, 2) == (expected, [])


@pytest.mark.parametrize("value", ["", "2", "done", "x"])
def test_complete_invalid(value):
    _, (finding,) = complete_parse(value, 3)
    assert finding.code == "E_COMPLETE_INVALID" and finding.column == "complete"


def test_when_parse_takes_dates_and_datetimes_in_the_site_zone():
    assert when_parse("2026-03-05", UTC) == datetime(2026, 3, 5, tzinfo=UTC)
    assert when_parse("2026-03-05T10:30", UTC) == datetime(2026, 3, 5, 10, 30, tzinfo=UTC)
    assert when_parse("2026-03-05T10:30:00+02:00", UTC).utcoffset().total_seconds() == 7200
    assert when_parse("3/5/2026", UTC) is None
    assert when_parse("2026-02-30", UTC) is None
    assert date_parse("2027-01-31") == date(2027, 1, 31) and date_parse("31/01/2027") is None


def test_date_columns_name_their_column_when_invalid():
    assert moment_parse("", 4, "enrollment_end", UTC) == (None, [])
    _, (finding,) = moment_parse("14/03/2026", 4, "enrollment_end", UTC)
    assert (finding.code, finding.column, finding.value) == ("E_DATE_INVALID", "enrollment_end", "14/03/2026")
    assert day_parse("2027-01-31", 4, "credit_expiration", UTC) == (date(2027, 1, 31), [])
    assert day_parse("soon", 4, "credit_expiration", UTC)[1][0].column == "credit_expiration"


def dates(complete=True, start=None, end=None, completed=None, raw=None):
    return dates_check(line=5, complete=complete, start=start, end=end, completed=completed, raw=raw or {}, now=NOW)


def test_date_required_when_complete():
    (finding,) = dates(complete=True)
    assert finding.code == "E_DATE_REQUIRED" and finding.column == "date_completed"


def test_date_future():
    (finding,) = dates(completed=datetime(2026, 12, 1, tzinfo=UTC), raw={"date_completed": "2026-12-01"})
    assert finding.code == "E_DATE_FUTURE" and finding.value == "2026-12-01"


def test_date_order_end_before_start_and_completion_before_start():
    start, end = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    raw = {"enrollment_start": "2026-05-01", "enrollment_end": "2026-04-01", "date_completed": "2026-04-02"}
    findings = dates(start=start, end=end, completed=datetime(2026, 4, 2, tzinfo=UTC), raw=raw)
    assert [(f.code, f.column) for f in findings] == [
        ("E_DATE_ORDER", "enrollment_end"),
        ("E_DATE_ORDER", "date_completed"),
    ]
    assert "before enrollment_start '2026-05-01'" in findings[0].message


def test_incomplete_row_needs_no_completion_date():
    assert dates(complete=False) == []


def test_attended_and_category_are_enumerations():
    assert attended_parse("1", 2) == (True, []) and attended_parse("", 2) == (None, [])
    assert attended_parse("maybe", 2)[1][0].code == "E_VALUE_INVALID"
    assert category_parse("Physician", 2) == ("physician", []) and category_parse("0", 2) == ("other", [])
    _, (finding,) = category_parse("nurse", 2)
    assert finding.code == "E_VALUE_INVALID" and finding.column == "participant_category"


def test_dob_must_be_a_month_and_a_day_kept_as_two_digits():
    assert dob_month_parse("4", 2) == ("04", []) and dob_day_parse("09", 2) == ("09", [])
    assert [(f.code, f.column) for f in dob_month_parse("13", 2)[1] + dob_day_parse("0", 2)[1]] == [
        ("E_VALUE_INVALID", "dob_month"),
        ("E_VALUE_INVALID", "dob_day"),
    ]
    assert dob_month_parse("\u0661", 2)[1][0].code == "E_VALUE_INVALID"  # a digit, but not 0-9


# -- credits -------------------------------------------------------------------------------------------
def test_credits_parse_is_decimal_6_2_not_negative():
    assert credits_parse("1.25") == Decimal("1.25") and credits_parse("0") == Decimal("0")
    for bad in ("-1", "1.255", "10000", "abc", "NaN", "Infinity", ""):
        assert credits_parse(bad) is None


def test_credit_on_incomplete_row():
    _, (finding,) = credit(complete=False)
    assert finding.code == "E_CREDIT_ON_INCOMPLETE" and "Do not put credit on a record that is not complete" in (
        finding.message
    )
    _, (finding,) = credit(credits="", complete=False)
    assert finding.code == "E_CREDIT_ON_INCOMPLETE" and finding.column == "credit_type"


def test_credit_type_missing_and_credits_missing():
    assert codes(credit(credit_type="")[1]) == ["E_CREDIT_TYPE_MISSING"]
    assert codes(credit(credits="")[1]) == ["E_CREDITS_MISSING"]


def test_credit_type_unknown_lists_the_site_types():
    _, (finding,) = credit(credit_type="cme_magic")
    assert finding.code == "E_CREDIT_TYPE_UNKNOWN" and "abim_moc, ama_pra_1, ancc" in finding.message


def test_credit_type_not_offered_lists_the_course_offer():
    _, (finding,) = credit(credit_type="abim_moc")
    assert finding.code == "E_CREDIT_TYPE_NOT_OFFERED" and "It offers: ama_pra_1, ancc" in finding.message


def test_credits_invalid():
    assert codes(credit(credits="1,5")[1]) == ["E_CREDITS_INVALID"]


def test_credits_over_max():
    _, (finding,) = credit(credits="2.50")
    assert finding.code == "E_CREDITS_OVER_MAX" and "maximum of 2.00" in finding.message


def test_credits_increment():
    assert codes(credit(credits="1.10")[1]) == ["E_CREDITS_INCREMENT"]
    assert credit(credits="1.75")[1] == []


def test_credits_not_variable():
    _, (finding,) = credit(credit_type="ancc", credits="1.00")
    assert finding.code == "E_CREDITS_NOT_VARIABLE"
    assert credit(credit_type="ancc", credits="2.00")[1] == []


def test_shell_takes_any_site_type_and_any_decimal():
    assert credit(credit_type="abim_moc", credits="37.13", offers=None) == (Decimal("37.13"), [])
    assert codes(credit(credit_type="unknown", offers=None)[1]) == ["E_CREDIT_TYPE_UNKNOWN"]


# -- courses -------------------------------------------------------------------------------------------
def test_course_mismatch_and_missing():
    assert course_ref_check(line=2, value="", chosen="CARD101") == []
    assert course_ref_check(line=2, value="CARD101", chosen="CARD101") == []
    (finding,) = course_ref_check(line=2, value="CARD102", chosen="CARD101")
    assert finding.code == "E_COURSE_MISMATCH" and finding.value == "CARD102"
    (finding,) = course_ref_check(line=2, value="", chosen=None)
    assert finding.code == "E_COURSE_MISSING"


def test_title_missing_for_a_shell():
    (finding,) = shell_title_check(line=9, course_id="OLD-1", title="")
    assert finding.code == "E_TITLE_MISSING" and finding.column == "title"
    assert shell_title_check(line=9, course_id="OLD-1", title="Old course") == []


# -- the completion engine -------------------------------------------------------------------------------
def test_engine_completes_only_courses_without_required_objects():
    assert completes_on_enrollment(kind="course", has_required_object=False)
    assert not completes_on_enrollment(kind="course", has_required_object=True)
    assert not completes_on_enrollment(kind="shell", has_required_object=False)
    requested = {1: (Decimal("0.50"), date(2027, 1, 31)), 9: (Decimal("3.00"), None)}
    assert engine_awards({1: Decimal("2.00"), 2: Decimal("1.50")}, requested) == {
        1: (Decimal("2.00"), date(2027, 1, 31)),
        2: (Decimal("1.50"), None),
    }


# -- header --------------------------------------------------------------------------------------------
def test_header_names_are_normalised_and_reported_once():
    raw = ["\ufeffExternal User ID ", "EMAIL", "Complete", "date-completed", "foo"]
    header = header_read(raw, global_importer=False)
    assert header.index == {"external_user_id": 0, "external_email": 1, "complete": 2, "date_completed": 3}
    codes_found = [code for code, _, _ in header.warnings]
    assert codes_found == ["W_HEADER_NORMALIZED", "W_UNKNOWN_COLUMN"]
    assert header.warnings[0][2] == 4 and "'foo'" in header.warnings[1][1]
    assert normalize_name("  Credit-Type ") == "credit_type"


def test_missing_column_names_near_misses():
    with pytest.raises(FileProblem) as problem:
        header_read(["external_user_id", "compelte", "credits"], global_importer=False)
    finding = problem.value.finding
    assert finding.code == "F_MISSING_COLUMN" and "'compelte' looks like complete" in finding.message
    with pytest.raises(FileProblem) as problem:
        header_read(["uid", "complete"], global_importer=True)
    assert "external_course_id" in problem.value.finding.message


def test_duplicate_column():
    with pytest.raises(FileProblem) as problem:
        header_read(["email", "external_email", "complete"], global_importer=False)
    assert problem.value.finding.code == "F_DUPLICATE_COLUMN"


def test_profile_conflicts_ignore_blanks():
    assert not profile_conflicts(("04", "", "CA"), ("", "09", "CA"))
    assert profile_conflicts(("04", "", "CA"), ("05", "", "CA"))


# -- output safety -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"])
def test_csv_safe_neutralises_formulas(value):
    assert csv_safe(value) == "'" + value


def test_csv_safe_leaves_text_alone():
    assert csv_safe("Maria") == "Maria" and csv_safe(None) == "" and csv_safe(12) == "12"


def test_show_makes_control_characters_visible():
    assert show("a\x00b") == "'a\\x00b'" and show("x" * 100).endswith("…'")


def test_emails_fold_ascii_letters_only_so_look_alikes_stay_apart():
    from core.text import email_key

    assert email_key("Ann.Lee@Example.ORG") == "ann.lee@example.org"
    assert email_key("SØren.Ås@Example.org") == "sØren.Ås@example.org"  # only ASCII letters fold
    assert email_key("\u212aim@example.org") != "kim@example.org"  # the Kelvin sign is not a k
    assert email_parse("\u212aIM@Example.org", 2, "external_email", UTC)[0] == "\u212aim@example.org"


def test_control_characters_are_every_control_format_and_separator_character():
    import sys
    import unicodedata

    from lms_import.importer.rows import CONTROL_CHARACTER

    found = {chr(cp) for cp in range(sys.maxunicode + 1) if CONTROL_CHARACTER.match(chr(cp))}
    wanted = {chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Zl", "Zp")}
    assert found == wanted
    assert all(not character.isprintable() for character in found)  # the fast parser's C-speed filter stays exact
