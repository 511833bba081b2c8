"""One engine, one truth: every path an import can take gives the same findings and writes the same records.

Generated files (tests/differential.py) that hit every row-level code of SPEC §5 run through the fast
and the reference rules (IMPORT_REFERENCE_RULES), on PostgreSQL with and without the producer process
(IMPORT_PRODUCER_PROCESS) and on SQLite (a subprocess, as the zero-setup default runs), as a preview,
an apply that skips invalid rows and an apply that refuses them, with default and tiny batches
(IMPORT_BATCH_ROWS). Each run starts from the same catalog and is compared with one baseline:
PostgreSQL, fast rules, producer process, default batches.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from .conftest import ROOT
from .differential import (
    FOCUSED,
    MODES,
    ROW_CODES,
    ROW_WARNINGS,
    csv_bytes,
    run_and_snapshot,
    scenario_build,
)

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIOS = {name: scenario_build(name) for name in ("course", "global")}
RULES = ("fast", "reference")
PROCESSES = ("producer", "one")
MAX_STORED_ERRORS = 100_000  # every finding on the job, none only in the report


@dataclass(frozen=True)
class Route:
    """The knobs that choose a path through the importer (on SQLite only the one-process path exists)."""

    rules: str = "fast"
    process: str = "producer"
    batch: int | None = None  # None: the default batch size

    def __str__(self) -> str:
        return f"{self.rules}-{self.process}-{'b' + str(self.batch) if self.batch else 'default'}"

    def settings(self) -> dict:
        values = {
            "IMPORT_REFERENCE_RULES": self.rules == "reference",
            "IMPORT_PRODUCER_PROCESS": self.process == "producer",
            "IMPORT_MAX_STORED_ERRORS": MAX_STORED_ERRORS,
        }
        if self.batch:
            values["IMPORT_BATCH_ROWS"] = self.batch
        return values

    def environment(self) -> dict:
        values = {
            "IMPORT_REFERENCE_RULES": "1" if self.rules == "reference" else "0",
            "IMPORT_MAX_STORED_ERRORS": str(MAX_STORED_ERRORS),
        }
        if self.batch:
            values["IMPORT_BATCH_ROWS"] = str(self.batch)
        return values


BASELINE = Route()


def plain(snapshot: dict) -> dict:
    """As JSON has it (lists, not tuples), so that in-process and subprocess snapshots compare."""
    return json.loads(json.dumps(snapshot, ensure_ascii=False))


def postgresql_run(options: dict, path: Path, mode: str, route: Route, **overrides) -> dict:
    with override_settings(**route.settings(), **overrides):
        return plain(run_and_snapshot(options=options, path=path, mode=mode))


def database_empty() -> None:
    """Between two runs in one test: the next run builds its catalog on an empty database."""
    call_command("flush", interactive=False, verbosity=0)


_baselines: dict[tuple[str, str], dict] = {}


def baseline(name: str, mode: str, tmp_path: Path) -> dict:
    """The baseline run of a scenario and mode, made once per session (and the database emptied after it)."""
    key = (name, mode)
    if key not in _baselines:
        scenario = SCENARIOS[name]
        _baselines[key] = postgresql_run(scenario.options, scenario.write(tmp_path / f"{name}.csv"), mode, BASELINE)
        database_empty()
    return _baselines[key]


# -- comparing -----------------------------------------------------------------------------------------------
ORDER = ("job", "findings", "warnings", "report", "records", "before")  # the job first: it says why


def differences(actual, expected, where: str = "") -> list[str]:
    """Readable differences between two snapshots: per key, and per item for lists of records."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        found = []
        for key in sorted(set(actual) | set(expected), key=lambda k: (ORDER.index(k) if k in ORDER else 99, k)):
            if key not in actual or key not in expected:
                found.append(f"{where}.{key}: only {'here' if key in actual else 'in the baseline'}")
            else:
                found += differences(actual[key], expected[key], f"{where}.{key}")
        return found
    if actual == expected:
        return []
    if isinstance(actual, list) and isinstance(expected, list):
        mine = [json.dumps(item, ensure_ascii=False, sort_keys=True) for item in actual]
        theirs = [json.dumps(item, ensure_ascii=False, sort_keys=True) for item in expected]
        only_mine = [item for item in mine if item not in theirs]
        only_theirs = [item for item in theirs if item not in mine]
        if not only_mine and not only_theirs:
            return [f"{where}: the same {len(mine)} items in another order (or repeated differently)"]
        lines = [f"{where}: {len(only_mine)} items only here, {len(only_theirs)} only in the baseline"]
        lines += [f"    here:     {item[:300]}" for item in only_mine[:4]]
        lines += [f"    baseline: {item[:300]}" for item in only_theirs[:4]]
        return lines
    return [f"{where}: {actual!r:.400} here, {expected!r:.400} in the baseline"]


