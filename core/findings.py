"""Findings: what the checker says about a file or a row.

Bad rows are findings, not exceptions (a file can have thousands); exceptions are kept for
what stops the whole job. Every finding has a stable code, the line (header = line 1), the
column, the value and a sentence a site admin can act on.
"""

import re
from dataclasses import dataclass

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# File-level codes: nothing is imported.
F_EMPTY = "F_EMPTY"
F_ENCODING = "F_ENCODING"
F_NOT_CSV = "F_NOT_CSV"
F_MISSING_COLUMN = "F_MISSING_COLUMN"
F_DUPLICATE_COLUMN = "F_DUPLICATE_COLUMN"
F_TOO_LARGE = "F_TOO_LARGE"
F_COURSE_REQUIRED = "F_COURSE_REQUIRED"
F_LOCKED = "F_LOCKED"

# Row-level codes.
E_LEARNER_ID_MISSING = "E_LEARNER_ID_MISSING"
E_EMAIL_INVALID = "E_EMAIL_INVALID"
E_COURSE_MISSING = "E_COURSE_MISSING"
E_COURSE_MISMATCH = "E_COURSE_MISMATCH"
E_TITLE_MISSING = "E_TITLE_MISSING"
E_COMPLETE_INVALID = "E_COMPLETE_INVALID"
E_DATE_INVALID = "E_DATE_INVALID"
E_DATE_REQUIRED = "E_DATE_REQUIRED"
E_DATE_FUTURE = "E_DATE_FUTURE"
E_DATE_ORDER = "E_DATE_ORDER"
E_CREDIT_ON_INCOMPLETE = "E_CREDIT_ON_INCOMPLETE"
E_CREDIT_TYPE_MISSING = "E_CREDIT_TYPE_MISSING"
E_CREDITS_MISSING = "E_CREDITS_MISSING"
E_CREDIT_TYPE_UNKNOWN = "E_CREDIT_TYPE_UNKNOWN"
E_CREDIT_TYPE_NOT_OFFERED = "E_CREDIT_TYPE_NOT_OFFERED"
E_CREDITS_INVALID = "E_CREDITS_INVALID"
E_CREDITS_OVER_MAX = "E_CREDITS_OVER_MAX"
E_CREDITS_INCREMENT = "E_CREDITS_INCREMENT"
E_CREDITS_NOT_VARIABLE = "E_CREDITS_NOT_VARIABLE"
E_DUPLICATE_CREDIT_TYPE = "E_DUPLICATE_CREDIT_TYPE"
E_INCONSISTENT_ROWS = "E_INCONSISTENT_ROWS"
E_ALREADY_ENROLLED = "E_ALREADY_ENROLLED"
E_CREDIT_EXISTS = "E_CREDIT_EXISTS"
E_ALREADY_PENDING = "E_ALREADY_PENDING"
E_FIELD_TOO_LONG = "E_FIELD_TOO_LONG"
E_CONTROL_CHARACTER = "E_CONTROL_CHARACTER"
E_COLUMN_COUNT = "E_COLUMN_COUNT"
E_VALUE_INVALID = "E_VALUE_INVALID"

# Warnings: reported once per file with a count; only W_AUTO_COMPLETE blocks (until acknowledged).
W_HEADER_NORMALIZED = "W_HEADER_NORMALIZED"
W_UNKNOWN_COLUMN = "W_UNKNOWN_COLUMN"
W_ENCODING_GUESSED = "W_ENCODING_GUESSED"
W_PENDING_LEARNERS = "W_PENDING_LEARNERS"
W_SHELLS_CREATED = "W_SHELLS_CREATED"
W_LEGACY_NOT_IN_PARS = "W_LEGACY_NOT_IN_PARS"
W_PROFILE_CONFLICT = "W_PROFILE_CONFLICT"
W_ALREADY_IMPORTED = "W_ALREADY_IMPORTED"
W_AUTO_COMPLETE = "W_AUTO_COMPLETE"

# What each code means, for the preview's "explanation" and the README's table.
EXPLANATIONS = {
    W_HEADER_NORMALIZED: "Some header names had extra spaces, capitals, hyphens or a known alias; they were read as "
    "the standard column names. Nothing is lost.",
    W_UNKNOWN_COLUMN: "Columns the importer does not know are ignored. Check for a misspelt column name.",
    W_ENCODING_GUESSED: "The file is not UTF-8, so it was read as Windows-1252 (Excel's plain 'CSV'). Check that "
    "accented names look right in the preview; saving as 'CSV UTF-8' avoids the guess.",
    W_PENDING_LEARNERS: "These rows name learners who have no account yet. They are kept in the holding table and "
    "applied automatically when an account with that e-mail or external id is created.",
    W_SHELLS_CREATED: "The global importer creates a course shell for every unknown course id. Shells hold records "
    "only: no course objects, no certificates, not in PARS.",
    W_LEGACY_NOT_IN_PARS: "Records imported with the global (legacy) importer are never included in PARS reports. "
    "To include them, use the course-level importer.",
    W_PROFILE_CONFLICT: "The file's learner data (date of birth, license, board) differs from what the learner's "
    "profile already has. The profile is kept as it is; edit it in the admin if the file is right.",
    W_ALREADY_IMPORTED: "A file with exactly the same content was imported before. Rows already imported are "
    "refused as already enrolled; make sure this is not a repeat upload.",
    W_AUTO_COMPLETE: "The course has no required course object, so the LMS completes every new enrollment at once "
    "and gives it all available credit, whatever the file says. Add a required course object (for example a "
    "credit claim) to the course first, or acknowledge that this is what you want.",
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str
    line: int | None = None
    column: str = ""
    value: str = ""

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "code": self.code,
            "column": self.column,
            "value": visible(self.value),
            "message": self.message,
        }


class FileProblem(Exception):
    """A problem with the whole file: nothing can be imported from it."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def visible(text: str) -> str:
    """Control characters (NUL above all, which PostgreSQL text cannot hold) written as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text) if text else text


def show(value: str, limit: int = 60) -> str:
    """A value as it should appear inside a message: quoted, control characters made visible, cut short."""
    visible = value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
    if len(visible) > limit:
        visible = visible[: limit - 1] + "…"
    return f"'{visible}'"
