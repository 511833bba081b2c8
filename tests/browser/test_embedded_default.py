"""The run command's embedded default (SQLite and the filesystem broker) serves real files.

`scripts/run.sh` (what `make run` starts) runs here as a new user would run it: its own SQLite file,
its own broker folder, web and worker under honcho. A site admin imports 100,000 rows of learners
without accounts while one learner already waits in the holding table; every page and progress
poll answers while the import runs, the heartbeat stays fresh, and the import ends.
"""

import csv
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.conftest import HEADER, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(600)]

ROWS = 100_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def product(tmp_path):
    """The run command on a fresh machine's defaults: (its URL, its var/ folder). No secret key either: it makes
    its own."""
    var, port = tmp_path / "var", free_port()
    unset = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env |= {"LMS_VAR_DIR": str(var), "WEB_PORT": str(port), "DEMO_ADMIN_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
    env["IMPORT_HEARTBEAT_SECONDS"] = "1"  # progress is written with each beat: the test sees the bar move
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "run.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        text = (tmp_path / "run.log").read_text(errors="replace")
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"The run command did not start:\n{text[-3000:]}")
        if " ready." in text:  # the worker; then the web must answer too
            try:
                urllib.request.urlopen(f"{url}/accounts/login/", timeout=2)
                break
            except OSError:
                pass
        time.sleep(0.5)
    yield url, var
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def records(path, rows: int, first: int = 0) -> None:
    """Completions in CARD101 (the demo course) of learners who have no account."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(first, first + rows):
            out.writerow(
                [f"N{n:07d}", f"new{n:07d}@example.org", "Ana", "Silva", "2026-03-02", "1", "2026-03-20"]
                + (["ama_pra_1", "1.75"] if n % 3 else ["ancc", "2.00"])
            )


def upload_and_preview(page, url: str, path) -> str:
    page.goto(f"{url}/import/course-records/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_label("Course", exact=True).select_option("CARD101")
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=120_000)
    return page.url


def test_pages_answer_while_an_import_runs_on_the_embedded_default(product, browser_page, tmp_path):
    url, var = product
    page = browser_page
    # The key it made and the demo logins are files only their owner may read.
    assert stat.S_IMODE((var / "secret-key").stat().st_mode) == 0o600 and len((var / "secret-key").read_text()) > 50
    assert stat.S_IMODE((var / "demo-logins.txt").stat().st_mode) == 0o600
    assert f"admin\t{PASSWORD}\tsite admin" in (var / "demo-logins.txt").read_text()
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # One learner already waits in the holding table: every batch of the big file is checked against it.
    waiting = tmp_path / "waiting.csv"
    records(waiting, 1, first=ROWS)
    upload_and_preview(page, url, waiting)
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".status-succeeded").first).to_be_visible(timeout=60_000)
    big = tmp_path / "big.csv"
    records(big, ROWS)

    job_page = upload_and_preview(page, url, big)
    page.get_by_role("button", name="Import").click()

    polls, statuses, heartbeats, stages = 0, [], [], []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        progress = page.request.get(f"{job_page}progress/")
        shown = page.request.get(job_page)
        assert (progress.status, shown.status) == (200, 200), (progress.text()[:500], shown.text()[:500])
        data = progress.json()
        polls += 1
        statuses.append(data["status"])
        if data["status"] == "importing" and data["heartbeat_age"] is not None:
            heartbeats.append(data["heartbeat_age"])
        if data["status"] == "importing":
            stages.append((data["stage"], data["done"], data["total"], data["quiet"]))
        if not data["active"]:
            break
        time.sleep(0.25)
    assert statuses[-1] == "succeeded", statuses[-20:]
    assert "importing" in statuses and polls > 5
    assert heartbeats and max(heartbeats) < 30  # live: refreshed every few seconds, never near the lease
    # The bar moves while the rows are checked and planned, then says that they are being written (SQLite's short
    # write transaction, an indeterminate bar with the elapsed time); never "may be hung".
    seen = sorted(set(stages), key=lambda s: s[1])
    assert any(stage == "importing" and 0 < done < total == ROWS for stage, done, total, _ in stages), seen
    assert ("writing", ROWS, ROWS, False) in stages, seen
    assert not any(quiet for *_, quiet in stages), stages
    # The job page (still open) reloads itself once the job has ended: a goto now could be cut short by that reload.
    expect(page.locator("#result")).to_contain_text(f"{ROWS:,} rows wait in the holding table", timeout=30_000)
    with sqlite3.connect(var / "db.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        held = db.execute("SELECT count(*) FROM enrollments_pendingrecord WHERE status = 'pending'").fetchone()[0]
    assert held == ROWS + 1
