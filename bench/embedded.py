"""The run command's embedded default (SQLite) against PostgreSQL, side by side.

The same file (bench/generate.py, every learner without an account) is imported by the real
`manage.py import_course_records FILE --course BENCH`, into the holding table and with
`--create-accounts`, on a fresh SQLite file (as `make run` has it: WAL, the filesystem broker) and on
a fresh PostgreSQL database, alternating, with one learner already waiting in the holding table (so
that every batch is checked against it). Prints each run and the ratio SQLite / PostgreSQL.

    DJANGO_SECRET_KEY=x python bench/embedded.py [--rows 100000] [--rounds 2]

`make bench-embedded` runs it. PostgreSQL is BENCH_DATABASE_URL's server (database lms_bench_embedded).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from bench.generate import generate  # noqa: E402

MODES = {"holding table": [], "create accounts": ["--create-accounts"]}
# The catalog bench/run.py makes (course BENCH with a required object and four credit types), and a learner
# without an account whose record waits in the holding table.
CATALOG = """
from decimal import Decimal
from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditType
from enrollments.models import PendingRecord

names = ("ama_pra_1", "ancc", "abim_moc", "acpe")
types = {name: CreditType.objects.create(machine_name=name, name=name) for name in names}
course = Course.objects.create(external_course_id="BENCH", title="Benchmark course", pars_activity_id="0000042")
CourseObject.objects.create(course=course, title="Claim credit", kind="credit_claim", required=True)
for name, (maximum, variable, increment) in {
    "ama_pra_1": ("2.00", True, "0.25"), "ancc": ("2.00", False, "0.25"),
    "abim_moc": ("2.00", True, "0.50"), "acpe": ("1.50", False, "0.25"),
}.items():
    CourseCredit.objects.create(course=course, credit_type=types[name], max_credits=Decimal(maximum),
                                variable=variable, increment=Decimal(increment))
PendingRecord.objects.create(line=2, email="waiting@example.org", course=course, complete=False)
"""


def manage(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, **kwargs)


class SQLite:
    name = "SQLite"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        template = workdir / "template"
        template.mkdir()
        manage(self._env(template), "migrate", "--noinput", "-v", "0")
        self.template = template / "db.sqlite3"

    def _env(self, var: Path) -> dict:
        env = os.environ | {"DJANGO_SETTINGS_MODULE": "lms_import.settings", "LMS_VAR_DIR": str(var)}
        env.pop("CELERY_BROKER_URL", None)
        env["DATABASE_URL"] = f"sqlite:///{var / 'db.sqlite3'}"
        return env

    def fresh(self) -> dict:
        var = Path(tempfile.mkdtemp(dir=self.workdir))
        shutil.copy(self.template, var / "db.sqlite3")
        env = self._env(var)
        manage(env, "shell", "-v", "0", "-c", CATALOG)
        return env


class PostgreSQL:
    name = "PostgreSQL"

    def __init__(self, url: str):
        parts = urlparse(url)
        self.admin = dict(host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password)
        self.url = f"{parts.scheme}://{parts.netloc}/lms_bench_embedded"
        self._sql("DROP DATABASE IF EXISTS lms_bench_embedded")
        self._sql("CREATE DATABASE lms_bench_embedded")
        manage(self._env(), "migrate", "--noinput", "-v", "0")

    def _sql(self, statement: str) -> None:
        connection = psycopg2.connect(dbname="postgres", **self.admin)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
        connection.close()

    def _env(self) -> dict:
        return os.environ | {"DJANGO_SETTINGS_MODULE": "lms_import.settings", "DATABASE_URL": self.url}

    def fresh(self) -> dict:
        env = self._env()
        manage(env, "flush", "--noinput", "-v", "0")
        manage(env, "shell", "-v", "0", "-c", CATALOG)
        return env


def run_import(env: dict, path: Path, extra: list[str]) -> tuple[float, dict]:
    command = [sys.executable, "manage.py", "import_course_records", str(path), "--course", "BENCH", "--format", "json"]
    start = time.perf_counter()
    done = subprocess.run([*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"unknown-{args.rows}.csv"
    if not path.exists():
        generate(path, args.rows, existing=0)
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lms_bench")
    seconds: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="lms-bench-embedded-") as workdir:
        databases = [SQLite(Path(workdir)), PostgreSQL(url)]
        print(f"{args.rows:,} rows, every learner without an account, one record waiting in the holding table")
        for round_ in range(1, args.rounds + 1):
            for mode, extra in MODES.items():
                for database in databases:
                    env = database.fresh()
                    elapsed, result = run_import(env, path, extra)
                    succeeded = result["status"] == "succeeded" and result["rows"]["valid"] == args.rows
                    assert succeeded, result["errors"][:3]
                    created = ", ".join(f"{k} {v:,}" for k, v in result["created"].items() if v)
                    seconds.setdefault((mode, database.name), []).append(elapsed)
                    print(f"round {round_}  {mode:>15}  {database.name:>10}  {elapsed:6.1f} s   {created}", flush=True)
    print()
    for mode in MODES:
        sqlite = statistics.median(seconds[(mode, "SQLite")])
        postgresql = statistics.median(seconds[(mode, "PostgreSQL")])
        print(f"{mode:>15}: SQLite {sqlite:.1f} s, PostgreSQL {postgresql:.1f} s, ratio {sqlite / postgresql:.2f}")


if __name__ == "__main__":
    main()
