"""Is the import linear in its work? rows/s of other file shapes and of a larger file, beside the main case.

Issue 12 asks that rows/s at 3M rows stay within 15% of rows/s at 100k, and that files of other shapes
stay within 25% of the main case (the `make bench` file: a fifth of the learners have accounts, the
rest are new, `--create-accounts`). The shapes, each on a fresh catalog (bench/run.py's):

    main       the main case
    existing   every learner already has an account: profiles are filled, no account is created
    unknown    no learner has an account, no --create-accounts: every row goes to the holding table
    global     the global importer, 1,000 course ids the site does not have: 1,000 shells are created

The shapes are run in turn, round after round, so that the machine's drift hits each alike; the
figure to read is each shape's rows/s as a ratio to the main case's in the same round.

    export DJANGO_SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/lms_bench
    python bench/shapes.py [--rows 1000000] [--rounds 2] [--shapes main existing unknown global]
    python bench/shapes.py --linearity [--rows 100000 --large 3000000]

A 3M-row file (395 MB) is beyond the default IMPORT_MAX_UPLOAD_BYTES and IMPORT_MAX_ROWS; --linearity raises
both for its own runs (limits, not speed, are what they set).
"""

import argparse
import csv
import os
import statistics
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import generate  # noqa: E402
from bench.run import DEFAULT_URL, OUT, catalog_reset, database_ensure, run_import  # noqa: E402

SHELLS = 1_000


def globalise(source: Path, target: Path) -> None:
    """The main file for the global importer: each enrollment's course one of SHELLS unknown ids, with a title."""
    with source.open(newline="", encoding="utf-8") as f, target.open("w", newline="", encoding="utf-8") as out:
        rows = csv.reader(f)
        writer = csv.writer(out)
        writer.writerow(["external_course_id", "title", *next(rows)])
        for row in rows:
            shell = zlib.crc32(row[0].encode()) % SHELLS  # one learner's rows stay in one course
            writer.writerow([f"SHELL{shell:04d}", f"Legacy course {shell}", *row])


def shape_file(shape: str, rows: int) -> tuple[Path, int, list[str]]:
    """(file, learners with accounts to create before the run, the command's options) for a shape."""
    main = OUT / f"records-{rows}.csv"
    if not main.exists():
        generate(main, rows, existing=rows // 5)
    if shape == "main":
        return main, rows // 5, ["--create-accounts"]
    if shape == "existing":
        path = OUT / f"records-{rows}-existing.csv"
        if not path.exists():
            generate(path, rows, existing=rows, existing_share=1.0)
        return path, rows, ["--create-accounts"]
    if shape == "unknown":
        path = OUT / f"records-{rows}-unknown.csv"
        if not path.exists():
            generate(path, rows, existing=0, existing_share=0.0)
        return path, 0, []
    path = OUT / f"records-{rows}-global.csv"
    if not path.exists():
        globalise(main, path)
    return path, rows // 5, ["--create-accounts", "--global"]


def run_shape(url: str, shape: str, rows: int) -> tuple[float, int, dict]:
    path, existing, options = shape_file(shape, rows)
    catalog_reset(url, existing)
    return run_import(url, path, *options, course=None if "--global" in options else "BENCH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shapes", nargs="+", default=["main", "existing", "unknown", "global"])
    parser.add_argument("--linearity", action="store_true", help="the main case at --rows and at --large")
    parser.add_argument("--large", type=int, default=3_000_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if args.linearity:
        os.environ.setdefault("IMPORT_MAX_UPLOAD_BYTES", str(2**31))
        os.environ.setdefault("IMPORT_MAX_ROWS", str(max(args.rows, args.large) + 1))
    OUT.mkdir(parents=True, exist_ok=True)
    database_ensure(url)
    runs = [("main", args.rows), ("main", args.large)] if args.linearity else [(s, args.rows) for s in args.shapes]
    speeds: dict[tuple[str, int], list[float]] = {}
    print(f"{'round':>5} {'shape':>9} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS':>9}  created")
    for round_ in range(1, args.rounds + 1):
        for shape, rows in runs:
            seconds, rss, result = run_shape(url, shape, rows)
            assert result["rows"]["total"] == rows and result["rows"]["invalid"] == 0, result["errors"][:3]
            speeds.setdefault((shape, rows), []).append(rows / seconds)
            created = ", ".join(f"{k} {v:,}" for k, v in result["created"].items() if v)
            figures = f"{seconds:>8.1f} {rows / seconds:>9,.0f} {rss / 2**20:>7.0f} MB"
            print(f"{round_:>5} {shape:>9} {rows:>10,} {figures}  {created}")
    reference = statistics.median(speeds[runs[0]])
    print("\nmedian rows/s, as a ratio to the first line:")
    for key, values in speeds.items():
        median = statistics.median(values)
        print(f"  {key[0]:>9} {key[1]:>10,}  {median:>9,.0f} rows/s  {median / reference:5.2f}x")


if __name__ == "__main__":
    main()