def assert_same(actual: dict, expected: dict, label: str) -> None:
    if "error" in actual:
        pytest.fail(f"{label} raised:\n{actual['error']}")
    found = differences(actual, expected)
    if found:
        pytest.fail(f"{label} differs from the baseline (PostgreSQL, {BASELINE}):\n" + "\n".join(found[:60]))


COUNTS = (
    "rows_total",
    "rows_valid",
    "rows_invalid",
    "created_enrollments",
    "created_credits",
    "created_pending",
    "created_accounts",
    "created_shells",
    "auto_completed",
    "error_count",
)


# -- the baseline describes what the product promises ---------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", SCENARIOS)
def test_baseline_preview_and_applies_agree(name, tmp_path):
    preview, skip, refuse = (baseline(name, mode, tmp_path) for mode in MODES)

    assert preview["job"]["status"] == "validated" and not preview["job"]["failure_code"], preview["job"]
    assert skip["job"]["status"] == "succeeded", skip["job"]
    assert refuse["job"]["status"] == "validated" and refuse["job"]["failure_code"] == "ROW_ERRORS", refuse["job"]
    for run in (skip, refuse):
        assert run["findings"] == preview["findings"]
        assert run["warnings"] == preview["warnings"]
        assert run["report"] == preview["report"]
    # The preview's numbers are the import's; the refused apply wrote nothing, and says so.
    assert {c: skip["job"][c] for c in COUNTS} == {c: preview["job"][c] for c in COUNTS}
    assert skip["job"]["rows_skipped"] == skip["job"]["rows_invalid"] > 0
    assert {c: refuse["job"][c] for c in COUNTS if c.startswith("created_")} == dict.fromkeys(
        [c for c in COUNTS if c.startswith("created_")], 0
    )
    assert preview["records"] == preview["before"] and refuse["records"] == refuse["before"]
    assert skip["before"] == preview["before"]
    # Every finding is on the job (none capped) and in the error report: one line per rejected row, its codes.
    assert preview["job"]["error_count"] == len(preview["findings"])
    by_line: dict[str, list[str]] = {}
    for line, code, *_ in preview["findings"]:
        by_line.setdefault(str(line), []).append(code)
    assert [(row[-3], row[-2].split("; ")) for row in preview["report"][1:]] == list(by_line.items())
    # Many valid rows among the invalid ones.
    assert preview["job"]["rows_valid"] >= preview["job"]["rows_invalid"]

    # What the apply says it created is what the database holds.
    records, job = skip["records"], skip["job"]
    assert job["created_enrollments"] == sum(e["job"] == "this job" for e in records["enrollments"])
    assert job["created_credits"] == sum(a["job"] == "this job" for a in records["awards"])
    assert job["created_pending"] == sum(p["job"] == "this job" for p in records["pending"])
    assert job["created_shells"] == sum(c["created_by"] == "this job" for c in records["courses"])
    created = [u for u in records["users"] if u["created_by"] == "this job"]
    assert job["created_accounts"] == len(created)
    assert not any(u["usable_password"] for u in created)
    assert len({u["username"] for u in records["users"]}) == len(records["users"])


