"""The file's columns (SPEC §4), each declared once, and everything that derives from them.

A Column says what the header may call it, how long its text may be, which rule of the domain
parses it, and which model fields its value is stored in. From COLUMNS come the header repair
(`header_read`), the `Row` a checked line becomes, the row parsers (check.py and its fast form
in fast.py), and the file's part of the column lists each table is written with (`LAYOUTS`).
tests/test_schema.py holds all of it against the models.
"""

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, make_dataclass
from datetime import tzinfo
from functools import cached_property
from operator import attrgetter
from typing import Any

from core.findings import (
    F_DUPLICATE_COLUMN,
    F_MISSING_COLUMN,
    W_HEADER_NORMALIZED,
    W_UNKNOWN_COLUMN,
    FileProblem,
    Finding,
)
from enrollments.rules import (
    Parsed,
    attended_parse,
    category_parse,
    complete_parse,
    day_parse,
    dob_day_parse,
    dob_month_parse,
    email_parse,
    moment_parse,
    text_parse,
)

Parser = Callable[[str, int, str, tzinfo], Parsed]

USER = "auth.User"
PROFILE = "enrollments.LearnerProfile"
COURSE = "courses.Course"
ENROLLMENT = "enrollments.Enrollment"
AWARD = "credits.CreditAward"
PENDING = "enrollments.PendingRecord"
CREDIT_TYPE = "credits.CreditType"


@dataclass(frozen=True)
class Column:
    name: str
    max_length: int  # of the text in the file; for a text field, the field's own max_length
    parse: Parser
    stored_in: tuple[str, ...]  # "app_label.Model.field": where the parsed value is written (or what it names)
    aliases: tuple[str, ...] = ()

    def fields_of(self, model: str) -> list[str]:
        return [target.rsplit(".", 1)[1] for target in self.stored_in if target.rsplit(".", 1)[0] == model]


def _in(*models: str, field: str) -> tuple[str, ...]:
    return tuple(f"{model}.{field}" for model in models)


