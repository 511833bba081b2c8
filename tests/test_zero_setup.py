"""The run command's embedded default: SQLite and no broker server. A new user's first import must work."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.timeout(180)


def manage_sqlite(tmp_path, *args):
    env = os.environ | {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "LMS_VAR_DIR": str(tmp_path / "var")}
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_demo_data_and_sample_files_import_on_sqlite(tmp_path):
    assert manage_sqlite(tmp_path, "migrate", "--noinput").returncode == 0
    demo = manage_sqlite(tmp_path, "load_demo_data")
    assert demo.returncode == 0 and "Demo logins: admin / " in demo.stdout

    course = manage_sqlite(
        tmp_path,
        "import_course_records",
        ROOT / "samples/card101_completions.csv",
        "--course",
        "CARD101",
        "--format",
        "json",
    )
    legacy = manage_sqlite(
        tmp_path,
        "import_course_records",
        ROOT / "samples/legacy_records.csv",
        "--global",
        "--create-accounts",
        "--format",
        "json",
    )
    errors = manage_sqlite(
        tmp_path,
        "import_course_records",
        ROOT / "samples/card101_with_errors.csv",
        "--course",
        "CARD101",
        "--skip-invalid",
        "--create-accounts",
        "--format",
        "json",
    )

    assert course.returncode == 0, course.stderr
    assert json.loads(course.stdout)["created"] == {
        "enrollments": 3,
        "credits": 4,
        "pending": 2,
        "accounts": 0,
        "shells": 0,
    }
    assert legacy.returncode == 0, legacy.stderr
    assert json.loads(legacy.stdout)["created"]["shells"] == 2
    assert errors.returncode == 0, errors.stderr
    result = json.loads(errors.stdout)
    assert result["rows"]["skipped"] == 5 and result["created"]["accounts"] == 1