@pytest.mark.slow
def test_the_files_hit_every_row_level_code_and_row_warning(tmp_path):
    codes = {finding[1] for name in SCENARIOS for finding in baseline(name, "preview", tmp_path)["findings"]}
    warnings = {warning[0] for name in SCENARIOS for warning in baseline(name, "preview", tmp_path)["warnings"]}

    assert sorted(set(ROW_CODES) - codes) == []
    assert sorted(set(ROW_WARNINGS) - warnings) == []
    global_ = baseline("global", "apply_skip", tmp_path)["job"]
    assert global_["created_accounts"] > 20 and global_["created_shells"] >= 4 and global_["auto_completed"] > 0
    assert baseline("course", "apply_skip", tmp_path)["job"]["created_pending"] > 20


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_files_spread_the_rows_of_one_enrollment_over_batches(name):
    """With 7-row batches, many enrollments have rows in different batches (the cross-batch state is exercised),
    and the two learners whose usernames clash are far apart."""
    scenario = SCENARIOS[name]
    ext, email, course = (
        scenario.columns.index(n) for n in ("external_user_id", "external_email", "external_course_id")
    )
    rows = [row for row in scenario.rows if any(row) and len(row) == len(scenario.header)]
    batches: dict[tuple, set[int]] = {}
    for position, row in enumerate(rows):
        key = (row[ext].strip() or row[email].strip().lower(), row[course].strip() if name == "global" else "")
        batches.setdefault(key, set()).add(position // 7)
    assert sum(len(seen) > 1 for seen in batches.values()) >= 15
    if name == "global":
        lines = [i for i, row in enumerate(rows) if "x@example.org" in (row[ext], row[email].strip().lower())]
        assert len(lines) == 2 and lines[1] - lines[0] > len(rows) // 2


# -- PostgreSQL: fast and reference rules, producer and one process, preview and both applies, batch sizes -----
PG_RUNS = [
    *[("preview", Route(r, p, b)) for r in RULES for p in PROCESSES for b in (None, 1)],
    *[("apply_skip", Route(r, p, b)) for r in RULES for p in PROCESSES for b in (None, 1, 7)],
    *[("apply_noskip", Route(r, p, b)) for r in RULES for p in PROCESSES for b in (None, 1)],
]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "route"), PG_RUNS, ids=[f"{mode}-{route}" for mode, route in PG_RUNS])
@pytest.mark.parametrize("name", SCENARIOS)
def test_postgresql_path_agrees_with_the_baseline(name, mode, route, tmp_path):
    expected = baseline(name, mode, tmp_path)
    if route == BASELINE:
        return  # the baseline itself: test_baseline_preview_and_applies_agree
    scenario = SCENARIOS[name]
    actual = postgresql_run(scenario.options, scenario.write(tmp_path / f"{name}-run.csv"), mode, route)

    assert_same(actual, expected, f"PostgreSQL {route} {name} {mode}")


# -- SQLite: a subprocess per route, as the zero-setup default runs ----------------------------------------------
SQLITE_ROUTES = [Route(rules, "one", batch) for rules in RULES for batch in (None, 1)]


def file_problems() -> dict[str, tuple[bytes, dict, dict]]:
    """File-level codes: (file content, job options, settings) each."""
    course = {"importer": "course", "course": "CARD101", "create_accounts": False, "allow_auto_complete": False}
    header = ["external_user_id", "external_email", "complete", "date_completed"]
    row = ["L-1", "maria@example.org", "1", "2024-05-01"]
    return {
        "F_EMPTY": (b"\xef\xbb\xbf \r\n", course, {}),
        "F_ENCODING": (b"external_user_id,complete\r\nL-1,1\r\nJos\x81,0\r\n", course, {}),
        "F_NOT_CSV": (b"PK\x03\x04" + bytes(200), course, {}),
        "F_MISSING_COLUMN": (csv_bytes(["external_user_id", "compelted"], [["L-1", "1"]]), course, {}),
        "F_DUPLICATE_COLUMN": (csv_bytes(["email", *header], [["maria@example.org", *row]]), course, {}),
        "F_TOO_LARGE": (csv_bytes(header, [row, row, row]), course, {"IMPORT_MAX_ROWS": 2}),
        "F_COURSE_REQUIRED": (csv_bytes(header, [row]), course | {"course": None}, {}),
    }


