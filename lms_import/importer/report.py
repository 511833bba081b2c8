"""The error report: every rejected row as the admin sent it, then why, ready to be fixed and uploaded again.

One line per rejected row: its cells first, in the file's own columns, then `_line` (its line in the file),
`_codes` and `_messages` (all of its findings). A spreadsheet runs a cell starting with = + - @ as a formula,
so such a cell (and one that starts with an apostrophe) gets a leading apostrophe; when the report comes back
(its last columns are the three above), the reader takes the three columns off and each cell's apostrophe
away (read.CsvSource), so the fixed rows import as they were meant. Only the first findings are kept in
memory, for the job page and the JSON output; the report on disk has all of them.
"""

import csv
import tempfile
from pathlib import Path

from core.csv_safety import csv_safe_reversible as report_cell

from .read import REPORT_COLUMNS
from .rows import Checked

MESSAGES_CHARS = 600  # of a row's messages; its codes are all there


class ErrorReport:
    def __init__(self, header: list[str], *, keep: int):
        self.keep = keep
        self.width = len(header)
        self.kept: list[dict] = []
        self.count = 0
        self._file = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8-sig", newline="", suffix=".csv", prefix="errors-", delete=False
        )
        self.path = Path(self._file.name)
        self._writer = csv.writer(self._file)
        self._writer.writerow([report_cell(cell) for cell in header] + list(REPORT_COLUMNS))

    def add(self, checked: list[Checked]) -> None:
        for item in checked:
            if item.findings:
                self._add(item)

    def _add(self, item: Checked) -> None:
        findings = item.findings
        self.count += len(findings)
        room = self.keep - len(self.kept)
        if room > 0:
            self.kept += [finding.as_dict() for finding in findings[:room]]
        cells = [report_cell(cell) for cell in item.fields]
        cells += [""] * (self.width - len(cells))  # a short row keeps its diagnosis in the diagnosis columns
        messages = " | ".join(f"{f.column}: {f.message}" if f.column else f.message for f in findings)
        if len(messages) > MESSAGES_CHARS:
            messages = messages[: MESSAGES_CHARS - 1] + "…"
        codes = "; ".join(f.code for f in findings)
        self._writer.writerow([*cells, item.line, codes, report_cell(messages)])

    def close(self) -> Path:
        self._file.close()
        return self.path

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
