"""Files as real admins produce them: each imports or ends at once with the right code, never a hang."""

import json
from pathlib import Path

import pytest

from courses.models import Course
from enrollments.models import Enrollment
from lms_import.models import ImportJob
from lms_import.services import import_job_create, import_job_validate

from .conftest import HEADER, csv_text, make_learner, run_cli

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ROW = ["L-1", "maria@example.org", "Mária", "Gárcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]


def run_json(path, *args):
    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json", *args)
    return code, json.loads(out)


def warning_codes(result):
    return {w["code"] for w in result["warnings"]}


def test_excel_utf8_with_bom(course, learner, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text([ROW]).encode("utf-8"))

    code, result = run_json(path)

    assert code == 0 and result["encoding"] == "UTF-8 with BOM"
    assert "W_HEADER_NORMALIZED" not in warning_codes(result)
    assert Enrollment.objects.filter(user=learner).exists()


def test_windows_1252_is_read_with_a_warning_and_names_survive(course, tmp_path):
    path = tmp_path / "excel-windows.csv"
    path.write_bytes(csv_text([ROW]).encode("cp1252"))

    code, result = run_json(path, "--create-accounts")

    assert code == 0 and result["encoding"] == "Windows-1252"
    assert "W_ENCODING_GUESSED" in warning_codes(result)
    enrollment = Enrollment.objects.get()
    assert (enrollment.user.first_name, enrollment.user.last_name) == ("Mária", "Gárcia")


def test_utf16_tab_separated_unicode_text(course, learner, tmp_path):
    path = tmp_path / "unicode.txt.csv"
    path.write_bytes(csv_text([ROW], delimiter="\t").encode("utf-16"))

    code, result = run_json(path)

    assert code == 0 and result["encoding"] == "UTF-16" and result["created"]["enrollments"] == 1


def test_header_names_with_trailing_spaces_and_capitals(course, learner, tmp_path):
    header = [f" {name.replace('_', ' ').title()}  " for name in HEADER]
    path = tmp_path / "spaces.csv"
    path.write_text(csv_text([ROW], header=header))

    code, result = run_json(path)

    assert code == 0 and result["created"]["enrollments"] == 1
    (warning,) = [w for w in result["warnings"] if w["code"] == "W_HEADER_NORMALIZED"]
    assert warning["count"] == len(HEADER) and "' External User Id  ' → external_user_id" in warning["message"]


def test_semicolon_separated(course, learner, tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text(csv_text([ROW], delimiter=";"))

    code, result = run_json(path)

    assert code == 0 and result["created"]["enrollments"] == 1
    assert ImportJob.objects.get().delimiter == ";"


def test_a_nul_byte_in_a_value_is_a_row_error(course, learner, tmp_path):
    path = tmp_path / "nul.csv"
    bad = ROW[:2] + ["Ma\x00ria"] + ROW[3:]
    path.write_text(csv_text([ROW, bad]))

    code, result = run_json(path)

    assert code == 1
    (error,) = result["errors"]
    assert (error["line"], error["code"], error["column"]) == (3, "E_CONTROL_CHARACTER", "first_name")
    assert "\\x00" in error["message"]
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize(
    "character",
    ["\x85", "\u2028", "\u2029", "\u200b", "\u200d", "\ufeff", "\u202e", "\x1b"],
    ids=[
        "next-line",
        "line-separator",
        "paragraph-separator",
        "zero-width-space",
        "zero-width-joiner",
        "bom",
        "right-to-left-override",
        "escape",
    ],
)
def test_invisible_and_format_characters_in_a_value_are_row_errors(course, learner, tmp_path, character):
    path = tmp_path / "invisible.csv"
    bad = ROW[:1] + ["maria@example.org"] + ["Ma" + character + "ria"] + ROW[3:]
    path.write_text(csv_text([bad]), encoding="utf-8")

    code, result = run_json(path)

    assert code == 1
    (error,) = result["errors"]
    assert (error["line"], error["code"], error["column"]) == (2, "E_CONTROL_CHARACTER", "first_name")
    assert not Enrollment.objects.exists()


def test_a_file_of_nul_bytes_is_not_csv(course, tmp_path):
    path = tmp_path / "zeros.csv"
    path.write_bytes(b"\x00" * 5000)

    code, result = run_json(path)

    assert code == 1 and result["status"] == "failed" and result["errors"][0]["code"] == "F_NOT_CSV"


def test_a_zip_that_is_no_workbook_is_not_csv(course, tmp_path):
    path = tmp_path / "records.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 20)

    code, result = run_json(path)

    assert code == 1
    (error,) = result["errors"]
    assert error["code"] == "F_NOT_CSV" and "zip archive" in error["message"] and "CSV UTF-8" in error["message"]


def test_a_workbook_named_csv_is_read_as_the_workbook_it_is(course, learner, tmp_path):
    path = tmp_path / "records.csv"
    path.write_bytes((Path(__file__).parent / "fixtures" / "records.xlsx").read_bytes())

    code, result = run_json(path, "--skip-invalid")

    assert code == 0 and result["encoding"] == "Excel workbook (.xlsx)" and result["rows"]["valid"] == 3


def test_random_binary_is_not_csv(course, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes((i * 37) % 256 for i in range(20000)))

    code, result = run_json(path)

    assert code == 1 and result["errors"][0]["code"] in {"F_NOT_CSV", "F_ENCODING"}


def test_undecodable_byte_reports_its_offset(course, tmp_path):
    path = tmp_path / "bad-bytes.csv"
    text = csv_text([ROW]).encode("cp1252")
    path.write_bytes(text + b"L-2,x@example.org,\x81,,2026-09-01,0,,,\r\n")

    code, result = run_json(path)

    assert code == 1
    (error,) = result["errors"]
    assert error["code"] == "F_ENCODING" and f"byte {len(text) + 18:,}" in error["message"]


def test_empty_file(course, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\xef\xbb\xbf\r\n")

    code, result = run_json(path)

    assert code == 1 and result["errors"][0]["code"] == "F_EMPTY"


def test_quote_that_never_closes_ends_at_once(course, tmp_path):
    path = tmp_path / "quote.csv"
    rows = "\r\n".join(",".join(ROW) for _ in range(20000))
    path.write_text(",".join(HEADER) + '\r\nL-1,"maria@example.org,' + rows)

    code, result = run_json(path)

    assert code == 1
    (error,) = result["errors"]
    assert error["code"] == "F_NOT_CSV" and error["line"] == 2 and "never closes" in error["message"]


def test_missing_column(course, tmp_path):
    path = tmp_path / "nocomplete.csv"
    path.write_text("external_user_id,compelted\r\nL-1,1\r\n")

    code, result = run_json(path)

    assert code == 1
    (error,) = result["errors"]
    assert error["code"] == "F_MISSING_COLUMN" and "'compelted' looks like complete" in error["message"]


def test_column_count(course, learner, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(csv_text([ROW]) + "L-1,maria@example.org\r\n")

    code, result = run_json(path)

    assert code == 1 and [(e["line"], e["code"]) for e in result["errors"]] == [(3, "E_COLUMN_COUNT")]


def test_too_large_by_bytes_and_by_rows(course, learner, write_csv, settings):
    path = write_csv([ROW] * 5)
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    code, result = run_json(path)
    assert code == 1 and result["errors"][0]["code"] == "F_TOO_LARGE"

    settings.IMPORT_MAX_UPLOAD_BYTES = 10_000
    settings.IMPORT_MAX_ROWS = 3
    code, result = run_json(path)
    assert code == 1 and result["errors"][0]["code"] == "F_TOO_LARGE" and "3" in result["errors"][0]["message"]
    assert not Enrollment.objects.exists()


def test_field_too_long(course, learner, write_csv):
    path = write_csv([ROW[:2] + ["x" * 151] + ROW[3:]])

    code, result = run_json(path)

    assert code == 1 and result["errors"][0]["code"] == "E_FIELD_TOO_LONG"


def test_course_level_import_without_a_course(write_csv, credit_types):
    path = write_csv([ROW])
    job = import_job_create(user=None, importer="course", course=None, path=path)

    job = import_job_validate(job=job)

    assert job.status == "failed" and job.failure_code == "F_COURSE_REQUIRED"
    shell = Course.objects.create(external_course_id="OLD", title="Old", kind="shell")
    job = import_job_validate(job=import_job_create(user=None, importer="course", course=shell, path=path))
    assert job.failure_code == "F_COURSE_REQUIRED" and "shell" in job.failure_message


def test_rows_of_one_learner_must_agree_and_credit_types_not_repeat(course, learner, write_csv):
    other_date = ROW[:6] + ["2026-09-15"] + ROW[7:]
    ancc = ROW[:7] + ["ancc", "2.00"]
    path = write_csv([ROW, ancc, ROW, other_date])

    code, result = run_json(path)

    assert code == 1
    assert [(e["line"], e["code"]) for e in result["errors"]] == [
        (4, "E_DUPLICATE_CREDIT_TYPE"),
        (5, "E_INCONSISTENT_ROWS"),
    ]
    assert "line 2" in result["errors"][0]["message"]


def test_course_mismatch_in_the_file(course, learner, write_csv):
    header = HEADER + ["external_course_id"]
    path = write_csv([ROW + ["CARD101"], ROW[:7] + ["ancc", "2.00", "CARD999"]], header=header)

    code, result = run_json(path)

    assert code == 1 and [(e["line"], e["code"]) for e in result["errors"]] == [(3, "E_COURSE_MISMATCH")]


def test_already_pending_learner_is_refused(course, write_csv):
    path = write_csv([["N-1", "noor@example.org", "", "", "2026-09-01", "0", "", "", ""]])
    assert run_json(path)[0] == 0
    again = write_csv([["N-1", "", "", "", "2026-09-01", "0", "", "", ""]])

    code, result = run_json(again)

    assert code == 1 and result["errors"][0]["code"] == "E_ALREADY_PENDING"


def test_learner_matched_by_email_case_insensitively(course, write_csv):
    user = make_learner("", "Jane.Doe@Example.org")
    path = write_csv([["", "JANE.DOE@example.ORG", "", "", "2026-09-01", "0", "", "", ""]])

    code, result = run_json(path)

    assert code == 0 and Enrollment.objects.get().user == user