class SqliteRuns:
    """Runs on SQLite, one subprocess per route (tests/differential_sqlite.py), made when first asked for."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.template: Path | None = None
        self.results: dict[Route, dict] = {}

    def result(self, route: Route, run_id: str) -> dict:
        if route not in self.results:
            self.results[route] = self._run(route)
        return self.results[route][run_id]

    def _environment(self, where: Path, route: Route | None = None) -> dict:
        environment = os.environ | {
            "DATABASE_URL": f"sqlite:///{where / 'db.sqlite3'}",
            "LMS_VAR_DIR": str(where / "var"),
            "DJANGO_SETTINGS_MODULE": "lms_import.settings",
        }
        for name in ("CELERY_BROKER_URL", "IMPORT_BATCH_ROWS", "IMPORT_REFERENCE_RULES", "IMPORT_PRODUCER_PROCESS"):
            environment.pop(name, None)
        return environment | (route.environment() if route else {})

    def _template(self) -> Path:
        if self.template is None:
            where = self.directory / "template"
            where.mkdir()
            done = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
                cwd=ROOT,
                env=self._environment(where),
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stderr
            self.template = where / "db.sqlite3"
        return self.template

    def _run(self, route: Route) -> dict:
        where = self.directory / str(route)
        where.mkdir()
        runs = []
        for name, scenario in SCENARIOS.items():
            path = scenario.write(where / f"{name}.csv")
            for mode in MODES:
                runs.append({"id": f"{name}-{mode}", "options": scenario.options, "path": str(path), "mode": mode})
        if route.rules == "fast":
            for name, (scenario, mode) in FOCUSED.items():
                path = scenario.write(where / f"focused-{name}.csv")
                runs.append({"id": f"focused-{name}", "options": scenario.options, "path": str(path), "mode": mode})
        if route == Route("fast", "one"):
            for code, (content, options, settings) in file_problems().items():
                path = where / f"{code}.csv"
                path.write_bytes(content)
                for mode in ("preview", "apply_noskip"):
                    run = {"id": f"{code}-{mode}", "options": options, "path": str(path), "mode": mode}
                    runs.append(run | {"settings": settings})
        spec = where / "spec.json"
        output = where / "results.json"
        spec.write_text(json.dumps({"template": str(self._template()), "output": str(output), "runs": runs}))
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "differential_sqlite.py"), str(spec)],
            cwd=ROOT,
            env=self._environment(where, route),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(output.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sqlite_runs(tmp_path_factory) -> SqliteRuns:
    return SqliteRuns(tmp_path_factory.mktemp("differential-sqlite"))


@pytest.mark.slow
@pytest.mark.parametrize("route", SQLITE_ROUTES, ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SCENARIOS)
def test_sqlite_path_agrees_with_the_baseline(name, mode, route, sqlite_runs, tmp_path):
    expected = baseline(name, mode, tmp_path)
    actual = sqlite_runs.result(route, f"{name}-{mode}")

    assert_same(actual, expected, f"SQLite {route} {name} {mode}")


# -- file-level problems: the same code everywhere, and nothing written -------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("code", list(file_problems()))
def test_file_level_problems_are_the_same_on_every_path(code, sqlite_runs, tmp_path):
    content, options, settings = file_problems()[code]
    path = tmp_path / f"{code}.csv"
    path.write_bytes(content)
    runs = {}
    for label, mode, route in (
        ("PostgreSQL preview", "preview", Route()),
        ("PostgreSQL apply, producer process", "apply_noskip", Route(process="producer")),
        ("PostgreSQL apply, one process", "apply_noskip", Route(process="one")),
    ):
        runs[label] = postgresql_run(options, path, mode, route, **settings)
        database_empty()
    for mode in ("preview", "apply_noskip"):
        runs[f"SQLite {mode}"] = sqlite_runs.result(Route("fast", "one"), f"{code}-{mode}")

    for label, run in runs.items():
        assert "error" not in run, f"{label}: {run.get('error')}"
        assert run["job"]["status"] == "failed" and run["job"]["failure_code"] == code, (label, run["job"])
        assert [f[1] for f in run["findings"]] == [code], (label, run["findings"])
        assert run["records"] == run["before"], f"{label} wrote records"
    first_label, first = next(iter(runs.items()))
    for label, run in runs.items():
        assert run["findings"] == first["findings"], f"{label} and {first_label} disagree"
        assert run["before"] == first["before"]


# -- focused: small files about single ways the paths have disagreed --------------------------------------------
WHERE = ("postgresql-producer", "postgresql-one", "sqlite")


def focused_run(name: str, where: str, batch: int | None, sqlite_runs: SqliteRuns, tmp_path: Path) -> dict:
    scenario, mode = FOCUSED[name]
    if where == "sqlite":
        run = sqlite_runs.result(Route("fast", "one", batch), f"focused-{name}")
    else:
        route = Route(process=where.removeprefix("postgresql-"), batch=batch)
        run = postgresql_run(scenario.options, scenario.write(tmp_path / f"{name}-{batch}.csv"), mode, route)
    assert "error" not in run, run.get("error")
    return run


def assert_succeeded(run: dict) -> None:
    job = run["job"]
    assert job["status"] == "succeeded", f"{job['status']} {job['failure_code']}: {job['failure_message']}"


def this_jobs(records: dict, table: str) -> list[dict]:
    field = "created_by" if table in ("users", "profiles", "courses") else "job"
    return [record for record in records[table] if record[field] == "this job"]


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_usernames_that_clash_across_batches_give_two_accounts(where, sqlite_runs, tmp_path):
    """A new learner with e-mail x@example.org and, a batch later, one with external id x@example.org and no
    e-mail: both usernames derive to x@example.org. The import must create two accounts with distinct names."""
    run = focused_run("clash", where, 1, sqlite_runs, tmp_path)

    assert_succeeded(run)
    created = this_jobs(run["records"], "users")
    assert sorted(u["key"] for u in created) == ["e:x@example.org", "x:x@example.org"]
    usernames = [u["username"] for u in created]
    assert len(set(usernames)) == 2 and all(name.startswith("x@example.org") for name in usernames), usernames
    assert run["job"]["created_accounts"] == 2 and run["job"]["created_enrollments"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_a_profile_made_for_an_existing_learner_is_written_once_across_batches(where, sqlite_runs, tmp_path):
    """An account without a profile, matched by e-mail, with PARS data on rows in two batches: one profile."""
    run = focused_run("profile-once", where, 1, sqlite_runs, tmp_path)

    assert_succeeded(run)
    ann = [p for p in run["records"]["profiles"] if p["user"] == "e:ann.lee@example.org"]
    assert [(p["dob_month"], p["dob_day"], p["licensing_state"]) for p in ann] == [("11", "30", "WA")]
    assert run["job"]["created_enrollments"] == 1 and run["job"]["created_credits"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_a_waiting_record_taken_by_an_account_of_this_import_still_refuses_its_later_rows(where, sqlite_runs, tmp_path):
    """The account the first row creates takes the learner's waiting CARD101 record; the row for CARD101 a batch
    later is checked against the file as it came (E_ALREADY_PENDING), as it is when both rows share a batch."""
    run = focused_run("pending-later-row", where, 1, sqlite_runs, tmp_path)

    assert_succeeded(run)
    assert [f[:3] for f in run["findings"]] == [[3, "E_ALREADY_PENDING", ""]]
    pat = {e["course"]: e["job"] for e in run["records"]["enrollments"] if e["user"] == "x:P-1"}
    assert pat == {"NEURO300": "this job", "CARD101": None}  # CARD101: the waiting record's enrollment
    assert [p["status"] for p in run["records"]["pending"]] == ["applied"]


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_ids_the_import_reserves_do_not_collide_with_records_made_meanwhile(where, sqlite_runs, tmp_path):
    """Batch 1 creates an account that takes a waiting record (an enrollment made one at a time, outside the
    batch writer); batch 2 writes another enrollment. Both must get ids of their own."""
    run = focused_run("ids-meanwhile", where, 1, sqlite_runs, tmp_path)

    assert_succeeded(run)
    enrollments = sorted((e["user"], e["course"], e["job"]) for e in run["records"]["enrollments"])
    assert [e for e in enrollments if e[0] in ("x:P-1", "x:G-1")] == [
        ("x:G-1", "NEURO300", "this job"),
        ("x:P-1", "CARD101", None),
        ("x:P-1", "NEURO300", "this job"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_profile_conflicts_do_not_depend_on_batch_boundaries(where, sqlite_runs, tmp_path):
    """Two rows of a learner with a blank profile disagree on licensing_state. Whatever the batch size, the same
    value is written and the same warnings are given."""
    one_batch = focused_run("conflict-by-batch", where, None, sqlite_runs, tmp_path)
    if where != "sqlite":
        database_empty()
    two_batches = focused_run("conflict-by-batch", where, 1, sqlite_runs, tmp_path)

    for run in (one_batch, two_batches):
        assert_succeeded(run)
        james = [p for p in run["records"]["profiles"] if p["user"] == "x:L-2"]
        assert [p["licensing_state"] for p in james] == ["TX"]
    assert two_batches["warnings"] == one_batch["warnings"]
    # The second row's OK is kept out of the profile the first row filled: the admin hears of it.
    assert [(code, count) for code, count, _ in one_batch["warnings"] if code == "W_PROFILE_CONFLICT"] == [
        ("W_PROFILE_CONFLICT", 1)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_emails_match_accounts_by_ascii_case_only(where, sqlite_runs, tmp_path):
    """SPEC §4: e-mails are matched case-insensitively: ASCII letters fold, every other character must be as the
    account has it, so that a look-alike matches no one. The account is SØren.Ås@Example.org."""
    run = focused_run("casefold", where, None, sqlite_runs, tmp_path)

    assert_succeeded(run)
    assert [(e["user"], e["course"]) for e in this_jobs(run["records"], "enrollments")] == [
        ("e:sØren.Ås@example.org", "CARD101")
    ]
    # ø is not Ø, and the Kelvin sign is not k (kim@example.org has an account): both wait for an account.
    assert sorted(p["email"] for p in this_jobs(run["records"], "pending")) == [
        "søren.Ås@example.org",
        "\u212aim@example.org",
    ]
