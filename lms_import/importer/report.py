"""The error report: every rejected row as the admin sent it, then why, ready to be fixed and uploaded again.

One line per rejected row: its cells first, in the file's own columns, then `_line` (its line in the file),
`_codes` and `_messages` (all of its findings). A spreadsheet runs a cell starting with = + - @ as a formula,
so such a cell (and one that starts with an apostrophe) gets a leading apostrophe; when the report comes back
(its last columns are the three above), the reader takes the three columns off and each cell's apostrophe
away (read.CsvSource), so the fixed rows import as they were meant. Only the first findings are kept in
memory, for the job page and the JSON output; the report on disk has all of them.

Every finding is also counted by (code, column, value), with its first line and message: the job page's summary
("27,887 × E_CREDIT_TYPE_NOT_OFFERED, credit_type = acpe"). Distinct values are counted up to GROUP_BUDGET, so
that memory stays bounded whatever the file; the findings of a value met after that are counted together, per
code and column, as "other values".
"""

import csv
import tempfile
from pathlib import Path

from core.csv_safety import csv_safe_reversible as report_cell
from core.findings import Finding, visible

from .read import REPORT_COLUMNS
from .rows import Checked

MESSAGES_CHARS = 600  # of a row's messages; its codes are all there
GROUP_BUDGET = 5000  # distinct (code, column, value) counted one by one
GROUP_VALUE_CHARS = 200
OTHER = None  # the value of the group of values met beyond the budget


class ErrorReport:
    def __init__(self, header: list[str], *, keep: int):
        self.keep = keep
        self.width = len(header)
        self.kept: list[dict] = []
        self.count = 0
        # (code, column, value or OTHER) -> [count, first line, first message]
        self.groups: dict[tuple[str, str, str | None], list] = {}
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
        for finding in findings:
            self._count(finding)
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

    def _count(self, finding: Finding) -> None:
        key = (finding.code, finding.column or "", visible(finding.value or "")[:GROUP_VALUE_CHARS])
        group = self.groups.get(key)
        if group is None and len(self.groups) >= GROUP_BUDGET:
            key = (finding.code, finding.column or "", OTHER)
            group = self.groups.get(key)
        if group is None:
            self.groups[key] = [1, finding.line, finding.message]
        else:
            group[0] += 1

    def group_list(self) -> list[dict]:
        """The counted groups as plain values (what the job keeps: lms_import.models.FindingGroup)."""
        return [
            {"code": code, "column": column, "value": value, "count": count, "line": line, "message": message}
            for (code, column, value), (count, line, message) in self.groups.items()
        ]

    def close(self) -> Path:
        self._file.close()
        return self.path

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