COLUMNS: tuple[Column, ...] = (
    Column(
        "external_user_id",
        255,
        text_parse,
        _in(PROFILE, PENDING, field="external_user_id"),
        ("uid", "member_id", "external_uid", "learner_id", "user_id", "employee_id", "student_id", "participant_id"),
    ),
    Column(
        "external_email",
        254,
        email_parse,
        _in(USER, PENDING, field="email"),
        (
            "email",
            "mail",
            "external_mail",
            "email_address",
            "e_mail",
            "e_mail_address",
            "emailaddress",
            "learner_email",
            "user_email",
        ),
    ),
    Column("first_name", 150, text_parse, _in(USER, PENDING, field="first_name"), ("firstname", "given_name", "first")),
    Column(
        "last_name",
        150,
        text_parse,
        _in(USER, PENDING, field="last_name"),
        ("lastname", "surname", "family_name", "last"),
    ),
    Column(
        "external_course_id",
        128,
        text_parse,
        _in(COURSE, field="external_course_id"),
        ("course_id", "course_code", "course_number", "course_no"),
    ),
    Column("title", 255, text_parse, _in(COURSE, field="title"), ("course_title", "course_name")),
    Column(
        "enrollment_start",
        40,
        moment_parse,
        _in(ENROLLMENT, PENDING, field="enrollment_start"),
        (
            "start_date",
            "enrollment_date",
            "enrolled_on",
            "registration_date",
            "enrolled",
            "date_enrolled",
            "enrolled_date",
            "enrollment_start_date",
        ),
    ),
    Column(
        "enrollment_end",
        40,
        moment_parse,
        _in(ENROLLMENT, PENDING, field="enrollment_end"),
        ("end_date", "enrollment_end_date"),
    ),
    Column(
        "complete",
        10,
        complete_parse,
        _in(ENROLLMENT, PENDING, field="complete"),
        ("completed", "is_complete", "completion"),
    ),
    Column(
        "date_completed",
        40,
        moment_parse,
        _in(ENROLLMENT, PENDING, field="date_completed"),
        ("completion_date", "completed_on", "date_of_completion", "completed_date", "date_complete"),
    ),
    Column(
        "credit_type",
        64,
        text_parse,
        _in(CREDIT_TYPE, field="machine_name"),
        ("type_of_credit", "credit_type_name", "credit_name"),
    ),
    # Parsed with its row by credits.rules.credit_check: whether credits may be given depends on `complete`
    # and on what the row's course offers.
    Column(
        "credits",
        20,
        text_parse,
        _in(AWARD, PENDING, field="credits"),
        ("credits_earned", "credit_hours", "credit_amount", "credits_awarded", "contact_hours"),
    ),
    Column(
        "credit_expiration",
        40,
        day_parse,
        _in(AWARD, PENDING, field="credit_expiration"),
        ("expiration_date", "credit_expiration_date", "expiry_date"),
    ),
    Column("attended", 10, attended_parse, _in(ENROLLMENT, PENDING, field="attended")),
    Column(
        "participant_category",
        10,
        category_parse,
        _in(ENROLLMENT, PENDING, field="participant_category"),
        ("participant_type", "learner_category"),
    ),
    Column("dob_month", 2, dob_month_parse, _in(PROFILE, PENDING, field="dob_month"), ("birth_month",)),
    Column("dob_day", 2, dob_day_parse, _in(PROFILE, PENDING, field="dob_day"), ("birth_day",)),
    Column(
        "licensing_state",
        64,
        text_parse,
        _in(PROFILE, PENDING, field="licensing_state"),
        ("license_state", "state_of_licensure"),
    ),
    Column(
        "license_id",
        64,
        text_parse,
        _in(PROFILE, PENDING, field="license_id"),
        ("npi", "license", "license_number", "npi_number", "license_no"),
    ),
    Column("certifying_board", 128, text_parse, _in(PROFILE, PENDING, field="certifying_board")),
    Column("board_id", 64, text_parse, _in(PROFILE, PENDING, field="board_id"), ("certifying_board_id",)),
)
NAMES = tuple(column.name for column in COLUMNS)
BY_NAME = {column.name: column for column in COLUMNS}
LEARNER_ID_COLUMNS = ("external_user_id", "external_email")
# The learner's PARS data: the profile's own columns, as the file gives them.
PROFILE_COLUMNS = tuple(c.name for c in COLUMNS if c.fields_of(PROFILE) and c.name != "external_user_id")
PROFILE_FIELDS = tuple(BY_NAME[name].fields_of(PROFILE)[0] for name in PROFILE_COLUMNS)
ENROLLMENT_COLUMNS = tuple(c.name for c in COLUMNS if c.fields_of(ENROLLMENT))


# -- the row ---------------------------------------------------------------------------------------------
def _who(self) -> str:
    return self.external_user_id or self.external_email


enrollment_fields = attrgetter(*ENROLLMENT_COLUMNS)  # what every row of one enrollment must repeat

# One checked line: its number, each column's parsed value (named as the column), then what the checker
# found the row refers to. Built by the row parsers as Row(line, *values in COLUMNS order, profile).
Row = make_dataclass(
    "Row",
    [
        ("line", int),
        *[(name, Any) for name in NAMES],
        ("profile", tuple),  # the PARS columns' values, as a tuple in PROFILE_COLUMNS order
        ("course", Any, field(default=None)),  # lookups.CourseInfo
        ("learner", Any, field(default=None)),  # lookups.Learner: an existing account
        ("new_learner", int, field(default=-1)),  # else: the learner's order among this file's new learners
        ("first_of_learner", bool, field(default=False)),
        ("first_of_shell", bool, field(default=False)),
        ("enrollment", int, field(default=-1)),  # the enrollment's order among this file's enrollments
        ("first_of_enrollment", bool, field(default=False)),
        # ("create", values) or ("fill", values): what this row does to its learner's profile (check.py)
        ("profile_write", Any, field(default=None)),
    ],
    slots=True,
    namespace={
        "who": property(_who, doc="How the file names the learner."),
        "__module__": __name__,
    },
)
profile_of = attrgetter(*PROFILE_COLUMNS)


