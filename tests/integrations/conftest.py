"""Fixtures of the integration tests (SPEC §12): the API over HTTP, mail, webhooks, the inbox, a bucket.

They run the real processes of tests/browser/conftest.py (the live server, `celery worker` and `celery beat` on
PostgreSQL and Redis) and add:

    api             (a fixture) api(user) -> a requests.Session for live_url + "/api/v1/" with the user's token

and the helpers (import them from tests.integrations.conftest):

    wait_for        wait_for(predicate, timeout=60, what="…", log=worker) -> the predicate's truthy value, polled
    free_port       free_port() -> a TCP port on 127.0.0.1 nobody listens on (yet)
    csv_bytes       csv_bytes(rows, header=HEADER) -> a CSV file as bytes; CLEAN and WITH_ERRORS are rows for CARD101
"""

import socket
import time

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.browser.conftest import (  # noqa: F401  (fixtures: the same real processes as the browser tests)
    _fast_passwords,
    admin_user,
    live_url,
    plain_user,
    staff_user,
    start_beat,
    start_worker,
    worker,
)
from tests.conftest import csv_text

CLEAN = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]]
WITH_ERRORS = [
    ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
    ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ancc", "9.00"],  # E_CREDITS_OVER_MAX
    ["", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00"],  # E_LEARNER_ID_MISSING
]


def csv_bytes(rows, header=None) -> bytes:
    return (csv_text(rows) if header is None else csv_text(rows, header)).encode()


@pytest.fixture
def api(live_url):  # noqa: F811  (the fixture imported above)
    """api(user) -> a requests.Session whose requests go to the live server with "Authorization: Token KEY"."""
    sessions = []

    def session_for(user) -> requests.Session:
        token, _ = Token.objects.get_or_create(user=user)
        session = BaseUrlSession(f"{live_url}/api/v1/")
        session.headers["Authorization"] = f"Token {token.key}"
        sessions.append(session)
        return session

    yield session_for
    for session in sessions:
        session.close()


class BaseUrlSession(requests.Session):
    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(method, url if url.startswith("http") else self.base + url, *args, **kwargs)


def wait_for(predicate, *, timeout: float = 60, what: str = "the condition", log=None, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(process.log()[-4000:] for process in (log if isinstance(log, list) else [log]) if process)
            raise AssertionError(f"Timed out after {timeout} s waiting for {what}.\n{logs}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
