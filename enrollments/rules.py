"""Learner and enrollment rules (SPEC §4): pure functions over plain values, no database.

The column parsers share one signature, `(value, line, column, zone) -> (parsed value, findings)`,
so that the importer's column schema can name one per column (lms_import/importer/schema.py).
The value is the cell's text with surrounding spaces removed; "" is an empty cell.
"""

import re
from datetime import date, datetime, time, tzinfo
from typing import Any

from core.findings import (
    E_COMPLETE_INVALID,
    E_DATE_FUTURE,
    E_DATE_INVALID,
    E_DATE_ORDER,
    E_DATE_REQUIRED,
    E_EMAIL_INVALID,
    E_LEARNER_ID_MISSING,
    E_VALUE_INVALID,
    Finding,
    show,
)
from core.text import email_key

TRUE = frozenset({"1", "yes", "true", "y"})
FALSE = frozenset({"0", "no", "false", "n"})
CATEGORIES = {"physician": "physician", "1": "physician", "other": "other", "0": "other"}
FLAGS = dict.fromkeys(TRUE, True) | dict.fromkeys(FALSE, False)

# Deliberately plain: one @, no spaces, a dot in the domain. Cheap enough for a million rows,
# strict enough to catch what spreadsheets do to addresses (spaces, two @, a trailing comma).
_EMAIL = re.compile(r"^[^@\s,;<>()\[\]\\\"]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+$")

LEARNER_MISSING = (
    "The row names no learner: give an external_user_id or an external_email so the record can be matched to "
    "an account."
)
EMAIL_INVALID = "{value} is not a valid e-mail address. Correct it (for example jane.doe@example.org)."
COMPLETE_INVALID = "complete must be 1 or 0 (yes/no and true/false are accepted too); got {value}."
COMPLETE_EMPTY = "complete is empty. Every row needs complete=1 (completed) or complete=0 (enrolled, not completed)."
DATE_INVALID = (
    "{column} {value} is not a date. Use YYYY-MM-DD (or YYYY-MM-DDTHH:MM). Spreadsheets often turn dates into "
    "3/14/2024: format the column as text or yyyy-mm-dd before saving."
)
DATE_REQUIRED = "complete is 1 but date_completed is empty. Add the date the learner completed the course."
DATE_FUTURE = "date_completed {value} is in the future. A completion can only be recorded once it has happened."
DATE_ORDER = "{later} {later_value} is before {earlier} {earlier_value}. Correct whichever date is wrong."
BOOL_INVALID = "{column} must be 1 or 0; got {value}."
CATEGORY_INVALID = "participant_category must be physician or other (1 or 0); got {value}."
DOB_INVALID = "{column} must be a number from 1 to {top}; got {value}."


Parsed = tuple[Any, list[Finding]]


def text_parse(value: str, line: int, column: str, zone: tzinfo) -> Parsed:
    """Free text: kept as it is (names, ids, titles; PARS data keeps its leading zeros)."""
    return value, []


def email_check(value: str, line: int) -> list[Finding]:
    if _EMAIL.match(value):
        return []
    return [Finding(E_EMAIL_INVALID, EMAIL_INVALID.format(value=show(value)), line, "external_email", value)]


def email_parse(value: str, line: int, column: str, zone: tzinfo) -> Parsed:
    """An e-mail, with its ASCII letters in lower case: e-mails are matched by core.text.email_key."""
    if not value:
        return "", []
    return email_key(value), email_check(value, line)


def learner_check(*, has_external_user_id: bool, has_email: bool, line: int) -> list[Finding]:
    """Every row names its learner by external id or e-mail (or both)."""
    if not has_external_user_id and not has_email:
        return [Finding(E_LEARNER_ID_MISSING, LEARNER_MISSING, line, "external_user_id", "")]
    return []


def flag_parse(value: str) -> bool | None:
    return FLAGS.get(value.lower())


