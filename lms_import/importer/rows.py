"""The reference forms of the row rules and of the cross-row state: plain, and the truth.

RowParser turns one line of the file into a Row and its findings by calling, for every row, the
parser of each column (schema.COLUMNS) and then the row rules of the domain apps. Learners and
Enrollments keep the cross-row state in plain dicts of exact keys. fast.py has the forms an
import runs by default; each must give exactly what these give, and the differential tests
(tests/test_differential.py) run every path both ways to prove it.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from core.findings import E_COLUMN_COUNT, E_CONTROL_CHARACTER, E_FIELD_TOO_LONG, Finding, show
from courses.rules import course_ref_check
from credits.rules import credit_check
from enrollments.rules import dates_check, learner_check

from .schema import COLUMNS, NAMES, PROFILE_COLUMNS, Header, Row

# Every Unicode control (Cc) and format (Cf) character and the line and paragraph separators (Zl, Zp), as of
# Unicode 14 (Python 3.11): NUL and the C0/C1 controls, U+0085, zero-width spaces and joiners, direction marks, a
# BOM inside a field, U+2028/2029. tests/test_rules.py holds it against the running Python's unicodedata.
CONTROL_CHARACTER = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
DATE_COLUMNS = ("enrollment_start", "enrollment_end", "date_completed")

COLUMN_COUNT = (
    "This row has {got} values but the header has {want} columns. Look for a missing or extra delimiter (a comma "
    "inside a name needs the value in double quotes)."
)
CONTROL = (
    "{column} contains a special (control) character {value} that cannot be imported; such characters are what "
    "makes imports hang elsewhere. Delete it, or retype the value."
)
TOO_LONG = "{column} is {length} characters long; at most {limit} fit. Shorten it."


@dataclass(slots=True)
class Checked:
    """One line of the file: its fields as read, its Row (None when the line cannot be read as one), findings."""

    line: int
    fields: list[str]
    row: Row | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.row is not None and not self.findings


def remember(cache: dict, key, value, limit: int = 20_000) -> None:
    """Keep what a value parsed or formatted to for the rows after: values repeat a great deal in a file.
    Emptied when full, so that every cache stays small whatever the file's size."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def profile_conflicts(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """A value in the file that differs from a value the profile already has (blanks never conflict)."""
    return any(a and b and a != b for a, b in zip(mine, theirs, strict=True))


class RowParser:
    """The reference: every column's parser and every row rule, called for every row."""

    def __init__(self, header: Header, *, chosen: str | None, zone: tzinfo, now: datetime):
        self.width = len(header.raw)
        self.positions = header.positions()
        self.known = sorted((position, name) for name, position in header.index.items())
        self.chosen = chosen  # the course-level importer's course; None for the global importer
        self.zone = zone
        self.now = now
        self.profile_at = [NAMES.index(name) for name in PROFILE_COLUMNS]
        self.dates_at = [NAMES.index(name) for name in DATE_COLUMNS]

    def parse_batch(self, batch: list[tuple[int, list[str]]]) -> list[Checked]:
        return [self.parse(line, fields) for line, fields in batch]

    def parse(self, line: int, fields: list[str]) -> Checked:
        if len(fields) != self.width:
            message = COLUMN_COUNT.format(got=len(fields), want=self.width)
            return Checked(line, fields, None, [Finding(E_COLUMN_COUNT, message, line, "", ",".join(fields)[:200])])
        controls = self._controls(line, fields)
        if controls:
            return Checked(line, fields, None, controls)

        texts = [fields[position].strip() if position >= 0 else "" for position in self.positions]
        findings: list[Finding] = []
        for column, text in zip(COLUMNS, texts, strict=True):
            if len(text) > column.max_length:
                message = TOO_LONG.format(column=column.name, length=len(text), limit=column.max_length)
                findings.append(Finding(E_FIELD_TOO_LONG, message, line, column.name, text[:200]))
        values = []
        for column, text in zip(COLUMNS, texts, strict=True):
            value, found = column.parse(text, line, column.name, self.zone)
            values.append(value)
            findings += found
        row = Row(line, *values, tuple(values[i] for i in self.profile_at))
        findings += self.row_rules(row, [texts[i] for i in self.dates_at])
        return Checked(line, fields, row, findings)

    def row_rules(self, row: Row, dates: list[str]) -> list[Finding]:
        """The rules that take several columns of one row (texts of the date columns, for the messages)."""
        line = row.line
        findings = learner_check(
            has_external_user_id=bool(row.external_user_id), has_email=bool(row.external_email), line=line
        )
        findings += course_ref_check(line=line, value=row.external_course_id, chosen=self.chosen)
        if self.chosen is not None:
            row.external_course_id = self.chosen
        findings += dates_check(
            line=line,
            complete=row.complete,
            start=row.enrollment_start,
            end=row.enrollment_end,
            completed=row.date_completed,
            raw=dict(zip(DATE_COLUMNS, dates, strict=True)),
            now=self.now,
        )
        return findings

    def _controls(self, line: int, fields: list[str]) -> list[Finding]:
        """Control characters in the columns the importer reads (unknown columns are ignored, whatever they hold)."""
        findings = []
        for position, column in self.known:
            value = fields[position]
            match = CONTROL_CHARACTER.search(value)
            if match:
                message = CONTROL.format(column=column, value=show(match.group()))
                findings.append(Finding(E_CONTROL_CHARACTER, message, line, column, value[:200]))
        return findings


