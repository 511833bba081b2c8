"""Import throughput and peak memory of `manage.py import_course_records` on PostgreSQL.

For each size: a fresh catalog (a course with a required course object and four credit types),
existing learners with accounts (created by COPY, not timed), a generated file
(bench/generate.py), then the real command in a subprocess, timed end to end (process start to
exit: Django start-up, reading, every check, writing, commit) with its peak RSS from wait4.
The database is checked afterwards against the command's own counts.

    export DJANGO_SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/lms_bench
    python bench/run.py [--sizes 100000 1000000]

Prints one line per run; `make bench` runs it.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from bench.generate import CREDITS, generate, learner_email, learner_id  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lms_bench"


def database_ensure(url: str) -> None:
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cursor.fetchone():
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, check=True, env=_env(url))


def _env(url: str) -> dict:
    return os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "lms_import.settings"}


def catalog_reset(url: str, existing: int) -> None:
    """Empty every table the import writes, then the course and `existing` learners with accounts."""
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "TRUNCATE credits_creditaward, enrollments_enrollment, enrollments_pendingrecord, "
            "enrollments_learnerprofile, courses_coursecredit, courses_courseobject, lms_import_auditevent, "
            "lms_import_importjob, courses_course, credits_credittype, auth_user CASCADE"
        )
        cursor.execute("UPDATE lms_import_importlock SET token = '', job_id = NULL, holder_id = NULL")
        for name in CREDITS:
            cursor.execute(
                "INSERT INTO credits_credittype (machine_name, name, unit) VALUES (%s, %s, 'credits')", [name, name]
            )
        cursor.execute(
            "INSERT INTO courses_course (external_course_id, title, kind, pars_activity_id, certificate_enabled, "
            "created_at) VALUES ('BENCH', 'Benchmark course', 'course', '0000042', true, now()) RETURNING id"
        )
        course_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO courses_courseobject (course_id, title, kind, required, position) "
            "VALUES (%s, 'Claim credit', 'credit_claim', true, 0)",
            [course_id],
        )
        offers = {"ama_pra_1": ("2.00", True, "0.25"), "ancc": ("2.00", False, "0.25")}
        offers |= {"abim_moc": ("2.00", True, "0.50"), "acpe": ("1.50", False, "0.25")}
        for name, (maximum, variable, increment) in offers.items():
            cursor.execute(
                "INSERT INTO courses_coursecredit (course_id, credit_type_id, max_credits, variable, increment) "
                "SELECT %s, id, %s, %s, %s FROM credits_credittype WHERE machine_name = %s",
                [course_id, maximum, variable, increment, name],
            )
        users = io.StringIO(
            "".join(
                f"{n + 1}\t!unusable\t{learner_email(n)}\t{learner_email(n)}\tExisting\tLearner\tf\tf\tt\t2020-01-01\n"
                for n in range(existing)
            )
        )
        cursor.copy_expert(
            "COPY auth_user (id, password, username, email, first_name, last_name, is_superuser, is_staff, "
            "is_active, date_joined) FROM STDIN",
            users,
        )
        profiles = io.StringIO("".join(f"{n + 1}\t{learner_id(n)}\t\t\t\t\t\t\n" for n in range(existing)))
        cursor.copy_expert(
            "COPY enrollments_learnerprofile (user_id, external_user_id, dob_month, dob_day, licensing_state, "
            "license_id, certifying_board, board_id) FROM STDIN",
            profiles,
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [existing + 1])
        cursor.execute("ANALYZE")
    conn.close()


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (the apply's producer is a child), in bytes."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    pending.extend(int(child) for child in f.read().split())
        except (OSError, StopIteration):
            continue
    return total


def run_import(url: str, path: Path, *extra: str, course: str | None = "BENCH") -> tuple[float, int, dict]:
    """Run the command; return (seconds, peak RSS of the command's whole process tree, its JSON output).

    With course=None the options in `extra` choose the importer (`--global`)."""
    command = [sys.executable, "manage.py", "import_course_records", str(path)]
    command += ["--course", course] if course else []
    command += ["--format", "json", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, _tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"import failed ({process.returncode}): {stdout[-2000:]} {stderr[-2000:]}")
    return elapsed, peak, json.loads(stdout)


def database_counts(url: str) -> dict:
    conn = psycopg2.connect(url)
    with conn.cursor() as cursor:
        counts = {}
        for table in ("enrollments_enrollment", "credits_creditaward", "enrollments_pendingrecord", "auth_user"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    conn.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description="Import throughput and peak RSS on PostgreSQL.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--mode", choices=["create-accounts", "pending", "dry-run"], default="create-accounts")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    OUT.mkdir(parents=True, exist_ok=True)
    database_ensure(url)
    print(f"{'rows':>9} {'mode':>16} {'seconds':>8} {'rows/s':>9} {'peak RSS':>9}  created  (RSS: all processes)")
    for size in args.sizes:
        existing = size // 5
        path = OUT / f"records-{size}.csv"
        if not path.exists():
            generate(path, size, existing=existing)
        catalog_reset(url, existing)
        before = database_counts(url)
        extra = {"create-accounts": ["--create-accounts"], "pending": [], "dry-run": ["--dry-run"]}[args.mode]
        seconds, rss, result = run_import(url, path, *extra)
        after = database_counts(url)
        created = result["created"]
        if args.mode != "dry-run":
            assert after["enrollments_enrollment"] - before["enrollments_enrollment"] == created["enrollments"]
            assert after["credits_creditaward"] - before["credits_creditaward"] == created["credits"]
            assert after["auth_user"] - before["auth_user"] == created["accounts"]
        assert result["rows"]["total"] == size and result["rows"]["invalid"] == 0, result["errors"][:3]
        summary = ", ".join(f"{k} {v:,}" for k, v in created.items() if v)
        print(f"{size:>9,} {args.mode:>16} {seconds:>8.1f} {size / seconds:>9,.0f} {rss / 2**20:>7.0f} MB  {summary}")


if __name__ == "__main__":
    main()
