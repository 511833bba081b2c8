"""One truth for mapped files (SPEC §13): a file whose columns are named otherwise, read with a column mapping, gives
the findings (code, line, column named by the schema's column, value, message) and the records of the same file
with the importer's own column names; for the generated files of tests/differential.py that hit every row-level
code, and for a workbook against a CSV file."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from courses.models import Course
from lms_import.models import ColumnMapping, ImportJob
from lms_import.services import import_job_apply, import_job_create

from .differential import ADMIN, catalog_build, csv_bytes, job_snapshot, scenario_build
from .test_column_mapping import FOREIGN, MAPPING, ROWS, xlsx_write

pytestmark = pytest.mark.django_db(transaction=True)


def foreign(name: str) -> str:
    """A heading no alias knows: only a mapping can say which column it is."""
    return f"Their {name.replace('_', ' ').title()} Field"


def apply_and_snapshot(*, options: dict, path: Path, mapping: dict | None) -> dict:
    """On an empty database: the catalog, then an apply that skips invalid rows (as the command line runs it)."""
    call_command("flush", interactive=False, verbosity=0)
    since = timezone.now()
    catalog_build()
    saved = ColumnMapping.objects.create(name="Their export", columns=mapping) if mapping else None
    job = import_job_create(
        user=get_user_model().objects.get(username=ADMIN),
        importer=options["importer"],
        course=Course.objects.filter(external_course_id=options.get("course") or "").first(),
        path=path,
        skip_invalid=True,
        create_accounts=options.get("create_accounts", False),
        allow_auto_complete=options.get("allow_auto_complete", False),
        mapping=saved,
    )
    job = import_job_apply(job=job, from_statuses=(ImportJob.Status.UPLOADED,))
    snapshot = job_snapshot(job, since=since)
    snapshot["report"] = snapshot["report"] and snapshot["report"][1:]  # its header is the file's own
    return snapshot


@pytest.mark.slow
@pytest.mark.parametrize("name", ["course", "global"])
def test_a_mapped_file_gives_the_findings_and_records_of_its_twin_with_the_importers_names(name, tmp_path):
    scenario = scenario_build(name)
    cells = list(zip(scenario.header, scenario.columns, strict=True))  # each heading and the column it means
    canonical = [column or cell for cell, column in cells]
    theirs = [foreign(column) if column else cell for cell, column in cells]
    mapping = {column: foreign(column) for column in scenario.columns if column}
    (tmp_path / "canonical.csv").write_bytes(csv_bytes(canonical, scenario.rows))
    (tmp_path / "theirs.csv").write_bytes(csv_bytes(theirs, scenario.rows))

    expected = apply_and_snapshot(options=scenario.options, path=tmp_path / "canonical.csv", mapping=None)
    mapped = apply_and_snapshot(options=scenario.options, path=tmp_path / "theirs.csv", mapping=mapping)

    assert expected["job"]["status"] == "succeeded" and expected["job"]["rows_invalid"] > 0, expected["job"]
    codes = {finding[1] for finding in expected["findings"]}
    assert {"E_COLUMN_COUNT", "E_DATE_INVALID", "E_CREDITS_OVER_MAX"} <= codes  # the file hits the row codes
    for part in ("job", "findings", "report", "records"):
        assert mapped[part] == expected[part], part
    # Warnings: the same, but the twin's repaired header names (W_HEADER_NORMALIZED), which the mapped file has not.
    assert [w for w in mapped["warnings"] if w[0] != "W_HEADER_NORMALIZED"] == [
        w for w in expected["warnings"] if w[0] != "W_HEADER_NORMALIZED"
    ]


def test_a_mapped_workbook_gives_what_the_csv_file_with_the_importers_names_gives(tmp_path):
    canonical = [next((c for c, cell in MAPPING.items() if cell == heading), heading) for heading in FOREIGN]
    (tmp_path / "canonical.csv").write_bytes(csv_bytes(canonical, ROWS))
    xlsx_write(tmp_path / "theirs.xlsx", FOREIGN, ROWS)
    options = {"importer": "course", "course": "CARD101"}

    expected = apply_and_snapshot(options=options, path=tmp_path / "canonical.csv", mapping=None)
    mapped = apply_and_snapshot(options=options, path=tmp_path / "theirs.xlsx", mapping=MAPPING)

    assert expected["job"]["created_enrollments"] == 1 and expected["findings"][0][1] == "E_LEARNER_ID_MISSING"
    assert mapped["findings"] == expected["findings"] and mapped["records"] == expected["records"]
    assert mapped["report"] == expected["report"]