def credits_check(
    *,
    line: int,
    course_key: str,
    credit_type: str,
    credits: str,
    complete: bool,
    site_types,
    offers,
    names=None,
    labels=None,
) -> tuple:
    """The reference: credits.rules.credit_check for every row (course_key only serves the fast form's memory)."""
    return credit_check(
        line=line,
        credit_type=credit_type,
        credits=credits,
        complete=complete,
        site_types=site_types,
        offers=offers,
        names=names,
        labels=labels,
    )


class Learners:
    """This file's learners without an account, each with its order in the file (the reference form).

    A learner is found by external id or by e-mail; a row that finds one by one identifier but names it with
    another (a different e-mail, a different id, or one of them missing) is an identity conflict.
    """

    def __init__(self, expected_rows: int = 0) -> None:
        self.by_external_id: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.identities: list[tuple[str, str]] = []
        self.profiles: list[tuple[str, ...]] = []

    @property
    def count(self) -> int:
        return len(self.identities)

    def _find(self, row: Row) -> int:
        if row.external_user_id and row.external_user_id in self.by_external_id:
            return self.by_external_id[row.external_user_id]
        if row.external_email and row.external_email in self.by_email:
            return self.by_email[row.external_email]
        return -1

    def knows(self, row: Row) -> bool:
        return self._find(row) >= 0

    def find_or_add(self, row: Row) -> tuple[int, bool, bool, tuple[str, ...]]:
        """(order, first row of this learner, identity conflict, the profile of the learner's first row)."""
        order = self._find(row)
        if order >= 0:
            if self.identities[order] != (row.external_user_id, row.external_email):
                return order, False, True, ()
            return order, False, False, self.profiles[order]
        order = len(self.identities)
        self.identities.append((row.external_user_id, row.external_email))
        self.profiles.append(row.profile)
        if row.external_user_id:
            self.by_external_id[row.external_user_id] = order
        if row.external_email:
            self.by_email[row.external_email] = order
        return order, True, False, row.profile

    def username_earlier(self, username: str, order: int) -> bool:
        """Does a learner before `order` in the file get `username` as its own (its e-mail, or its id without one)?"""
        earlier = self.by_email.get(username, -1)
        if 0 <= earlier < order:
            return True
        earlier = self.by_external_id.get(username, -1)
        return 0 <= earlier < order and not self.identities[earlier][1]


class Enrollments:
    """One entry per learner and course of this file: order, first line, enrollment fields, credit types seen."""

    def __init__(self, expected_rows: int = 0) -> None:
        self.entries: dict[tuple[int, int], tuple[int, int, tuple, set[str]]] = {}

    @property
    def count(self) -> int:
        return len(self.entries)

    def add_row(
        self, learner_key: int, course_key: int, line: int, fields: tuple, credit_type: str
    ) -> tuple[int, bool, int, str | None]:
        """(enrollment order, first row of it, its first line, problem: None, 'inconsistent' or 'duplicate')."""
        key = (learner_key, course_key)
        entry = self.entries.get(key)
        if entry is None:
            order = len(self.entries)
            self.entries[key] = (order, line, fields, {credit_type})
            return order, True, line, None
        order, first, first_fields, types = entry
        if first_fields != fields:
            return order, False, first, "inconsistent"
        if credit_type in types:
            return order, False, first, "duplicate"
        types.add(credit_type)
        return order, False, first, None


class Profiles:
    """The learner profiles this import has changed so far: learner key -> the profile as it now stands.

    A learner's profile as the import found it (an existing learner's, or a new learner's first row's) is
    not kept here; only once a row fills its blanks (or creates it) does the learner get an entry. Every
    path then compares a row with the same profile, whatever the batch boundaries and whatever this
    import has already written (the producer process cannot see those writes, one process can).
    """

    def __init__(self, expected_rows: int = 0) -> None:
        self.changed: dict[int, tuple[str, ...]] = {}

    def get(self, key: int) -> tuple[str, ...] | None:
        return self.changed.get(key)

    def set(self, key: int, profile: tuple[str, ...]) -> None:
        self.changed[key] = profile


def profile_merge(profile: tuple[str, ...], row: tuple[str, ...]) -> tuple[str, ...]:
    """The profile after a row fills its blanks: the profile's values stay, the row's fill the empty ones."""
    return tuple(kept or given for kept, given in zip(profile, row, strict=True))
