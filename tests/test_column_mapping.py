"""Column mapping (SPEC §13): a saved mapping reads a file whose columns are named otherwise, the same way from every
face and for CSV files and workbooks; the job page's F_MISSING_COLUMN table and the mapping step."""

import json
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from core.findings import FileProblem
from enrollments.models import Enrollment
from lms_import.importer.schema import header_match, header_read, mapping_problems, mapping_suggest, mapping_tidy
from lms_import.models import AuditEvent, ColumnMapping, ImportJob
from lms_import.services import import_job_validate

from .conftest import csv_text, manage, run_cli

FOREIGN = ["Participant Email", "Member Number", "Activity Start", "Done", "Finished On", "Credit", "Hours", "Notes"]
ROWS = [
    ["maria@example.org", "L-1", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50", "front row"],
    ["maria@example.org", "L-1", "2026-09-01", "1", "2026-09-14", "ancc", "2.00", ""],
    ["", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00", "nobody"],  # E_LEARNER_ID_MISSING
]
NOBODY = (4, "E_LEARNER_ID_MISSING", "external_user_id")  # the third row's finding, named by the schema's column
MAPPING = {
    "external_email": "Participant Email",
    "external_user_id": "Member Number",
    "enrollment_start": "Activity Start",
    "complete": "Done",
    "date_completed": "Finished On",
    "credit_type": "Credit",
    "credits": "Hours",
}


# -- the header, read with a mapping (pure) ----------------------------------------------------------------------
def test_a_mapping_reads_its_columns_from_the_cells_it_names():
    header = header_read(FOREIGN, global_importer=False, mapping=MAPPING)

    assert header.index["external_email"] == 0 and header.index["complete"] == 3 and header.index["credits"] == 6
    assert header.warnings == [("W_UNKNOWN_COLUMN", "Ignored unknown columns: 'Notes'.", 1)]  # not mapped: ignored


def test_without_the_mapping_the_same_header_lacks_the_required_columns():
    with pytest.raises(FileProblem) as problem:
        header_read(FOREIGN, global_importer=False)

    finding = problem.value.finding
    assert finding.code == "F_MISSING_COLUMN" and finding.column == "external_user_id or external_email"
    assert "Map the file's columns" in finding.message and "Expected columns" not in finding.message


def test_a_mapping_that_names_a_column_the_file_lacks_is_F_MISSING_COLUMN():
    with pytest.raises(FileProblem) as problem:
        header_read(FOREIGN[1:], global_importer=False, mapping=MAPPING)

    finding = problem.value.finding
    assert (finding.code, finding.line, finding.column, finding.value) == (
        "F_MISSING_COLUMN",
        1,
        "external_email",
        "Participant Email",
    )
    assert "reads external_email from the column 'Participant Email', which this file's header" in finding.message


def test_a_column_named_like_one_the_mapping_decides_is_ignored():
    # "email" would be read as external_email, but the mapping reads that from "Participant Email".
    header = header_read([*FOREIGN, "email"], global_importer=False, mapping=MAPPING)

    assert header.index["external_email"] == 0
    assert header.warnings == [("W_UNKNOWN_COLUMN", "Ignored unknown columns: 'Notes', 'email'.", 2)]
    # "Not in the file" (""): the column named "attended" is not read at all.
    header = header_read([*FOREIGN, "attended"], global_importer=False, mapping=MAPPING | {"attended": ""})
    assert "attended" not in header.index and header.warnings[0][2] == 2
    # Without a mapping, two columns read as one are still a duplicate.
    with pytest.raises(FileProblem) as problem:
        header_read(["email", "E-mail", "complete"], global_importer=False)
    assert problem.value.finding.code == "F_DUPLICATE_COLUMN" and problem.value.finding.column == "external_email"


@pytest.mark.parametrize(
    ("raw", "mapping"),
    [
        (FOREIGN, MAPPING),
        ([*FOREIGN, "email", "Attended"], MAPPING | {"attended": ""}),
        (["uid", "Completed", "Date of Completion", "Hours", "x"], None),
        (["E-mail", "Done", "notes"], {"complete": "Done"}),
    ],
)
def test_the_job_pages_table_reads_the_header_as_the_importer_does(raw, mapping):
    read = header_read(raw, global_importer=False, mapping=mapping)
    match = header_match(raw, global_importer=False, mapping=mapping)

    assert {name: position for position, (_, name) in enumerate(match.cells) if name} == read.index
    assert all(present for _, present in match.required)


def test_not_in_the_file_is_kept_only_where_the_header_would_say_otherwise():
    chosen = {"external_email": "Participant Email", "complete": "Done", "attended": "", "board_id": ""}
    assert mapping_tidy(chosen, [*FOREIGN, "Attended"]) == {
        "external_email": "Participant Email",
        "complete": "Done",
        "attended": "",
    }


def test_the_suggestions_are_the_most_similar_columns():
    suggested = mapping_suggest(["Participant Email", "Completed", "Completion Date", "Course Code", "Zzz"])

    assert suggested["external_email"] == "Participant Email"
    assert suggested["complete"] == "Completed" and suggested["date_completed"] == "Completion Date"
    assert suggested["external_course_id"] == "Course Code"
    assert "Zzz" not in suggested.values() and suggested["board_id"] == ""


def test_an_unsound_mapping_says_what_is_wrong():
    assert mapping_problems(MAPPING) == []
    problems = mapping_problems({"emale": "E", "complete": "Done", "attended": "done", "credits": 3})
    assert "'emale' is not a column of the importer" in problems[0]
    assert "The file's column 'done' is chosen for both complete and attended." in problems
    assert "The file's header for credits must be text, not 3." in problems


# -- the command line ---------------------------------------------------------------------------------------------
@pytest.fixture
def saved(db):
    return ColumnMapping.objects.create(name="Registration export", columns=MAPPING)


def xlsx_write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Records"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_command_line_reads_a_file_with_a_saved_mapping(kind, course, learner, saved, tmp_path):
    path = tmp_path / f"export.{kind}"
    if kind == "csv":
        path.write_text(csv_text(ROWS, FOREIGN))
    else:
        xlsx_write(path, FOREIGN, ROWS)

    code, out, _ = run_cli(path, "--course", "CARD101", "--mapping", "Registration export", "--skip-invalid")

    assert code == 0, out
    assert "Columns read with the mapping 'Registration export'" in out
    job = ImportJob.objects.get()
    assert job.mapping == saved and job.mapping_applied == MAPPING
    assert (job.rows_valid, job.rows_invalid, job.created_credits) == (2, 1, 2)
    assert [(e["line"], e["code"], e["column"]) for e in job.errors] == [NOBODY]
    assert Enrollment.objects.get().user == learner
    assert {w["code"] for w in job.warnings} == {"W_UNKNOWN_COLUMN"}


@pytest.mark.django_db(transaction=True)
def test_the_command_line_names_the_saved_mappings_when_one_is_unknown(course, saved, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(csv_text(ROWS, FOREIGN))

    result = manage("import_course_records", path, "--course", "CARD101", "--mapping", "Registraton export")

    assert result.returncode == 2 and not ImportJob.objects.exists()
    assert "There is no saved column mapping named 'Registraton export'." in result.stderr
    assert "The saved mappings are: 'Registration export'." in result.stderr


# -- the web: the F_MISSING_COLUMN table and the mapping step ----------------------------------------------------
@pytest.fixture
def staff(db):
    user = get_user_model().objects.create(username="importer")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def upload(client: Client, content: bytes, name: str, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"importer": "course", "course": "CARD101", "csv_file": SimpleUploadedFile(name, content)} | fields
    response = client.post("/import/course-records/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.order_by("-pk").first()


@pytest.mark.django_db
def test_the_job_page_shows_the_files_columns_and_the_mapping_step_checks_it_again(staff, course, learner):
    job = upload(staff, csv_text(ROWS, FOREIGN).encode(), "export.csv")
    job = import_job_validate(job=job)
    assert (job.status, job.failure_code) == ("failed", "F_MISSING_COLUMN")

    page = staff.get(f"/import/jobs/{job.pk}/").content.decode()

    assert 'id="columns"' in page and "Expected columns" not in page
    assert '<td class="value">Participant Email</td><td><span class="muted">unknown</span></td>' in page
    assert '<td class="value">maria@example.org, maria@example.org</td>' in page  # the first values
    assert '✗ <strong>missing:</strong> <span class="code">external_user_id or external_email</span>' in page
    assert f'href="/import/jobs/{job.pk}/mapping/"' in page
    assert 'href="/courses/CARD101/import/template.xlsx"' in page  # or start again from the course's template

    step = staff.get(f"/import/jobs/{job.pk}/mapping/").content.decode()

    # Pre-filled with the most similar column; each choice shows its first values.
    assert '<option value="Participant Email" selected>Participant Email (e.g. maria@example.org, ' in step
    assert '<option value="Done">Done (e.g. 1, 1, 1)</option>' in step

    choices = {f"column_{name}": cell for name, cell in MAPPING.items()}
    response = staff.post(f"/import/jobs/{job.pk}/mapping/", choices | {"save_as": "Registration export"})

    assert response.status_code == 302 and response["Location"] == f"/import/jobs/{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.failure_code, job.errors, job.mapping_applied) == ("uploaded", "", [], MAPPING)
    assert job.mapping.name == "Registration export" and job.mapping.columns == MAPPING
    event = AuditEvent.objects.get(action="mapping")
    assert event.job == job and event.actor == staff.user and event.details["saved_as"] == "Registration export"

    job = import_job_validate(job=job)  # the worker's part: the same upload, read with the mapping

    assert (job.status, job.rows_valid, job.rows_invalid) == ("validated", 2, 1)
    assert [(e["line"], e["code"], e["column"]) for e in job.errors] == [NOBODY]
    page = staff.get(f"/import/jobs/{job.pk}/").content.decode()
    assert 'id="mapping-used"' in page and "Registration export" in page and 'id="columns"' not in page


@pytest.mark.django_db
def test_the_mapping_step_refuses_a_name_taken_and_a_column_chosen_twice(staff, course, saved):
    job = import_job_validate(job=upload(staff, csv_text(ROWS, FOREIGN).encode(), "export.csv"))
    choices = {f"column_{name}": cell for name, cell in MAPPING.items()}

    taken = staff.post(f"/import/jobs/{job.pk}/mapping/", choices | {"save_as": "Registration export"})
    twice = staff.post(f"/import/jobs/{job.pk}/mapping/", choices | {"column_attended": "Done"})

    assert "A column mapping named &#x27;Registration export&#x27; exists already." in taken.content.decode()
    assert "The file&#x27;s column &#x27;Done&#x27; is chosen for both complete and attended." in twice.content.decode()
    job.refresh_from_db()
    assert job.status == "failed" and not AuditEvent.objects.filter(action="mapping").exists()


@pytest.mark.django_db
def test_a_job_that_was_imported_cannot_be_mapped_again(staff, course):
    job = ImportJob.objects.create(created_by=staff.user, course=course, status="succeeded", original_filename="x.csv")

    response = staff.post(f"/import/jobs/{job.pk}/mapping/", {"column_complete": "Done"})

    assert response.status_code == 200 and 'id="not-mappable"' in response.content.decode()
    job.refresh_from_db()
    assert job.status == "succeeded" and job.mapping_applied == {}


@pytest.mark.django_db
def test_a_saved_mapping_is_chosen_on_the_upload_form(staff, course, saved):
    form = staff.get("/import/course-records/").content.decode()
    assert '<option value="Registration export">Registration export</option>' in form

    job = upload(staff, csv_text(ROWS, FOREIGN).encode(), "export.csv", mapping="Registration export")

    assert job.mapping == saved and job.mapping_applied == MAPPING
    assert import_job_validate(job=job).rows_valid == 2


# -- the admin ----------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_mappings_are_edited_in_the_admin_and_every_change_is_audited(course):
    admin = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)

    refused = client.post(
        "/admin/lms_import/columnmapping/add/", {"name": "Bad", "columns": json.dumps({"emale": "E-mail"})}
    )
    added = client.post(
        "/admin/lms_import/columnmapping/add/", {"name": "HR export", "columns": json.dumps({"complete": "Done"})}
    )

    assert "&#x27;emale&#x27; is not a column of the importer" in refused.content.decode()
    assert added.status_code == 302
    mapping = ColumnMapping.objects.get()
    assert (mapping.name, mapping.columns, mapping.created_by) == ("HR export", {"complete": "Done"}, admin)
    event = AuditEvent.objects.get(action="admin_add")
    assert event.actor == admin and event.details["model"] == "lms_import.ColumnMapping"


@pytest.mark.django_db
def test_not_in_the_file_keeps_a_column_named_like_it_from_being_read(staff, course, learner):
    rows = [[*row, "maybe"] for row in ROWS[:2]]  # "maybe" is no 0/1: read as attended, it would be an error
    job = import_job_validate(job=upload(staff, csv_text(rows, [*FOREIGN, "Attended"]).encode(), "export.csv"))
    step = staff.get(f"/import/jobs/{job.pk}/mapping/").content.decode()
    assert '<option value="Attended" selected>Attended (e.g. maybe, maybe)</option>' in step  # read by its name

    choices = {f"column_{name}": cell for name, cell in MAPPING.items()} | {"column_attended": ""}
    staff.post(f"/import/jobs/{job.pk}/mapping/", choices)
    job = import_job_validate(job=ImportJob.objects.get(pk=job.pk))

    assert job.mapping_applied == MAPPING | {"attended": ""} and job.mapping is None
    assert (job.status, job.rows_valid, job.rows_invalid) == ("validated", 2, 0)
    assert "Ignored unknown columns: 'Notes', 'Attended'." in [w["message"] for w in job.warnings]
    page = staff.get(f"/import/jobs/{job.pk}/").content.decode()
    assert "not saved by name: " in page and '<span class="code">attended</span> not in the file' in page
