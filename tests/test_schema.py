"""The column schema held against the models: every column lands in the fields it declares, on every path.

schema.COLUMNS is the one declaration of the file's columns; the write lists of every table derive from
it (schema.LAYOUTS). These tests fail when a column's declared field, length or place in a table's
write list drifts from the models, and import a file with every column to check each value in the
database against the field the schema names for it.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from courses.models import Course
from credits.models import CreditAward
from enrollments.models import PROFILE_FIELDS, Enrollment, LearnerProfile, PendingRecord
from enrollments.rules import text_parse
from lms_import.importer import schema
from lms_import.importer.schema import COLUMNS, LAYOUTS, Row, header_read

from .conftest import run_cli

User = get_user_model()


def field_of(target: str) -> models.Field:
    label, name = target.rsplit(".", 1)
    return apps.get_model(label)._meta.get_field(name)


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
def test_each_column_is_stored_in_fields_that_exist_and_hold_its_text(column):
    assert column.stored_in, "every column says where its value goes"
    for target in column.stored_in:
        field = field_of(target)
        if isinstance(field, models.CharField):
            assert column.max_length == field.max_length, target
        else:
            assert column.parse is not text_parse or isinstance(field, models.DecimalField), target


def test_the_schema_names_the_profile_fields_as_the_profile_model_does():
    assert schema.PROFILE_FIELDS == PROFILE_FIELDS
    assert schema.PROFILE_COLUMNS == PROFILE_FIELDS


@pytest.mark.parametrize("table", LAYOUTS)
def test_each_write_list_is_the_model_s_columns_with_the_file_s_part_from_the_schema(table):
    layout = LAYOUTS[table]
    model = apps.get_model(layout.model)
    concrete = {f.column: f for f in model._meta.concrete_fields}
    assert len(set(layout.columns)) == len(layout.columns)
    assert set(layout.columns) <= set(concrete), set(layout.columns) - set(concrete)
    # Every column the database needs a value for is written (the primary key comes from its sequence).
    required = {c for c, f in concrete.items() if not f.null and not f.primary_key}
    assert required <= set(layout.columns), required - set(layout.columns)
    # The file's part: exactly the columns the schema stores in this model, in the schema's order.
    stored = [
        (c.name, target.rsplit(".", 1)[1])
        for c in COLUMNS
        for target in c.stored_in
        if target.rsplit(".", 1)[0] == layout.model
    ]
    assert list(zip(layout.file_columns, layout.file_fields, strict=True)) == stored
    assert layout.columns[len(layout.head) : len(layout.head) + len(stored)] == layout.file_fields


def test_a_row_has_every_column_by_name():
    assert Row.__slots__[: len(COLUMNS) + 1] == ("line", *schema.NAMES)
    header = header_read(list(schema.NAMES), global_importer=True)
    assert header.positions() == list(range(len(COLUMNS))) and not header.warnings


# -- every column lands where the schema says ---------------------------------------------------------------
VALUES = {
    "external_user_id": "N-77",
    "external_email": "New.Learner@Example.org",
    "first_name": "Zoë",
    "last_name": "O'Neill \\ Jr.",  # a backslash: COPY's text format must keep it
    "external_course_id": "",
    "title": "",
    "enrollment_start": "2026-03-02",
    "enrollment_end": "2026-06-30T17:00:00+02:00",
    "complete": "yes",
    "date_completed": "2026-04-15T09:30",
    "credit_type": "ama_pra_1",
    "credits": "1.75",
    "credit_expiration": "2028-12-31",
    "attended": "1",
    "participant_category": "1",
    "dob_month": "4",
    "dob_day": "09",
    "licensing_state": "CA",
    "license_id": "0012345",
    "certifying_board": "ABIM",
    "board_id": "000981",
}


def expected(column, text):
    value, found = column.parse(text, 2, column.name, timezone.get_current_timezone())
    assert not found
    if isinstance(field_of(column.stored_in[0]), models.DecimalField):
        return Decimal(text)  # credits: parsed with its row by credit_check
    return value


def assert_stored(records: dict, values: dict) -> int:
    checked = 0
    for column in COLUMNS:
        for target in column.stored_in:
            label, name = target.rsplit(".", 1)
            if label not in records:
                continue
            stored = getattr(records[label], name)
            assert stored == expected(column, values[column.name]), (target, stored)
            checked += 1
    return checked


@pytest.fixture
def every_column(write_csv):
    def write(**changes):
        values = VALUES | changes
        return write_csv([list(values.values())], header=list(values)), values

    return write


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("producer", [True, False], ids=["producer", "one-process"])
def test_every_column_lands_in_its_fields_for_an_account_and_its_records(course, every_column, settings, producer):
    settings.IMPORT_PRODUCER_PROCESS = producer
    path, values = every_column()

    code, out, _ = run_cli(path, "--course", "CARD101", "--create-accounts")

    assert code == 0, out
    user = User.objects.get(email="new.learner@example.org")
    enrollment = Enrollment.objects.get(user=user)
    award = CreditAward.objects.get(enrollment=enrollment)
    records = {
        "auth.User": user,
        "enrollments.LearnerProfile": LearnerProfile.objects.get(user=user),
        "enrollments.Enrollment": enrollment,
        "credits.CreditAward": award,
        "credits.CreditType": award.credit_type,
    }
    assert assert_stored(records, values) == 19  # user 3, profile 7, enrollment 6, award 2, credit type 1
    assert user.username == "new.learner@example.org" and not user.has_usable_password()
    assert enrollment.source == award.source == "course_import" and enrollment.course == course


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("producer", [True, False], ids=["producer", "one-process"])
def test_every_column_lands_in_its_fields_of_a_held_row_and_a_shell(credit_types, every_column, settings, producer):
    settings.IMPORT_PRODUCER_PROCESS = producer
    path, values = every_column(external_course_id="OLD-9", title="Ethics 1998")

    code, out, _ = run_cli(path, "--global")

    assert code == 0, out
    pending = PendingRecord.objects.get()
    shell = Course.objects.get(external_course_id="OLD-9")
    records = {"enrollments.PendingRecord": pending, "courses.Course": shell}
    assert assert_stored(records, values) == 20  # pending record 18, shell 2
    assert pending.course == shell and shell.kind == "shell" and pending.credit_type.machine_name == "ama_pra_1"
    assert pending.credit_expiration == date(2028, 12, 31)
