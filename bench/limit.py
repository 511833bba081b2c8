"""The product beside the validated-import limit probe (../shared/limit/probe.py), on the probe's own file.

Each round imports the same file (gen_spec_csv.py: course CARD-101, every learner new) with the probe
(`run --strategy pipeproc --fk immediate`, on its own fresh database) and with the real
`manage.py import_course_records FILE --course CARD-101 --create-accounts` (on a fresh database with the
catalog the probe's README describes), alternating, and prints each time, the peak RSS of the product's
process tree, and the ratio probe time / product time (>= 1.0: the product is at the limit).

    python bench/limit.py [--rows 1000000] [--rounds 2] [--probe ../shared/limit]

`make bench-limit` runs it. PostgreSQL is BENCH_DATABASE_URL's server (database lms_bench_limit).
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CATALOG = """
from decimal import Decimal
from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditType

course = Course.objects.create(external_course_id="CARD-101", title="Cardiology")
CourseObject.objects.create(course=course, title="Claim credit", kind="credit_claim", required=True)
for name, variable in (("ama_pra_1", True), ("ancc", False)):
    kind = CreditType.objects.create(machine_name=name, name=name)
    CourseCredit.objects.create(course=course, credit_type=kind, max_credits=Decimal("2.00"), variable=variable,
                                increment=Decimal("0.25"))
"""


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its descendants (the product's producer is a child), in bytes."""
    total, pending = 0, [pid]
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


def timed(command: list[str], env: dict, cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, stop = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({process.returncode}):\n{output[-3000:]}")
    return seconds, peak, output


class Product:
    def __init__(self, url: str):
        parts = urlparse(url)
        self.admin = dict(host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password)
        self.env = os.environ | {
            "DJANGO_SETTINGS_MODULE": "lms_import.settings",
            "DATABASE_URL": f"{parts.scheme}://{parts.netloc}/lms_bench_limit",
        }

    def fresh(self) -> None:
        connection = psycopg2.connect(dbname="postgres", **self.admin)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS lms_bench_limit")
            cursor.execute("CREATE DATABASE lms_bench_limit")
        connection.close()
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        subprocess.run([*manage, "shell", "-v", "0", "-c", CATALOG], cwd=ROOT, env=self.env, check=True)
        subprocess.run(
            ["psql", "-q", "-c", "VACUUM ANALYZE"],
            env=self.env | {"PGDATABASE": "lms_bench_limit"},
            check=False,
            capture_output=True,
        )

    def run(self, path: Path) -> tuple[float, int]:
        command = [sys.executable, "manage.py", "import_course_records", str(path), "--course", "CARD-101"]
        seconds, peak, _ = timed([*command, "--create-accounts", "--format", "json"], self.env, ROOT)
        return seconds, peak


class Probe:
    def __init__(self, directory: Path):
        self.directory = directory

    def fresh(self) -> None:
        subprocess.run([sys.executable, "probe.py", "setup"], cwd=self.directory, check=True, capture_output=True)

    def run(self, path: Path) -> tuple[float, int]:
        command = [sys.executable, "probe.py", "run", str(path), "--strategy", "pipeproc", "--fk", "immediate"]
        seconds, peak, _ = timed(command, os.environ, self.directory)
        return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--probe", type=Path, default=ROOT.parent / "shared" / "limit")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"probe-{args.rows}.csv"
    if not path.exists():
        subprocess.run([sys.executable, str(args.probe / "gen_spec_csv.py"), str(args.rows), str(path)], check=True)
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lms_bench")
    runners = {"probe": Probe(args.probe), "product": Product(url)}
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    print(f"{args.rows:,} rows ({path.name}), alternating; RSS of the whole process tree")
    for round_ in range(1, args.rounds + 1):
        for name, runner in runners.items():
            runner.fresh()
            elapsed, peak = runner.run(path)
            seconds[name].append(elapsed)
            rate = f"{args.rows / elapsed:9,.0f} rows/s"
            print(f"round {round_}  {name:>7}  {elapsed:6.1f} s  {rate}  {peak / 2**20:5.0f} MB", flush=True)
    probe, product = statistics.median(seconds["probe"]), statistics.median(seconds["product"])
    print(f"\nmedians: probe {probe:.1f} s, product {product:.1f} s; product at {probe / product:.2f}x the limit")


if __name__ == "__main__":
    main()
