"""Stage 1, read, for workbooks (.xlsx, .xls, .ods): a sheet's rows as the text the rest of the pipeline reads.

A workbook is just another reader (SPEC §13): python-calamine streams the sheet's rows, each cell becomes
the text a person would have typed for it, and from there the rows go through the same checks as a CSV
file's. A date cell is that date (2026-03-14), a number keeps its value (1.5 stays 1.5; a whole number,
as ids are, loses the .0 a spreadsheet stores), a text cell keeps its leading zeros. A finding's line is
the sheet's row number.

`source_open` picks the reader a file needs (read.file_inspect tells what the file is).
"""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import python_calamine

from core.csv_safety import csv_unescape
from core.findings import F_NOT_CSV, F_TOO_LARGE, FileProblem, Finding

from .read import F_EMPTY, REPORT_COLUMNS, CsvSource, FileFacts

WORKBOOK_KINDS = {
    "xlsx": "an Excel workbook (.xlsx)",
    "xls": "an Excel 97-2003 workbook (.xls)",
    "ods": "an OpenDocument spreadsheet (.ods)",
}


def source_open(path: Path, facts: FileFacts, *, max_rows: int, max_columns: int, sheet: str = ""):
    """The rows of a file, whichever kind it is: a CsvSource or a WorkbookSource."""
    if facts.kind in WORKBOOK_KINDS:
        return WorkbookSource(path, facts, max_rows=max_rows, max_columns=max_columns, sheet=sheet)
    return CsvSource(path, facts, max_rows=max_rows, max_columns=max_columns)


def cell_text(value) -> str:
    """A cell as text, as a person would have typed it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: True is an int
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(timespec="seconds")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _unreadable(what: str, detail: str) -> FileProblem:
    return FileProblem(
        Finding(
            F_NOT_CSV,
            f"This file looks like {what} but cannot be read as one ({detail}). Open it in your spreadsheet program, "
            f"save it again (without a password), and upload that file.",
        )
    )


class WorkbookSource:
    """A sheet's rows, as CsvSource gives a file's: (line = the sheet's row number, cells as text)."""

    def __init__(self, path: Path, facts: FileFacts, *, max_rows: int, max_columns: int, sheet: str = ""):
        self.path = path
        self.facts = facts
        self.max_rows = max_rows
        self.delimiter = ""
        self.rows_read = 0
        self.chars = 0
        self.expected_rows = 1
        what = WORKBOOK_KINDS[facts.kind]
        try:
            workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        except python_calamine.PasswordError:
            raise FileProblem(
                Finding(
                    F_NOT_CSV,
                    f"This file is {what} protected by a password. Open it in your spreadsheet program, remove the "
                    "password (or save a copy without it), and upload that file.",
                )
            ) from None
        except Exception as exc:  # python-calamine's errors: corrupt, truncated, not a workbook after all
            raise _unreadable(what, str(exc)[:200]) from None
        try:
            worksheet = workbook.get_sheet_by_name(sheet) if sheet else workbook.get_sheet_by_index(0)
        except python_calamine.WorksheetNotFound:
            names = ", ".join(f"'{name}'" for name in workbook.sheet_names)
            raise FileProblem(
                Finding(
                    F_NOT_CSV,
                    f"The workbook has no sheet named '{sheet}'. Its sheets are: {names}. Choose one of them.",
                    value=sheet,
                )
            ) from None
        except Exception as exc:
            raise _unreadable(what, str(exc)[:200]) from None
        self.sheet = worksheet.name
        if worksheet.total_height - 1 > max_rows:
            raise FileProblem(
                Finding(
                    F_TOO_LARGE,
                    f"The sheet '{self.sheet}' has {worksheet.total_height:,} rows; one import takes at most "
                    f"{max_rows:,}. Split it into smaller files.",
                    value=str(worksheet.total_height),
                )
            )
        self._rows: Iterator[tuple[int, list]] = enumerate(worksheet.iter_rows(), start=1)
        for line, cells in self._rows:
            header = [cell_text(cell) for cell in cells]
            if any(cell.strip() for cell in header):
                self.header_line = line
                break
        else:
            raise FileProblem(Finding(F_EMPTY, f"The sheet '{self.sheet}' is empty: it has no header row."))
        while header and not header[-1].strip():
            header.pop()  # the sheet's used width may run past the last named column
        self.expected_rows = max(worksheet.total_height - self.header_line, 1)
        if len(header) > max_columns:
            raise FileProblem(
                Finding(
                    F_TOO_LARGE,
                    f"The header has {len(header):,} columns; the importer reads at most {max_columns:,}. "
                    f"Keep the course record columns (see the template) and delete the others.",
                    line=self.header_line,
                    value=str(len(header)),
                )
            )
        self.is_report = [cell.strip() for cell in header[-len(REPORT_COLUMNS) :]] == list(REPORT_COLUMNS)
        if self.is_report:
            header = [csv_unescape(cell) for cell in header[: -len(REPORT_COLUMNS)]]
        self.header = header

    def batches(self, size: int, max_chars: int) -> Iterator[list[tuple[int, list[str]]]]:
        """(the row's line in the sheet, its cells as text), up to `size` rows and about `max_chars` characters at
        a time; blank rows are skipped."""
        width = len(self.header) + (len(REPORT_COLUMNS) if self.is_report else 0)
        batch: list[tuple[int, list[str]]] = []
        batch_chars = 0
        for line, cells in self._rows:
            fields = [cell_text(cell) for cell in cells]
            if not any(fields):
                continue
            if len(fields) > width and not any(fields[width:]):
                fields = fields[:width]  # cells past the header that hold nothing
            if self.is_report:
                if len(fields) == width:
                    fields = fields[: len(self.header)]
                fields = [csv_unescape(cell) for cell in fields]
            chars = sum(map(len, fields))
            self.chars += chars
            batch_chars += chars
            batch.append((line, fields))
            if len(batch) >= size or batch_chars >= max_chars:
                self.rows_read += len(batch)
                yield batch
                batch, batch_chars = [], 0
        if batch:
            self.rows_read += len(batch)
            yield batch

    def close(self) -> None:
        self._rows = iter(())

    def __enter__(self) -> "WorkbookSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
