"""Hostile files: each ends within seconds with its code and a clear message, no traceback, memory bounded.

The corpus runs through the real command in a subprocess (a preview, `--dry-run`), whose elapsed time and
peak resident memory are measured (wait4), not assumed.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from enrollments.models import Enrollment

from .conftest import HEADER, ROOT, csv_text, database_url, run_cli

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROW = ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]
MEMORY_BOUND = 300 * 2**20
SECONDS_BOUND = 20


def preview(path, tmp_path) -> tuple[int, dict, float, int]:
    """The command's exit code, its JSON, its seconds and its peak resident memory (bytes) for a preview of path."""
    from django.db import connection

    environment = os.environ | {"DATABASE_URL": database_url(connection.settings_dict)}
    command = [sys.executable, str(ROOT / "manage.py"), "import_course_records", str(path), "--course", "CARD101"]
    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    start = time.perf_counter()
    peak = tmp_path / "peak.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", MEASURED, str(peak), *command, "--dry-run", "--format", "json"],
            cwd=ROOT,
            env=environment,
            stdout=stdout,
            stderr=stderr,
        )
        status = process.wait()
    seconds = time.perf_counter() - start
    assert "Traceback" not in err.read_text(), err.read_text()[-2000:]
    return status, json.loads(out.read_text()), seconds, int(peak.read_text()) * 1024


# The command's own peak RSS (ru_maxrss: kilobytes on Linux). Measured by a small launcher, not by this process: a
# child forked from pytest starts with pytest's high-water mark (Linux carries it over the exec), so the figure would
# grow with whatever the suite loaded before.
MEASURED = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def corpus(tmp_path) -> dict[str, tuple]:
    """name -> (file, the code the preview ends with)."""
    files = {}

    def add(name, content: bytes | str, code):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        files[name] = (path, code)

    # 2,000,000 unknown columns (10 MB) in the header line, and a row.
    add(
        "wide-header",
        ",".join(HEADER + [f"x{n}" for n in range(2_000_000)]) + "\n" + ",".join(ROW) + "\n",
        "F_TOO_LARGE",
    )
    # One column past the limit.
    add("columns-201", csv_text([ROW + [""] * 192], HEADER + [f"extra{n}" for n in range(192)]), "F_TOO_LARGE")
    # Only a header, and a header followed by blank lines.
    add("header-only", ",".join(HEADER) + "\r\n", "F_EMPTY")
    add("header-and-blanks", ",".join(HEADER) + "\r\n\r\n,,,,,,,,\r\n", "F_EMPTY")
    # A quote that never closes, at the top of 20 MB of rows.
    rows = csv_text([ROW] * 250_000).split("\r\n", 1)[1]
    add("broken-quote", ",".join(HEADER) + '\r\n"L-1,' + ",".join(ROW[1:]) + "\r\n" + rows, "F_NOT_CSV")
    # 3,000,000 lines: refused by the line count, before any is parsed (the limit is 2,000,000 rows).
    add("too-many-lines", ",".join(HEADER) + "\n" + "\n" * 3_000_000, "F_TOO_LARGE")
    # A workbook named .csv, and random bytes.
    add("workbook", b"PK\x03\x04" + os.urandom(100_000), "F_NOT_CSV")
    add("noise", os.urandom(2_000_000), None)  # F_NOT_CSV or F_ENCODING, whichever the bytes make it
    # 40 MB of wide rows (the most columns a file may have, 200 characters in each unknown one): valid, and a
    # batch is bounded by its characters, not only by its rows.
    extra = [f"extra{n}" for n in range(200 - len(HEADER))]
    wide_rows = [[f"W-{n}", f"w{n}@example.org", *ROW[2:], *["w" * 200] * len(extra)] for n in range(1_000)]
    add("wide-rows", csv_text(wide_rows, HEADER + extra), "validated")
    return files


def test_every_hostile_file_ends_within_seconds_with_its_code_and_bounded_memory(course, tmp_path):
    for name, (path, code) in corpus(tmp_path).items():
        exit_code, result, seconds, peak = preview(path, tmp_path)

        assert seconds < SECONDS_BOUND, (name, seconds)
        if code == "validated":
            assert exit_code == 0 and result["rows"]["valid"] == 1_000, (name, result)
            continue
        failure = result["failure"] or {}
        assert exit_code == 1 and result["status"] == "failed", (name, result)
        assert failure["code"] == code if code else failure["code"] in ("F_NOT_CSV", "F_ENCODING"), (name, failure)
        assert failure["message"] and "Traceback" not in failure["message"], name
        assert 0 < peak < MEMORY_BOUND, (name, peak)
    assert not Enrollment.objects.exists()


def test_the_column_limit_is_named_and_configurable(course, write_csv, settings):
    settings.IMPORT_MAX_COLUMNS = 12
    path = write_csv([ROW + ["", "", "", ""]], header=HEADER + ["a", "b", "c", "d"])

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    failure = json.loads(out)["failure"]
    assert code == 1 and failure["code"] == "F_TOO_LARGE"
    assert "13 columns; the importer reads at most 12" in failure["message"]


def test_a_value_longer_than_the_csv_parser_takes_is_too_long_on_its_line_and_column(course, learner, write_csv):
    long_name = "M" * 200_000
    path = write_csv([ROW, [*ROW[:2], long_name, *ROW[3:]], ROW], header=HEADER)

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 1 and result["rows"] == {"total": 3, "valid": 1, "invalid": 2, "skipped": 0}
    errors = [(e["line"], e["code"], e["column"]) for e in result["errors"]]
    assert (3, "E_FIELD_TOO_LONG", "first_name") in errors
    assert "200,000" not in result["errors"][0]["value"] and len(result["errors"][0]["value"]) <= 200


def test_a_long_value_in_a_column_the_importer_ignores_is_ignored(course, learner, write_csv):
    path = write_csv([[*ROW, "n" * 150_000]], header=HEADER + ["notes"])

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0 and result["rows"]["valid"] == 1 and result["created"]["enrollments"] == 1


def test_near_misses_are_named_for_a_few_unknown_columns_only(course, write_csv):
    header = ["external_user_id", "compelte"] + [f"column_{n}" for n in range(150)]
    path = write_csv([["L-1", "1"] + [""] * 150], header=header)

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    failure = json.loads(out)["failure"]
    assert (
        code == 1 and failure["code"] == "F_MISSING_COLUMN" and "'compelte' looks like complete" in failure["message"]
    )
