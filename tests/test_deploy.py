"""`manage.py check --deploy` passes with the production variables the README documents (HSTS, SSL redirect,
secure cookies, a real secret key), and complains without them. The variables are read from the README itself,
so that the documentation and the check cannot drift apart."""

import os
import re
import secrets
import subprocess
import sys

from .conftest import ROOT

# The README's block of production variables: `export NAME=VALUE  # comment` lines.
EXPORT = re.compile(r"^export (\w+)=(\S*)")


def production_variables() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    (block,) = [b for b in blocks if "DJANGO_SECURE_HSTS_SECONDS" in b]
    variables = {}
    for line in block.splitlines():
        match = EXPORT.match(line)
        if match:
            variables[match.group(1)] = match.group(2).strip("'\"")
    return variables


def check_deploy(variables: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "DATABASE_"))}
    env |= {"LMS_VAR_DIR": str(tmp_path / "var"), "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat")}
    env |= variables
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readmes_production_variables_pass_check_deploy(tmp_path):
    variables = production_variables()
    assert {
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_SECURE_SSL_REDIRECT",
        "DJANGO_SECURE_HSTS_SECONDS",
        "DJANGO_SECURE_COOKIES",
    } <= set(variables)
    variables["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)  # the README shows where it comes from

    done = check_deploy(variables, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_complains_without_them(tmp_path):
    done = check_deploy({"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}, tmp_path)

    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr, done.stderr


def test_without_a_secret_key_nothing_starts(tmp_path):
    done = check_deploy({}, tmp_path)

    assert done.returncode != 0 and "DJANGO_SECRET_KEY is not set" in done.stderr