# -- what each table is written with ---------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """A table's columns, in the order the planner gives its values: `head`, the file's values, `tail`.

    The file's part is every column of COLUMNS stored in the model, in COLUMNS order; `values(row)` picks
    them from a Row. Head and tail are what the planner adds (ids, references, bookkeeping).
    """

    model: str
    head: tuple[str, ...]
    tail: tuple[str, ...]

    @cached_property
    def file_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in COLUMNS if c.fields_of(self.model))

    @cached_property
    def file_fields(self) -> tuple[str, ...]:
        return tuple(BY_NAME[name].fields_of(self.model)[0] for name in self.file_columns)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return self.head + self.file_fields + self.tail

    @cached_property
    def values(self) -> Callable[[Any], tuple]:
        getter = attrgetter(*self.file_columns)
        return getter if len(self.file_columns) > 1 else lambda row: (getter(row),)

    def index(self, column: str) -> int:
        return self.columns.index(column)


LAYOUTS: dict[str, Layout] = {
    "user": Layout(
        USER,
        head=("id", "password", "last_login", "is_superuser", "username"),
        tail=("is_staff", "is_active", "date_joined"),
    ),
    "profile": Layout(PROFILE, head=("user_id",), tail=("created_by_job_id",)),
    "course": Layout(
        COURSE,
        head=("id",),
        tail=("kind", "pars_activity_id", "certificate_enabled", "created_at", "created_by_job_id"),
    ),
    "enrollment": Layout(
        ENROLLMENT,
        head=("id", "user_id", "course_id"),
        tail=("source", "import_job_id", "created_at", "updated_at"),
    ),
    # Credit comes from the file or, in a course that completes on enrollment, from the engine: the planner
    # gives credits and credit_expiration itself, in the order of the file's part.
    "award": Layout(
        AWARD,
        head=("enrollment_id", "credit_type_id"),
        tail=("source", "import_job_id", "created_at", "updated_at"),
    ),
    "pending": Layout(
        PENDING,
        head=("import_job_id", "line", "status", "course_id", "credit_type_id"),
        tail=("source", "applied_at", "enrollment_id", "created_at", "updated_at"),
    ),
}
# Parents before children, so that databases without deferred constraints accept the order too.
ORDER = ("user", "profile", "course", "enrollment", "award", "pending")


# -- the header ------------------------------------------------------------------------------------------
_LOOKUP = {c.name: c.name for c in COLUMNS} | {alias: c.name for c in COLUMNS for alias in c.aliases}
# Spaces, hyphens and the punctuation people decorate headings with ("E-mail", "Email:", "Email*", "Course #",
# "Credits (hours)"): one underscore inside, nothing at the ends.
_SEPARATORS = re.compile(r"[\W_]+")
NEAR_MISSES_LOOKED_AT = 20  # unknown header cells compared with the known names, for F_MISSING_COLUMN's hints


def normalize_name(raw: str) -> str:
    """Drop a BOM, fold case, and turn every run of spaces, hyphens and punctuation into one underscore (none at
    the ends): "E-Mail Address:" → e_mail_address."""
    return _SEPARATORS.sub("_", raw.replace("\ufeff", "").casefold()).strip("_")


@dataclass
class Header:
    raw: list[str]
    index: dict[str, int]  # column name -> position in the row
    warnings: list[tuple[str, str, int]] = field(default_factory=list)  # (code, message, count)

    def positions(self) -> list[int]:
        """For each of COLUMNS, its position in this file's rows, or -1 when the file has no such column."""
        return [self.index.get(name, -1) for name in NAMES]


# -- column mappings (SPEC §13) ----------------------------------------------------------------------------
Mapping = dict[str, str]  # schema column -> the file's header text that holds it


def mapping_problems(mapping) -> list[str]:
    """What is wrong with a mapping as saved (the admin, the mapping step): sentences, none if it is sound."""
    if not isinstance(mapping, dict):
        return ['A mapping is an object of importer columns and file headers, e.g. {"complete": "Done"}.']
    problems = []
    chosen: dict[str, str] = {}
    for name, cell in mapping.items():
        if name not in BY_NAME:
            problems.append(f"{name!r} is not a column of the importer; the columns are: {', '.join(NAMES)}.")
        elif not isinstance(cell, str):
            problems.append(f"The file's header for {name} must be text, not {cell!r}.")
        elif cell.strip():
            key = normalize_name(cell)
            if key in chosen:
                problems.append(f"The file's column {cell!r} is chosen for both {chosen[key]} and {name}.")
            chosen[key] = name
    return problems


