"""The same rows as CSV and as an .xlsx workbook, imported side by side (SPEC §13: a workbook is another reader).

The rows of bench/generate.py (100k by default) are written once as CSV and once as an .xlsx (openpyxl,
write-only, with dates as date cells and numbers as numbers, as a spreadsheet holds them); then the real
`manage.py import_course_records FILE --course BENCH --create-accounts` imports each on a fresh catalog
(bench/run.py's), alternating, and the ratio workbook / CSV is printed.

    python bench/workbook.py [--rows 100000] [--rounds 2]

`make bench-workbook` runs it (openpyxl comes with requirements-dev.txt).
"""

import argparse
import csv
import datetime as dt
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import generate  # noqa: E402
from bench.run import DEFAULT_URL, OUT, catalog_reset, database_ensure, run_import  # noqa: E402

DATES = {"enrollment_start", "enrollment_end", "date_completed", "credit_expiration"}
NUMBERS = {"credits", "dob_month", "dob_day"}


def workbook_write(source: Path, target: Path) -> None:
    """The CSV's rows as a spreadsheet would hold them: dates as dates, numbers as numbers, the rest as text."""
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Records")
    with source.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows)
        sheet.append(header)
        kinds = [("date" if name in DATES else "number" if name in NUMBERS else "text") for name in header]
        for row in rows:
            cells = []
            for kind, value in zip(kinds, row, strict=True):
                if value and kind == "date":
                    cells.append(dt.date.fromisoformat(value))
                elif value and kind == "number":
                    cells.append(float(value) if "." in value else int(value))
                else:
                    cells.append(value)
            sheet.append(cells)
    workbook.save(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    OUT.mkdir(parents=True, exist_ok=True)
    database_ensure(url)
    existing = args.rows // 5
    csv_path, xlsx_path = OUT / f"records-{args.rows}.csv", OUT / f"records-{args.rows}.xlsx"
    if not csv_path.exists():
        generate(csv_path, args.rows, existing=existing)
    if not xlsx_path.exists():
        workbook_write(csv_path, xlsx_path)
    seconds: dict[str, list[float]] = {"csv": [], "xlsx": []}
    print(f"{args.rows:,} rows; CSV {csv_path.stat().st_size:,} bytes, xlsx {xlsx_path.stat().st_size:,} bytes")
    for round_ in range(1, args.rounds + 1):
        for kind, path in (("csv", csv_path), ("xlsx", xlsx_path)):
            catalog_reset(url, existing)
            elapsed, peak, result = run_import(url, path, "--create-accounts")
            assert result["rows"]["invalid"] == 0 and result["rows"]["total"] == args.rows, result["errors"][:3]
            seconds[kind].append(elapsed)
            rate = f"{args.rows / elapsed:8,.0f} rows/s"
            print(f"round {round_}  {kind:>4}  {elapsed:6.1f} s  {rate}  {peak / 2**20:4.0f} MB", flush=True)
    csv_median, xlsx_median = statistics.median(seconds["csv"]), statistics.median(seconds["xlsx"])
    ratio = xlsx_median / csv_median
    print(f"\nmedians: CSV {csv_median:.1f} s, xlsx {xlsx_median:.1f} s; the workbook takes {ratio:.2f}x")


if __name__ == "__main__":
    main()
