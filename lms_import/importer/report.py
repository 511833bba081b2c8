"""The error report: every rejected row, as the admin sent it, with line, code, column, value and message.

It is a CSV the admin opens in a spreadsheet, so every cell that a spreadsheet would run as a
formula is neutralised (csv_safe). Only the first errors are kept in memory for the job page
and the JSON output; the report on disk has all of them.
"""

import csv
import tempfile
from pathlib import Path

from core.csv_safety import csv_safe
from core.findings import Finding

from .rows import Checked

REPORT_COLUMNS = ["line", "code", "column", "value", "message"]


class ErrorReport:
    def __init__(self, header: list[str], *, keep: int):
        self.keep = keep
        self.kept: list[dict] = []
        self.count = 0
        self._file = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8-sig", newline="", suffix=".csv", prefix="errors-", delete=False
        )
        self.path = Path(self._file.name)
        self._writer = csv.writer(self._file)
        self._writer.writerow([csv_safe(c) for c in REPORT_COLUMNS + [h.strip() for h in header]])

    def add(self, checked: list[Checked]) -> None:
        for item in checked:
            if item.findings:
                for finding in item.findings:
                    self._add(finding, item.fields)

    def _add(self, finding: Finding, fields: list[str]) -> None:
        self.count += 1
        if len(self.kept) < self.keep:
            self.kept.append(finding.as_dict())
        cells = [finding.line or "", finding.code, finding.column, finding.value, finding.message, *fields]
        self._writer.writerow([csv_safe(c) for c in cells])

    def close(self) -> Path:
        self._file.close()
        return self.path

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