def _cell_find(raw: list[str], wanted: str) -> int:
    """The position of the header cell a mapping names: the same text (spaces around it aside), else the same
    normalised name; -1 when the header has no such cell."""
    text = wanted.strip()
    for position, cell in enumerate(raw):
        if cell.strip() == text:
            return position
    key = normalize_name(wanted)
    return next((position for position, cell in enumerate(raw) if normalize_name(cell) == key), -1)


def _mapped(raw: list[str], mapping: Mapping | None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The positions a mapping gives its columns, and the (column, header) pairs it names that the header lacks."""
    index: dict[str, int] = {}
    absent: list[tuple[str, str]] = []
    for name in NAMES:  # in COLUMNS order, so that findings come in a stable order
        cell = (mapping or {}).get(name)
        if not isinstance(cell, str) or not cell.strip():
            continue
        position = _cell_find(raw, cell)
        if position < 0:
            absent.append((name, cell))
        else:
            index[name] = position
    return index, absent


def _required(index, *, global_importer: bool) -> list[tuple[str, bool]]:
    """The columns a file must have, each with whether this one has it."""
    required = [
        ("external_user_id or external_email", any(c in index for c in LEARNER_ID_COLUMNS)),
        ("complete", "complete" in index),
    ]
    if global_importer:
        required.append(("external_course_id", "external_course_id" in index))
    return required


@dataclass
class HeaderMatch:
    """How a header line is read, cell by cell: what the job page's F_MISSING_COLUMN table shows."""

    cells: list[tuple[str, str | None]]  # each cell of the header, and the column it is read as (None: unknown)
    required: list[tuple[str, bool]]  # each required column (or pair of columns), and whether the file has it


def _decided(mapping: Mapping | None) -> set[str]:
    """The columns a mapping decides: read from the cell it names, or (named with "") from none. A cell named like
    one of them but not chosen by the mapping is not read as it."""
    return {name for name in (mapping or {}) if name in BY_NAME}


def header_match(raw: list[str], *, global_importer: bool, mapping: Mapping | None = None) -> HeaderMatch:
    """What header_read would make of each cell, without raising: a mapping's columns first, then names and aliases."""
    index, _ = _mapped(raw, mapping)
    by_position = {position: name for name, position in index.items()}
    decided = _decided(mapping)
    cells = []
    for position, cell in enumerate(raw):
        name = by_position.get(position)
        if name is None:
            name = _LOOKUP.get(normalize_name(cell))
            name = None if name in decided else name
            if name is not None:
                index.setdefault(name, position)
        cells.append((cell, name))
    return HeaderMatch(cells, _required(index, global_importer=global_importer))


def mapping_tidy(mapping: Mapping, raw: list[str]) -> Mapping:
    """A mapping as the mapping step saves it: the columns chosen, and "not in the file" ("") only for a column that
    the header would otherwise read by its name or an alias (where it says something)."""
    named = {_LOOKUP.get(normalize_name(cell)) for cell in raw}
    return {name: cell for name, cell in mapping.items() if cell or name in named}


SUGGEST_CUTOFF = 0.6


def _likeness(cell: str, known: str) -> float:
    """How much a (normalised) header cell looks like a (normalised) column name or alias, 0 to 1: difflib's ratio,
    or better when one's words are a run of the other's ("participant_email" and "email")."""
    if cell == known:
        return 1.0
    score = difflib.SequenceMatcher(None, cell, known).ratio()
    a, b = cell.split("_"), known.split("_")
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if any(long[i : i + len(short)] == short for i in range(len(long) - len(short) + 1)):
        score = max(score, 0.75 + 0.2 * len(short) / len(long))
    return score


def mapping_suggest(raw: list[str]) -> Mapping:
    """For each of COLUMNS, the header cell most like its name or one of its aliases ("" when none is enough
    alike): the mapping step's pre-filled choice. A cell goes to one column at most, the most alike first."""
    names = {c.name: (c.name, *c.aliases) for c in COLUMNS}
    scored = []
    for position, cell in enumerate(raw[: NEAR_MISSES_LOOKED_AT * 10]):
        normal = normalize_name(cell)[:64]
        if not normal:
            continue
        for name, known in names.items():
            score = max(_likeness(normal, k) for k in known)
            if score >= SUGGEST_CUTOFF:
                scored.append((-score, position, NAMES.index(name), name))
    suggested: Mapping = dict.fromkeys(NAMES, "")
    taken: set[int] = set()
    for _, position, _, name in sorted(scored):
        if not suggested[name] and position not in taken:
            suggested[name] = raw[position].strip()
            taken.add(position)
    return suggested


def header_read(raw: list[str], *, global_importer: bool, mapping: Mapping | None = None) -> Header:
    """Map a header line to column names, or raise FileProblem when the file cannot be read as course records.

    A mapping's columns are read from the cells it names (a cell it names that the header lacks is F_MISSING_COLUMN),
    or, named with "" ("not in the file"), from none; every other cell by its name or alias, as without one. A cell
    named like a column the mapping decides is ignored like an unknown one (W_UNKNOWN_COLUMN)."""
    index, absent = _mapped(raw, mapping)
    if absent:
        name, cell = absent[0]
        others = "; ".join(f"{n} → {c!r}" for n, c in absent[1:])
        raise FileProblem(
            Finding(
                F_MISSING_COLUMN,
                f"The column mapping reads {name} from the column {cell.strip()!r}, which this file's header (line 1) "
                f"does not have{f' (nor: {others})' if others else ''}. Choose another mapping, or map the columns "
                f"again on the import's page.",
                line=1,
                column=name,
                value=cell[:200],
            )
        )
    mapped_positions = set(index.values())
    decided = _decided(mapping)
    repaired: list[str] = []
    unknown: list[str] = []
    for position, cell in enumerate(raw):
        if position in mapped_positions:
            continue
        normal = normalize_name(cell)
        name = _LOOKUP.get(normal)
        if name is None or name in decided:  # unknown, or a column the mapping reads from another cell (or none)
            if normal:
                unknown.append(cell.strip())
            continue
        if name in index:
            first = raw[index[name]].strip()
            raise FileProblem(
                Finding(
                    F_DUPLICATE_COLUMN,
                    f"Columns '{first}' (column {index[name] + 1}) and '{cell.strip()}' (column {position + 1}) "
                    f"are both read as {name}. Delete one of them and upload again.",
                    line=1,
                    column=name,
                    value=cell,
                )
            )
        index[name] = position
        if cell != name:
            repaired.append(f"'{cell}' → {name}")

    missing = [label for label, present in _required(index, global_importer=global_importer) if not present]
    if missing:
        hints = []
        for cell in unknown[:NEAR_MISSES_LOOKED_AT]:
            close = difflib.get_close_matches(normalize_name(cell)[:64], list(_LOOKUP), n=1, cutoff=0.7)
            if close:
                hints.append(f"'{cell[:64]}' looks like {_LOOKUP[close[0]]}")
        hint = f" Near misses: {'; '.join(hints)}." if hints else ""
        raise FileProblem(
            Finding(
                F_MISSING_COLUMN,
                f"The header (line 1) has no {' and no '.join(missing)} column.{hint} Map the file's columns to the "
                f"importer's (the import's page offers it), or fix the header line and upload again.",
                line=1,
                column=missing[0],
                value=",".join(raw)[:200],
            )
        )

    header = Header(raw=raw, index=index)
    if repaired:
        header.warnings.append(
            (W_HEADER_NORMALIZED, f"Header names were repaired: {', '.join(repaired[:10])}.", len(repaired))
        )
    if unknown:
        header.warnings.append(
            (W_UNKNOWN_COLUMN, f"Ignored unknown columns: {', '.join(repr(u) for u in unknown[:10])}.", len(unknown))
        )
    return header
