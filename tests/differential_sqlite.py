"""Differential runs on SQLite, in a process of their own: `python tests/differential_sqlite.py SPEC.json`.

The environment chooses the database and the importer's knobs, as for the zero-setup run command
(DATABASE_URL=sqlite:///…, LMS_VAR_DIR, no CELERY_BROKER_URL, IMPORT_*). SPEC.json holds
{"template": a migrated SQLite file, "output": where the results go, "runs": [{"id", "options", "path",
"mode", "settings"}]}; "settings" are overrides for that run only (IMPORT_MAX_ROWS of the F_TOO_LARGE
file). Each run starts from a copy of the template, builds the catalog, imports and records its snapshot
(tests/differential.py); a run that raises is recorded with its traceback and the others still run.
"""

import json
import os
import shutil
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_import.settings")
    import django

    django.setup()
    from django.db import connections
    from django.test.utils import override_settings

    from tests.differential import run_and_snapshot

    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    database = Path(connections["default"].settings_dict["NAME"])
    results = {}
    for run in spec["runs"]:
        connections.close_all()
        shutil.copyfile(spec["template"], database)
        try:
            with override_settings(**run.get("settings", {})):
                results[run["id"]] = run_and_snapshot(options=run["options"], path=Path(run["path"]), mode=run["mode"])
        except Exception:
            results[run["id"]] = {"error": traceback.format_exc()}
    connections.close_all()
    Path(spec["output"]).write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
