"""The file's columns (SPEC §4) and the header repair that maps what admins type to them."""

import difflib
import re
from dataclasses import dataclass, field

from core.findings import (
    F_DUPLICATE_COLUMN,
    F_MISSING_COLUMN,
    W_HEADER_NORMALIZED,
    W_UNKNOWN_COLUMN,
    FileProblem,
    Finding,
)


@dataclass(frozen=True)
class Column:
    name: str
    max_length: int
    aliases: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("external_user_id", 255, ("uid", "member_id", "external_uid")),
    Column("external_email", 254, ("email", "mail", "external_mail")),
    Column("first_name", 150),
    Column("last_name", 150),
    Column("external_course_id", 128, ("course_id",)),
    Column("title", 255, ("course_title",)),
    Column("enrollment_start", 40),
    Column("enrollment_end", 40),
    Column("complete", 10),
    Column("date_completed", 40),
    Column("credit_type", 64),
    Column("credits", 20),
    Column("credit_expiration", 40),
    Column("attended", 10),
    Column("participant_category", 20),
    Column("dob_month", 2),
    Column("dob_day", 2),
    Column("licensing_state", 64),
    Column("license_id", 64, ("npi",)),
    Column("certifying_board", 128),
    Column("board_id", 64),
)
BY_NAME = {c.name: c for c in COLUMNS}
_LOOKUP = {c.name: c.name for c in COLUMNS} | {alias: c.name for c in COLUMNS for alias in c.aliases}
LEARNER_ID_COLUMNS = ("external_user_id", "external_email")

_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_name(raw: str) -> str:
    """Trim, drop a BOM, fold case, and turn inner spaces and hyphens into underscores."""
    return _SEPARATORS.sub("_", raw.replace("\ufeff", "").strip().casefold())


@dataclass
class Header:
    raw: list[str]
    index: dict[str, int]  # column name -> position in the row
    warnings: list[tuple[str, str, int]] = field(default_factory=list)  # (code, message, count)


def header_read(raw: list[str], *, global_importer: bool) -> Header:
    """Map a header line to column names, or raise FileProblem when the file cannot be read as course records."""
    index: dict[str, int] = {}
    repaired: list[str] = []
    unknown: list[str] = []
    for position, cell in enumerate(raw):
        normal = normalize_name(cell)
        name = _LOOKUP.get(normal)
        if name is None:
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

    missing = []
    if not any(c in index for c in LEARNER_ID_COLUMNS):
        missing.append("external_user_id or external_email")
    if "complete" not in index:
        missing.append("complete")
    if global_importer and "external_course_id" not in index:
        missing.append("external_course_id")
    if missing:
        hints = []
        for cell in unknown:
            close = difflib.get_close_matches(normalize_name(cell), list(_LOOKUP), n=1, cutoff=0.7)
            if close:
                hints.append(f"'{cell}' looks like {_LOOKUP[close[0]]}")
        hint = f" Near misses: {'; '.join(hints)}." if hints else ""
        raise FileProblem(
            Finding(
                F_MISSING_COLUMN,
                f"The header (line 1) has no {' and no '.join(missing)} column.{hint} Expected columns: "
                f"{', '.join(c.name for c in COLUMNS)}. Fix the header line and upload again.",
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