def complete_parse(value: str, line: int, column: str = "complete", zone: tzinfo | None = None) -> Parsed:
    flag = flag_parse(value)
    if flag is None:
        message = COMPLETE_EMPTY if not value else COMPLETE_INVALID.format(value=show(value))
        return False, [Finding(E_COMPLETE_INVALID, message, line, "complete", value)]
    return flag, []


def when_parse(value: str, zone: tzinfo) -> datetime | None:
    """An ISO 8601 date or date-time; a date is midnight and a naive time is local to the site."""
    try:
        if len(value) <= 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=zone)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def date_parse(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) <= 10 else datetime.fromisoformat(value).date()
    except ValueError:
        return None


def date_invalid(column: str, value: str, line: int) -> Finding:
    return Finding(E_DATE_INVALID, DATE_INVALID.format(column=column, value=show(value)), line, column, value)


def moment_parse(value: str, line: int, column: str, zone: tzinfo) -> Parsed:
    """enrollment_start, enrollment_end, date_completed: a moment (None when empty)."""
    if not value:
        return None, []
    moment = when_parse(value, zone)
    return moment, ([] if moment is not None else [date_invalid(column, value, line)])


def day_parse(value: str, line: int, column: str, zone: tzinfo) -> Parsed:
    """credit_expiration: a calendar day (None when empty)."""
    if not value:
        return None, []
    day = date_parse(value)
    return day, ([] if day is not None else [date_invalid(column, value, line)])


def dates_check(
    *,
    line: int,
    complete: bool,
    start: datetime | None,
    end: datetime | None,
    completed: datetime | None,
    raw: dict[str, str],
    now: datetime,
) -> list[Finding]:
    """Order and presence of the enrollment dates (each already parsed; None when empty or invalid)."""
    findings = []
    if complete and completed is None and not raw.get("date_completed"):
        findings.append(Finding(E_DATE_REQUIRED, DATE_REQUIRED, line, "date_completed", ""))
    if completed is not None and completed > now:
        value = raw["date_completed"]
        findings.append(Finding(E_DATE_FUTURE, DATE_FUTURE.format(value=show(value)), line, "date_completed", value))
    if start is not None and end is not None and end < start:
        findings.append(_order("enrollment_end", "enrollment_start", raw, line))
    if start is not None and completed is not None and completed < start:
        findings.append(_order("date_completed", "enrollment_start", raw, line))
    return findings


def _order(later: str, earlier: str, raw: dict[str, str], line: int) -> Finding:
    message = DATE_ORDER.format(
        later=later, later_value=show(raw[later]), earlier=earlier, earlier_value=show(raw[earlier])
    )
    return Finding(E_DATE_ORDER, message, line, later, raw[later])


def attended_parse(value: str, line: int, column: str = "attended", zone: tzinfo | None = None) -> Parsed:
    if not value:
        return None, []
    flag = flag_parse(value)
    if flag is None:
        message = BOOL_INVALID.format(column="attended", value=show(value))
        return None, [Finding(E_VALUE_INVALID, message, line, "attended", value)]
    return flag, []


def category_parse(value: str, line: int, column: str = "participant_category", zone: tzinfo | None = None) -> Parsed:
    if not value:
        return "", []
    category = CATEGORIES.get(value.lower())
    if category is None:
        message = CATEGORY_INVALID.format(value=show(value))
        return "", [Finding(E_VALUE_INVALID, message, line, "participant_category", value)]
    return category, []


def _dob_part(value: str, line: int, column: str, top: int) -> Parsed:
    """PARS wants MM/DD: kept as two-digit text (leading zeros), but it must be a plausible month or day."""
    if not value:
        return "", []
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= top):
        message = DOB_INVALID.format(column=column, top=top, value=show(value))
        return value, [Finding(E_VALUE_INVALID, message, line, column, value)]
    return value.zfill(2), []


def dob_month_parse(value: str, line: int, column: str = "dob_month", zone: tzinfo | None = None) -> Parsed:
    return _dob_part(value, line, "dob_month", 12)


def dob_day_parse(value: str, line: int, column: str = "dob_day", zone: tzinfo | None = None) -> Parsed:
    return _dob_part(value, line, "dob_day", 31)
