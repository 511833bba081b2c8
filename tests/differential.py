"""The differential tests' harness: generated files, the catalog they run against, and comparable snapshots.

Usable both in pytest (PostgreSQL, tests/test_differential.py) and in a plain Django process
(SQLite, tests/differential_sqlite.py), so that every path an import can take starts from the same
site and is described the same way:

- `scenario_build(name)`: a seeded CSV file, with the options of its job, whose rows hit every row-level
  code of SPEC §5 and every row-driven warning, mixed with many valid rows in a shuffled order, so that
  the rows of one learner or enrollment fall into different batches when batches are small.
- `catalog_build()`: the site each run starts from (credit types, courses, learners with and without
  profiles, an enrollment with credit, a record waiting in the holding table).
- `run_and_snapshot(...)`: one import through the services, then everything the database holds and
  everything the job says, with ids replaced by natural keys and times made comparable.
"""

import csv
import io
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone as django_timezone

from core.findings import (
    E_ALREADY_ENROLLED,
    E_ALREADY_PENDING,
    E_COLUMN_COUNT,
    E_COMPLETE_INVALID,
    E_CONTROL_CHARACTER,
    E_COURSE_MISMATCH,
    E_COURSE_MISSING,
    E_CREDIT_EXISTS,
    E_CREDIT_ON_INCOMPLETE,
    E_CREDIT_TYPE_MISSING,
    E_CREDIT_TYPE_NOT_OFFERED,
    E_CREDIT_TYPE_UNKNOWN,
    E_CREDITS_INCREMENT,
    E_CREDITS_INVALID,
    E_CREDITS_MISSING,
    E_CREDITS_NOT_VARIABLE,
    E_CREDITS_OVER_MAX,
    E_DATE_FUTURE,
    E_DATE_INVALID,
    E_DATE_ORDER,
    E_DATE_REQUIRED,
    E_DUPLICATE_CREDIT_TYPE,
    E_EMAIL_INVALID,
    E_FIELD_TOO_LONG,
    E_INCONSISTENT_ROWS,
    E_LEARNER_ID_MISSING,
    E_TITLE_MISSING,
    E_VALUE_INVALID,
    W_AUTO_COMPLETE,
    W_HEADER_NORMALIZED,
    W_LEGACY_NOT_IN_PARS,
    W_PENDING_LEARNERS,
    W_PROFILE_CONFLICT,
    W_SHELLS_CREATED,
    W_UNKNOWN_COLUMN,
)
from core.text import email_key
from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditAward, CreditType
from enrollments.models import PROFILE_FIELDS, Enrollment, LearnerProfile, PendingRecord
from lms_import.models import ImportJob
from lms_import.services import import_job_apply, import_job_create, import_job_validate

SEED = 20261202
ADMIN = "diff-admin"
MODES = ("preview", "apply_skip", "apply_noskip")

ROW_CODES = (
    E_LEARNER_ID_MISSING,
    E_EMAIL_INVALID,
    E_COURSE_MISSING,
    E_COURSE_MISMATCH,
    E_TITLE_MISSING,
    E_COMPLETE_INVALID,
    E_DATE_INVALID,
    E_DATE_REQUIRED,
    E_DATE_FUTURE,
    E_DATE_ORDER,
    E_CREDIT_ON_INCOMPLETE,
    E_CREDIT_TYPE_MISSING,
    E_CREDITS_MISSING,
    E_CREDIT_TYPE_UNKNOWN,
    E_CREDIT_TYPE_NOT_OFFERED,
    E_CREDITS_INVALID,
    E_CREDITS_OVER_MAX,
    E_CREDITS_INCREMENT,
    E_CREDITS_NOT_VARIABLE,
    E_DUPLICATE_CREDIT_TYPE,
    E_INCONSISTENT_ROWS,
    E_ALREADY_ENROLLED,
    E_CREDIT_EXISTS,
    E_ALREADY_PENDING,
    E_FIELD_TOO_LONG,
    E_CONTROL_CHARACTER,
    E_COLUMN_COUNT,
    E_VALUE_INVALID,
)
ROW_WARNINGS = (
    W_PENDING_LEARNERS,
    W_SHELLS_CREATED,
    W_LEGACY_NOT_IN_PARS,
    W_PROFILE_CONFLICT,
    W_AUTO_COMPLETE,
    W_HEADER_NORMALIZED,
    W_UNKNOWN_COLUMN,
)


# -- the catalog ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Offer:
    max_credits: Decimal
    variable: bool
    increment: Decimal


# What the generator may award: the catalog's offers (kept in one place so that the two cannot drift).
OFFERS = {
    "CARD101": {
        "ama_pra_1": Offer(Decimal("2.00"), True, Decimal("0.25")),
        "ancc": Offer(Decimal("2.00"), False, Decimal("0.25")),
        "abim_moc": Offer(Decimal("2.00"), True, Decimal("0.50")),
    },
    "ETH200": {  # no course object at all: the completion engine completes on enrollment
        "ama_pra_1": Offer(Decimal("1.00"), False, Decimal("0.25")),
        "ancc": Offer(Decimal("1.50"), False, Decimal("0.25")),
    },
    "NEURO300": {
        "acpe": Offer(Decimal("3.00"), True, Decimal("0.25")),
        "ama_pra_1": Offer(Decimal("3.00"), True, Decimal("0.50")),
    },
}
CREDIT_TYPES = {
    "ama_pra_1": "AMA PRA Category 1 Credit",
    "ancc": "ANCC Contact Hours",
    "abim_moc": "ABIM MOC Points",
    "acpe": "ACPE Contact Hours",
}
PARS = ("dob_month", "dob_day", "licensing_state", "license_id", "certifying_board", "board_id")


def catalog_build() -> None:
    """The site every differential run starts from. Plain ORM, so pytest and a subprocess build the same."""
    User = get_user_model()
    User.objects.create(username=ADMIN, email="admin@example.org", is_staff=True, is_superuser=True)
    types = {name: CreditType.objects.create(machine_name=name, name=title) for name, title in CREDIT_TYPES.items()}

    card = Course.objects.create(
        external_course_id="CARD101", title="Cardiology Update", pars_activity_id="0012345", certificate_enabled=True
    )
    CourseObject.objects.create(course=card, title="Claim credit", kind="credit_claim", required=True)
    eth = Course.objects.create(external_course_id="ETH200", title="Ethics Grand Rounds")
    neuro = Course.objects.create(external_course_id="NEURO300", title="Neurology Review", pars_activity_id="0099")
    CourseObject.objects.create(course=neuro, title="Slides", kind="content", required=False, position=1)
    CourseObject.objects.create(course=neuro, title="Post-test", kind="post_test", required=True, position=2)
    Course.objects.create(external_course_id="OLD-2019", title="ACLS 2019", kind=Course.KIND_SHELL)
    for course in (card, eth, neuro):
        for name, offer in OFFERS[course.external_course_id].items():
            CourseCredit.objects.create(
                course=course,
                credit_type=types[name],
                max_credits=offer.max_credits,
                variable=offer.variable,
                increment=offer.increment,
            )

    def learner(username, email, first, last, external_id=None, **profile):
        user = User.objects.create(username=username, email=email, first_name=first, last_name=last)
        if external_id is not None:
            LearnerProfile.objects.create(user=user, external_user_id=external_id, **profile)
        return user

    learner("maria@example.org", "maria@example.org", "Maria", "Garcia", "L-1", **_MARIA)
    learner("james@example.org", "james@example.org", "James", "Chen", "L-2")
    learner("li@example.org", "li@example.org", "Li", "Wei", "L-3", licensing_state="CA")
    # Without a profile, matched by e-mail only (in another case than the file's).
    learner("ann.lee", "Ann.Lee@Example.org", "Ann", "Lee")
    learner("soren", "SØren.Ås@Example.org", "Søren", "Ås")
    learner("kim@example.org", "kim@example.org", "Kim", "Kay")
    enrolled = learner("enr@example.org", "enr@example.org", "Eno", "Enrolled", "L-ENR")
    learner("shared-1", "shared@example.org", "Sam", "One", "S-1")
    learner("shared-2", "Shared@Example.org", "Sam", "Two", "S-2")
    # A username a new learner of the files derives too (external id "legacy.login", no e-mail).
    learner("legacy.login", "legacy@example.org", "Leo", "Legacy", "L-LEG")

    enrollment = Enrollment.objects.create(
        user=enrolled,
        course=card,
        enrollment_start=datetime(2024, 1, 10, tzinfo=UTC),
        complete=True,
        date_completed=datetime(2024, 2, 1, 15, 30, tzinfo=UTC),
        participant_category="physician",
    )
    CreditAward.objects.create(enrollment=enrollment, credit_type=types["ama_pra_1"], credits=Decimal("2.00"))
    # A row of an earlier import, waiting for an account with this e-mail or external id.
    PendingRecord.objects.create(
        line=2,
        email="pat@example.org",
        external_user_id="P-1",
        first_name="Pat",
        last_name="Pending",
        course=card,
        enrollment_start=datetime(2024, 3, 1, tzinfo=UTC),
        complete=True,
        date_completed=datetime(2024, 3, 20, tzinfo=UTC),
        credit_type=types["ama_pra_1"],
        credits=Decimal("1.00"),
        licensing_state="OR",
    )


_MARIA = {
    "dob_month": "03",
    "dob_day": "07",
    "licensing_state": "NY",
    "license_id": "0012345",
    "certifying_board": "ABIM",
    "board_id": "111111",
}


# -- the files --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """A generated file and the options its job is created with."""

    name: str
    importer: str  # "course" | "global"
    course: str | None
    create_accounts: bool
    allow_auto_complete: bool
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: tuple[str | None, ...] = ()  # what each header cell means (None: a column the importer ignores)

    def csv_bytes(self) -> bytes:
        return csv_bytes(self.header, self.rows, encoding=self.encoding, delimiter=self.delimiter)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.csv_bytes())
        return path

    @property
    def options(self) -> dict:
        return {
            "importer": self.importer,
            "course": self.course,
            "create_accounts": self.create_accounts,
            "allow_auto_complete": self.allow_auto_complete,
        }


def csv_bytes(header, rows, *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@dataclass
class Person:
    ext: str
    email: str
    first: str = ""
    last: str = ""
    pars: dict | None = None  # the PARS data the file gives for this learner


@dataclass
class Stay:
    """The enrollment fields of one learner in one course (every row of it repeats them)."""

    start: datetime | None
    end: datetime | None
    complete: bool
    completed: datetime | None
    attended: bool | None
    category: str


_EAST, _WEST = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
_TRUE, _FALSE = ("1", "yes", "true", "Y", "TRUE", "Yes"), ("0", "no", "false", "N", "FALSE")
_CATEGORY = {"physician": ("physician", "1", "Physician", "PHYSICIAN"), "other": ("other", "0", "Other")}
_FIRST = ("Ada", "Ben", "Chloé", "Dev", "Eun-ji", "Farah", "Gus", "Hana", "Ivo", "Jon", "Kemal", "Lupe", "Mo", "Noor")
_LAST = ("Ames", "Brook", "Çelik", "Diaz", "Eze", "Frost", "Gray", "Holm", "Ito", "Jansen", "Khan", "Lund", "Ødegaard")
_STATES = ("NY", "CA", "TX", "WA", "OR", "MA", "IL")
_BOARDS = ("ABIM", "ABFM", "ABP", "ABS")


class _Rows:
    """Row specs (column name -> text) of one file, and how they are spelled."""

    def __init__(self, rng: random.Random, *, course_column: str | None):
        self.rng = rng
        self.course_column = course_column
        self.body: list[dict] = []
        self.head: list[dict] = []  # pinned to the start of the file
        self.tail: list[dict] = []  # pinned to its end

    # spelling: one meaning, many ways to write it ---------------------------------------------------
    def moment(self, value: datetime | None) -> str:
        if value is None:
            return ""
        choices = [
            value.strftime("%Y-%m-%dT%H:%M:%S"),  # naive: the site's zone (UTC)
            value.astimezone(_EAST).isoformat(),
            value.astimezone(_WEST).isoformat(sep=" "),
            value.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ]
        if value.time() == time(0):
            choices += [value.date().isoformat()] * 3
        text = self.rng.choice(choices)
        return f" {text} " if self.rng.random() < 0.1 else text

    def flag(self, value: bool | None) -> str:
        if value is None:
            return ""
        return self.rng.choice(_TRUE if value else _FALSE)

    def credit_type(self, machine_name: str) -> str:
        """A credit type by its machine name, or by its name in some case (credits.rules.credit_type_resolve)."""
        roll = self.rng.random()
        if machine_name not in CREDIT_TYPES or roll >= 0.3:
            return machine_name
        name = CREDIT_TYPES[machine_name]
        return name if roll < 0.15 else (name.upper() if roll < 0.22 else name.lower())

    def credits(self, value: Decimal) -> str:
        return self.rng.choice([f"{value:.2f}", format(value.normalize(), "f"), f" {value:.2f}"])

    def email(self, email: str) -> str:
        if not email:
            return ""
        roll = self.rng.random()
        if roll < 0.2:
            return email.upper()
        if roll < 0.35:
            return email.capitalize()
        return f" {email}" if roll < 0.45 else email

    def person(self, person: Person, *, ext: bool = True, email: bool = True) -> dict:
        cells = {
            "external_user_id": (f" {person.ext} " if self.rng.random() < 0.1 else person.ext) if ext else "",
            "external_email": self.email(person.email) if email else "",
            "first_name": person.first,
            "last_name": person.last,
        }
        for name, value in (person.pars or {}).items():
            if name in ("dob_month", "dob_day") and value.startswith("0") and self.rng.random() < 0.5:
                value = value[1:]  # 03 and 3 are the same month
            cells[name] = value
        return cells

    def stay(self, stay: Stay) -> dict:
        category = self.rng.choice(_CATEGORY[stay.category]) if stay.category else ""
        return {
            "enrollment_start": self.moment(stay.start),
            "enrollment_end": self.moment(stay.end),
            "complete": self.flag(stay.complete),
            "date_completed": self.moment(stay.completed),
            "attended": self.flag(stay.attended),
            "participant_category": category,
        }

    # what the file holds --------------------------------------------------------------------------------
    def add(self, cells: dict, *, course: str = "", title: str = "", where: str = "body") -> dict:
        row = dict(cells)
        if self.course_column == "optional":  # the course-level file: the id may be left out
            if course and "external_course_id" not in row:
                row["external_course_id"] = course if self.rng.random() < 0.6 else f" {course} "
        elif course and "external_course_id" not in row:
            row["external_course_id"] = course
        if title and "title" not in row:
            row["title"] = title
        {"body": self.body, "head": self.head, "tail": self.tail}[where].append(row)
        return row

    def enrollment(
        self,
        person: Person,
        course: str,
        stay: Stay,
        awards: list[tuple[str, Decimal]],
        *,
        title: str = "",
        identity: str = "both",
        where: str = "body",
    ) -> list[dict]:
        """One row per credit type (or one row without credit), identical but for credit_type/credits."""
        rows = []
        for credit_type, credits in awards or [("", None)]:
            cells = self.person(person, ext=identity in ("both", "ext"), email=identity in ("both", "email"))
            cells |= self.stay(stay)
            if credit_type:
                cells |= {"credit_type": self.credit_type(credit_type), "credits": self.credits(credits)}
                if self.rng.random() < 0.3:
                    expiration = date(2027, 1, 1) + timedelta(days=self.rng.randrange(0, 700))
                    text = expiration.isoformat()
                    cells["credit_expiration"] = text if self.rng.random() < 0.8 else f"{text}T00:00:00"
            rows.append(self.add(cells, course=course, title=title, where=where))
        return rows

    def ordered(self) -> list[dict]:
        body = list(self.body)
        self.rng.shuffle(body)
        return self.head + body + self.tail


def _stay(rng: random.Random, *, year: int = 2023, complete: bool | None = None) -> Stay:
    start = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 700))
    if rng.random() < 0.5:
        start += timedelta(hours=rng.randrange(7, 18), minutes=rng.choice((0, 15, 30, 45)))
    complete = rng.random() < 0.75 if complete is None else complete
    completed = None
    if complete:
        completed = datetime.combine(start.date() + timedelta(days=rng.randrange(1, 60)), time(), tzinfo=UTC)
        if rng.random() < 0.4:
            completed += timedelta(hours=rng.randrange(8, 20), minutes=rng.choice((0, 10, 50)))
    end = None
    if rng.random() < 0.4:
        end = datetime.combine(start.date() + timedelta(days=rng.randrange(1, 120)), time(), tzinfo=UTC)
    return Stay(
        start=None if rng.random() < 0.08 else start,
        end=end,
        complete=complete,
        completed=completed,
        attended=rng.choice((None, True, False)),
        category=rng.choice(("", "physician", "other")),
    )


def _awards(rng: random.Random, course: str, stay: Stay) -> list[tuple[str, Decimal]]:
    """Valid credit for one enrollment: a few of the course's types (a shell takes any type and any amount)."""
    if not stay.complete:
        return []
    offers = OFFERS.get(course)
    if offers is None:
        types = rng.sample(sorted(CREDIT_TYPES), rng.randrange(1, 3))
        return [(t, Decimal(rng.randrange(0, 2000)) / 100) for t in types]
    types = rng.sample(sorted(offers), rng.randrange(1, len(offers) + 1))
    awards = []
    for name in types:
        offer = offers[name]
        if not offer.variable:
            awards.append((name, offer.max_credits))
            continue
        steps = int(offer.max_credits / offer.increment)
        awards.append((name, offer.increment * rng.randrange(1, steps + 1)))
    return awards


def _pars(rng: random.Random) -> dict | None:
    if rng.random() < 0.5:
        return None
    return {
        "dob_month": f"{rng.randrange(1, 13):02d}",
        "dob_day": f"{rng.randrange(1, 29):02d}",
        "licensing_state": rng.choice(_STATES),
        "license_id": f"{rng.randrange(0, 10**7):07d}",  # leading zeros must survive
        "certifying_board": rng.choice(_BOARDS),
        "board_id": str(rng.randrange(100000, 999999)),
    }


def _new_people(rng: random.Random, prefix: str, count: int) -> list[tuple[Person, str]]:
    """New learners and which identifiers their rows carry: both, the external id only, or the e-mail only."""
    people = []
    for n in range(1, count + 1):
        identity = rng.choices(("both", "ext", "email"), weights=(6, 3, 2))[0]
        ext = f"{prefix}-{n:03d}"
        email = f"{prefix.lower()}{n:03d}@example.org"
        person = Person(ext, email, rng.choice(_FIRST), rng.choice(_LAST), _pars(rng))
        people.append((person, identity))
    return people


MARIA = Person("L-1", "maria@example.org", "Maria", "Garcia")
JAMES = Person("L-2", "james@example.org", "James", "Chen")
LI = Person("L-3", "li@example.org", "Li", "Wei", {"licensing_state": "CA", "license_id": "0099"})
ANN = Person("", "ann.lee@example.org", "Ann", "Lee", {"dob_month": "11", "dob_day": "30", "licensing_state": "WA"})
ENROLLED = Person("L-ENR", "enr@example.org", "Eno", "Enrolled")
PAT = Person("P-1", "pat@example.org", "Pat", "Pending")
LEGACY = Person("L-LEG", "legacy@example.org")


def _errors(rows: _Rows, rng: random.Random, course: str, prefix: str) -> None:
    """Rows that each break one rule (mostly of learners who appear nowhere else)."""
    counter = iter(range(1, 1000))

    def fresh() -> Person:
        n = next(counter)
        return Person(f"{prefix}-{n:03d}", f"{prefix.lower()}{n:03d}@example.org", "Err", f"Row{n}")

    def row(person: Person | None = None, *, stay: Stay | None = None, credit=("", ""), **cells) -> dict:
        person = person or fresh()
        stay = stay or Stay(datetime(2024, 5, 2, 9, tzinfo=UTC), None, True, datetime(2024, 6, 1, tzinfo=UTC), None, "")
        values = rows.person(person) | rows.stay(stay) | {"credit_type": credit[0], "credits": credit[1]}
        return rows.add(values | cells, course=course)

    offers = OFFERS.get(course, {})
    variable = next(name for name, offer in offers.items() if offer.variable)
    top = offers[variable].max_credits
    incomplete = Stay(datetime(2024, 5, 2, tzinfo=UTC), None, False, None, None, "")

    row(external_user_id="", external_email="")  # E_LEARNER_ID_MISSING
    row(external_user_id=" ", external_email="  ", first_name="Nobody")
    row(external_email="bad-address")  # E_EMAIL_INVALID
    row(external_email="two@@example.org")
    row(external_user_id="", external_email="a b@example.org")
    row(complete="maybe")  # E_COMPLETE_INVALID
    row(complete="", date_completed="")
    row(enrollment_start="3/14/2024")  # E_DATE_INVALID
    row(date_completed="2024-13-01")
    row(enrollment_end="yesterday")
    row(credit=(variable, str(top)), credit_expiration="31/12/2027")
    row(date_completed="")  # E_DATE_REQUIRED
    row(date_completed="2999-01-01")  # E_DATE_FUTURE
    row(enrollment_start="2024-05-02", enrollment_end="2024-05-01")  # E_DATE_ORDER
    row(enrollment_start="2024-05-02T10:00:00", date_completed="2024-05-02T09:59:00")
    row(stay=incomplete, credit=(variable, "1.00"))  # E_CREDIT_ON_INCOMPLETE
    row(stay=incomplete, credit=(variable, ""))
    row(credit=("", "1.00"))  # E_CREDIT_TYPE_MISSING
    row(credit=(variable, ""))  # E_CREDITS_MISSING
    row(credit=("cme_bogus", "1.00"))  # E_CREDIT_TYPE_UNKNOWN
    row(credit=(variable, "abc"))  # E_CREDITS_INVALID
    row(credit=(variable, "-1"))
    row(credit=(variable, "1.234"))
    row(credit=(variable, "12345"))
    row(credit=(variable, "9.00"))  # E_CREDITS_OVER_MAX
    row(first_name="X" * 151)  # E_FIELD_TOO_LONG
    row(license_id="9" * 65, dob_month="123")
    row(last_name="Smith\x07")  # E_CONTROL_CHARACTER
    row(first_name="A\x00B")
    row(last_name="Two\nlines")  # a quoted value over two lines: the rows after it keep their file lines
    row(attended="maybe")  # E_VALUE_INVALID
    row(participant_category="nurse")
    row(dob_month="13", dob_day="0")
    row(Person("S-9", "SHARED@example.org"))  # two accounts have this e-mail
    row(Person("Z-1", "maria@example.org"))  # the e-mail's account has another external id
    for name, offer in offers.items():
        if offer.increment > Decimal("0.25") and offer.variable:  # E_CREDITS_INCREMENT
            row(credit=(name, str(offer.increment + Decimal("0.25"))))
        if not offer.variable:  # E_CREDITS_NOT_VARIABLE
            row(credit=(name, str(offer.max_credits - Decimal("0.50"))))
    not_offered = sorted(set(CREDIT_TYPES) - set(offers))[0]
    row(credit=(not_offered, "1.00"))  # E_CREDIT_TYPE_NOT_OFFERED
    row(credit=(CREDIT_TYPES[not_offered].upper(), "1.00"))  # the same, by its name
    row(credit=(CREDIT_TYPES[variable], "9.00"))  # E_CREDITS_OVER_MAX, the type by its name
    row(credit=(CREDIT_TYPES[variable] + " Credit", "1.00"))  # E_CREDIT_TYPE_UNKNOWN: not quite a name

    # E_DUPLICATE_CREDIT_TYPE: two rows of one type, and two rows without credit, of one enrollment.
    twice = fresh()
    stay = _stay(rng, complete=True)
    rows.enrollment(twice, course, stay, [(variable, top), (variable, top)])
    # ... and one type given once by its machine name and once by its name.
    by_name = rows.enrollment(fresh(), course, stay, [(variable, top), (variable, top)])
    by_name[0]["credit_type"], by_name[1]["credit_type"] = variable, CREDIT_TYPES[variable]
    rows.enrollment(fresh(), course, Stay(stay.start, None, False, None, True, "other"), [])
    again = rows.body[-1]
    rows.add(dict(again), course=course)
    # E_INCONSISTENT_ROWS: rows of one enrollment that disagree, and one learner under two identities.
    pair = [(name, offers[name].max_credits) for name in sorted(offers)[:2]]
    _, second = rows.enrollment(fresh(), course, _stay(rng, complete=True), pair)
    second["enrollment_start"] = "2020-01-01"
    twin = fresh()
    rows.enrollment(twin, course, _stay(rng, complete=False), [])
    rows.enrollment(Person(twin.ext, "someone.else@example.org"), course, _stay(rng, complete=False), [])

    # E_COLUMN_COUNT: one value too many, one too few.
    row(_extra="surplus")
    row(_extra=None)


def _header(rng: random.Random, cells: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    rng.shuffle(cells)
    return cells


def _render(rng: random.Random, header: list[tuple[str, str | None]], specs: list[dict]) -> dict:
    rendered = []
    for spec in specs:
        values = []
        for _, name in header:
            if name is None:  # an unknown column: whatever the admin typed there
                values.append(rng.choice(("", "", "called twice", "see email, 3/4", "n/a")))
            else:
                values.append(spec.get(name) or "")
        if "_extra" in spec:
            if spec["_extra"] is None:
                values.pop()
            else:
                values.append(spec["_extra"])
        rendered.append(tuple(values))
    # Rows of empty cells (spreadsheets leave them) are skipped, and still count as lines of the file.
    for _ in range(3):
        rendered.insert(rng.randrange(len(rendered)), ("",) * len(header))
    return {
        "header": tuple(cell for cell, _ in header),
        "rows": tuple(rendered),
        "columns": tuple(name for _, name in header),
    }


def _course_scenario(rng: random.Random) -> Scenario:
    """The course-level importer into CARD101 (a required course object; variable, fixed and stepped credit).

    Without "create accounts": learners without an account go to the holding table."""
    rows = _Rows(rng, course_column="optional")
    course = "CARD101"
    # Existing learners, matched by external id, by e-mail in another case, or by both.
    rows.enrollment(
        Person("L-1", MARIA.email, pars=_MARIA | {"licensing_state": "NJ"}),  # differs from the profile: a conflict
        course,
        _stay(rng, complete=True),
        [("ama_pra_1", Decimal("1.75")), ("abim_moc", Decimal("2.00"))],
    )
    # A blank profile, filled from the file; its rows disagree on the state, and the first row's value wins.
    stay = _stay(rng, complete=True)
    james = rows.enrollment(
        Person("L-2", JAMES.email, pars={"licensing_state": "TX", "dob_month": "09", "dob_day": "01"}),
        course,
        stay,
        [("ama_pra_1", Decimal("2.00")), ("ancc", Decimal("2.00")), ("abim_moc", Decimal("1.50"))],
    )
    james[-1]["licensing_state"] = "OK"
    rows.enrollment(LI, course, _stay(rng, complete=False), [], identity="ext")
    rows.enrollment(ANN, course, _stay(rng, complete=True), [("ama_pra_1", Decimal("0.50")), ("ancc", Decimal("2.00"))])
    # Matched by e-mail: ASCII letters fold, others must be as the account has them (core.text.email_key).
    soren = Person("", "SØREN.Ås@EXAMPLE.ORG")
    rows.enrollment(soren, course, _stay(rng, complete=True), [("ancc", Decimal("2"))], identity="email")
    # Look-alikes of accounts' e-mails match no one: a learner without an account.
    kelvin = Person("", "\u212aim@example.org", "Kim", "Look")  # the Kelvin sign, not k (kim@example.org)
    rows.enrollment(kelvin, course, _stay(rng, complete=False), [], identity="email")
    rows.enrollment(LEGACY, course, _stay(rng, complete=True), [("abim_moc", Decimal("0.50"))], identity="ext")
    # What the database already holds: an enrollment with credit, and a record waiting in the holding table.
    done = Stay(datetime(2024, 1, 10, tzinfo=UTC), None, True, datetime(2024, 2, 1, 15, 30, tzinfo=UTC), None, "")
    rows.enrollment(ENROLLED, course, done, [("ama_pra_1", Decimal("2.00"))])  # E_CREDIT_EXISTS
    rows.enrollment(ENROLLED, course, done, [("ancc", Decimal("2.00"))], identity="email")  # E_ALREADY_ENROLLED
    rows.enrollment(PAT, course, _stay(rng, complete=False), [], identity="email")  # E_ALREADY_PENDING
    rows.enrollment(PAT, course, _stay(rng, complete=False), [], identity="ext")

    for person, identity in _new_people(rng, "N", 45):
        stay = _stay(rng)
        rows.enrollment(person, course, stay, _awards(rng, course, stay), identity=identity)
    _errors(rows, rng, course, "E")
    mismatch = rows.enrollment(Person("M-1", "m1@example.org"), course, _stay(rng, complete=False), [])
    mismatch[0]["external_course_id"] = "ETH200"  # E_COURSE_MISMATCH

    header = _header(
        rng,
        [
            ("uid", "external_user_id"),
            ("Email", "external_email"),
            ("First Name", "first_name"),
            ("last_name", "last_name"),
            ("course_id", "external_course_id"),
            ("Enrollment Start", "enrollment_start"),
            ("enrollment_end", "enrollment_end"),
            ("complete", "complete"),
            ("date_completed", "date_completed"),
            ("credit_type", "credit_type"),
            ("credits", "credits"),
            ("credit_expiration", "credit_expiration"),
            ("attended", "attended"),
            ("participant_category", "participant_category"),
            ("DOB_Month", "dob_month"),
            ("dob_day", "dob_day"),
            ("licensing_state", "licensing_state"),
            ("NPI", "license_id"),
            ("certifying-board", "certifying_board"),
            ("board_id", "board_id"),
            ("Notes", None),
        ],
    )
    return Scenario(
        "course", "course", course, False, False, **_render(rng, header, rows.ordered()), encoding="utf-8-sig"
    )


def _global_scenario(rng: random.Random) -> Scenario:
    """The global importer with "create accounts": existing courses (one that completes on enrollment), an
    existing shell, shells to create (some rows without their title), learners new and existing."""
    rows = _Rows(rng, course_column="required")
    courses = ["CARD101", "NEURO300", "ETH200", "OLD-2019", "NEW-A", "NEW-B", "NEW-C", "NEW-D"]
    titles = {"NEW-A": "Airway 2018", "NEW-B": "Burns, Wounds & Care", "NEW-C": "Cardio (legacy)", "NEW-D": "Diabetes"}

    def title_of(course: str) -> str:
        return titles.get(course, "")

    # The learner who waits in the holding table (for CARD101) gets an account from a row of another course;
    # the account takes the waiting record. A later row of that learner for CARD101 is E_ALREADY_PENDING.
    rows.enrollment(PAT, "NEURO300", _stay(rng, complete=False), [], where="head")
    rows.enrollment(PAT, "CARD101", _stay(rng, complete=False), [], where="tail")
    # Two new learners whose derived usernames clash (an e-mail, and an external id that looks like one).
    rows.enrollment(Person("", "x@example.org", "Xena", "Mail"), "NEURO300", _stay(rng), [], identity="email")
    rows.head.append(rows.body.pop())
    rows.enrollment(Person("x@example.org", ""), "OLD-2019", _stay(rng, complete=False), [], identity="ext")
    rows.tail.insert(0, rows.body.pop())
    # A new learner whose derived username an existing account has.
    rows.enrollment(Person("legacy.login", ""), "NEW-A", _stay(rng, complete=False), [], title="Airway 2018")

    rows.enrollment(Person("L-1", ""), "NEURO300", _stay(rng, complete=True), [("acpe", Decimal("2.75"))])
    for course in ("NEURO300", "ETH200"):
        stay = _stay(rng)
        rows.enrollment(Person("L-2", JAMES.email.upper()), course, stay, _awards(rng, course, stay))
    rows.enrollment(ANN, "NEW-A", _stay(rng, complete=True), [("acpe", Decimal("7.77"))], title="Airway 2018")
    rows.enrollment(ANN, "ETH200", _stay(rng, complete=False), [], identity="email")
    rows.enrollment(LI, "OLD-2019", _stay(rng, complete=True), [("abim_moc", Decimal("12.5"))])
    done = Stay(datetime(2024, 1, 10, tzinfo=UTC), None, True, datetime(2024, 2, 1, 15, 30, tzinfo=UTC), None, "")
    rows.enrollment(ENROLLED, "CARD101", done, [("ama_pra_1", Decimal("2.00"))])  # E_CREDIT_EXISTS
    rows.enrollment(ENROLLED, "CARD101", done, [("abim_moc", Decimal("2.00"))])  # E_ALREADY_ENROLLED
    rows.enrollment(ENROLLED, "NEURO300", _stay(rng, complete=True), [("ama_pra_1", Decimal("3.00"))])

    for person, identity in _new_people(rng, "G", 40):
        for course in rng.sample(courses, rng.choice((1, 1, 2, 3))):
            stay = _stay(rng, year=2019)
            rows.enrollment(person, course, stay, _awards(rng, course, stay), title=title_of(course), identity=identity)
    _errors(rows, rng, "NEURO300", "F")
    rows.enrollment(Person("F-900", "f900@example.org"), "", _stay(rng, complete=False), [])  # E_COURSE_MISSING
    rows.enrollment(Person("F-901", ""), "NEW-NOTITLE", _stay(rng, complete=False), [])  # E_TITLE_MISSING
    rows.enrollment(Person("F-902", ""), "NEW-E", _stay(rng, complete=False), [])  # E_TITLE_MISSING,
    rows.enrollment(Person("F-903", ""), "NEW-E", _stay(rng, complete=False), [], title="Endocrine")  # then a title
    rows.enrollment(Person("F-904", ""), "K" * 129, _stay(rng, complete=False), [], title="Too long")

    header = _header(
        rng,
        [
            ("external_user_id", "external_user_id"),
            ("mail", "external_email"),
            (" first_name ", "first_name"),
            ("Last Name", "last_name"),
            ("Course_ID", "external_course_id"),
            ("Course Title", "title"),
            ("enrollment_start", "enrollment_start"),
            ("Enrollment-End", "enrollment_end"),
            ("Complete", "complete"),
            ("date_completed", "date_completed"),
            ("credit_type", "credit_type"),
            ("Credits", "credits"),
            ("credit_expiration", "credit_expiration"),
            ("attended", "attended"),
            ("participant_category", "participant_category"),
            ("dob_month", "dob_month"),
            ("dob_day", "dob_day"),
            ("Licensing State", "licensing_state"),
            ("license_id", "license_id"),
            ("certifying_board", "certifying_board"),
            ("Board ID", "board_id"),
            ("comment", None),
        ],
    )
    file = _render(rng, header, rows.ordered())
    # Excel's plain "CSV" in Europe: Windows-1252 (W_ENCODING_GUESSED) and semicolons.
    return Scenario("global", "global", None, True, True, **file, encoding="cp1252", delimiter=";")


def scenario_build(name: str, seed: int = SEED) -> Scenario:
    rng = random.Random(f"{seed}-{name}")
    return {"course": _course_scenario, "global": _global_scenario}[name](rng)


def clash_scenario() -> Scenario:
    """Two new learners whose usernames derive to the same text: an e-mail, and an external id without e-mail."""
    header = ("external_user_id", "external_email", "enrollment_start", "complete", "date_completed")
    rows = (("", "x@example.org", "2024-03-01", "0", ""), ("x@example.org", "", "2024-03-02", "0", ""))
    return Scenario("clash", "course", "CARD101", True, False, header, rows)


def _small(name: str, importer: str, create_accounts: bool, header: str, *rows: str) -> Scenario:
    course = "CARD101" if importer == "course" else None
    table = tuple(tuple(row.split(",")) for row in rows)
    return Scenario(name, importer, course, create_accounts, True, tuple(header.split(",")), table)


_SHORT = "external_user_id,external_email,enrollment_start,complete,date_completed,credit_type,credits"
_GLOBAL = "external_user_id,external_email,external_course_id,enrollment_start,complete"

# Small files, each about one way the paths have been seen to disagree (see the tests that use them), with
# the mode they run in. Every row of them is valid but where a comment says otherwise.
FOCUSED: dict[str, tuple[Scenario, str]] = {
    "clash": (clash_scenario(), "apply_noskip"),
    # An existing learner without a profile, two rows with PARS data: the import creates one profile.
    "profile-once": (
        _small(
            "profile-once",
            "course",
            False,
            _SHORT + ",licensing_state,dob_month,dob_day",
            ",ANN.LEE@example.org,2024-03-01,1,2024-03-10,ama_pra_1,2.00,WA,11,30",
            ",ann.lee@example.org,2024-03-01,1,2024-03-10,ancc,2.00,WA,11,30",
        ),
        "apply_noskip",
    ),
    # The learner waiting in the holding table (for CARD101) gets an account from the first row, which applies
    # the waiting record; the second row, for CARD101, is E_ALREADY_PENDING as the file is checked.
    "pending-later-row": (
        _small(
            "pending-later-row",
            "global",
            True,
            _GLOBAL,
            "P-1,pat@example.org,NEURO300,2024-04-01,0",
            "P-1,pat@example.org,CARD101,2024-04-01,0",
        ),
        "apply_skip",
    ),
    # An account that takes the waiting record (an enrollment made one at a time), then another enrollment.
    "ids-meanwhile": (
        _small(
            "ids-meanwhile",
            "global",
            True,
            _GLOBAL,
            "P-1,pat@example.org,NEURO300,2024-04-01,0",
            "G-1,g1@example.org,NEURO300,2024-04-02,0",
        ),
        "apply_noskip",
    ),
    # A blank profile; the rows disagree on the state: the first row's value is written, the second differs.
    "conflict-by-batch": (
        _small(
            "conflict-by-batch",
            "course",
            False,
            _SHORT + ",licensing_state",
            "L-2,,2024-03-01,1,2024-03-10,ama_pra_1,2.00,TX",
            "L-2,,2024-03-01,1,2024-03-10,ancc,2.00,OK",
        ),
        "apply_noskip",
    ),
    # The account's e-mail is SØren.Ås@Example.org: ASCII letters fold, the others must be as they are.
    "casefold": (
        _small(
            "casefold",
            "course",
            False,
            _SHORT,
            ",sØREN.Ås@EXAMPLE.ORG,2024-03-01,0,,,",
            ",sørEN.Ås@example.ORG,2024-03-01,0,,,",
            ",\u212aim@example.org,2024-03-01,0,,,",
        ),
        "apply_noskip",
    ),
}


# -- running and describing an import ------------------------------------------------------------------------
def import_run(*, options: dict, path: Path, mode: str) -> ImportJob:
    """An import through the services, as the command line does it: a preview, or an apply from 'uploaded'."""
    admin = get_user_model().objects.get(username=ADMIN)
    course = Course.objects.get(external_course_id=options["course"]) if options.get("course") else None
    job = import_job_create(
        user=admin,
        importer=options["importer"],
        course=course,
        path=path,
        skip_invalid=mode == "apply_skip",
        create_accounts=options.get("create_accounts", False),
        allow_auto_complete=options.get("allow_auto_complete", False),
        dry_run=mode == "preview",
    )
    if mode == "preview":
        return import_job_validate(job=job)
    return import_job_apply(job=job, from_statuses=(ImportJob.Status.UPLOADED,))


def run_and_snapshot(*, options: dict, path: Path, mode: str) -> dict:
    """Build the catalog, import, describe: {'before': records, 'job', 'findings', 'warnings', 'report', 'records'}."""
    since = django_timezone.now()
    catalog_build()
    before = records_snapshot(job_id=None, since=since)
    job = import_run(options=options, path=path, mode=mode)
    return {"before": before, **job_snapshot(job, since=since)}


JOB_FIELDS = (
    "status",
    "failure_code",
    "failure_message",
    "dry_run",
    "encoding",
    "delimiter",
    "rows_total",
    "rows_valid",
    "rows_invalid",
    "rows_skipped",
    "created_enrollments",
    "created_credits",
    "created_pending",
    "created_accounts",
    "created_shells",
    "auto_completed",
    "error_count",
)


def job_snapshot(job: ImportJob, *, since: datetime) -> dict:
    job.refresh_from_db()
    report = None
    if job.error_report:
        with job.error_report.open("rb") as f:
            report = [row for row in csv.reader(io.StringIO(f.read().decode("utf-8-sig")))]
    return {
        "job": {name: getattr(job, name) for name in JOB_FIELDS},
        "findings": [[e["line"], e["code"], e["column"], e["value"], e["message"]] for e in job.errors],
        "warnings": [[w["code"], w["count"], w["message"]] for w in job.warnings],
        "report": report,
        "records": records_snapshot(job_id=job.pk, since=since),
    }


_DIGITS = re.compile(r"\d+")


def records_snapshot(*, job_id: int | None, since: datetime) -> dict:
    """Every record of the domain, ids replaced by natural keys (users by external id, e-mail or username;
    courses by external_course_id; credit types by machine name), comparable across databases."""
    User = get_user_model()
    profiles = {p.user_id: p for p in LearnerProfile.objects.all()}
    users = list(User.objects.all())
    keys = {}
    for user in users:
        profile = profiles.get(user.pk)
        if profile is not None and profile.external_user_id:
            keys[user.pk] = f"x:{profile.external_user_id}"
        elif user.email:
            keys[user.pk] = f"e:{email_key(user.email)}"
        else:
            keys[user.pk] = f"u:{user.username}"
    if len(set(keys.values())) != len(keys):
        raise ValueError(f"Two users share a natural key: {sorted(keys.values())}")

    def job(value: int | None) -> str | None:
        return None if value is None else ("this job" if value == job_id else "another job")

    def when(value) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            # The run's own clock (stamps, auto-completion dates) differs from run to run.
            return "<now>" if value >= since else value.astimezone(UTC).isoformat()
        return value.isoformat()

    def number(value) -> str | None:
        return None if value is None else str(value)

    def username(user) -> str:
        # A created username that clashed gets a suffix, which may hold the user's own id: ids differ between
        # databases, so the id is named, not shown. The text the name derives from stays as it is.
        profile = profiles.get(user.pk)
        base = user.email or (profile.external_user_id if profile else "") or ""
        if base and user.username != base and user.username.startswith(base[:130]):
            cut = len(base[:130])
            own = _DIGITS.sub(lambda m: "<own id>" if int(m.group()) == user.pk else m.group(), user.username[cut:])
            return user.username[:cut] + own
        return user.username

    courses = {c.pk: c for c in Course.objects.all()}
    types = dict(CreditType.objects.values_list("pk", "machine_name"))
    enrollments = {e.pk: e for e in Enrollment.objects.all()}

    def enrollment_key(pk: int | None) -> list | None:
        if pk is None:
            return None
        e = enrollments[pk]
        return [keys[e.user_id], courses[e.course_id].external_course_id]

    def ordered(items: list[dict]) -> list[dict]:
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, ensure_ascii=False))

    return {
        "users": ordered(
            [
                {
                    "key": keys[u.pk],
                    "username": username(u),
                    "email": u.email,
                    "first_name": u.first_name,
                    "last_name": u.last_name,
                    "is_active": u.is_active,
                    "is_staff": u.is_staff,
                    "is_superuser": u.is_superuser,
                    "usable_password": u.has_usable_password(),
                    "last_login": when(u.last_login),
                    "created_by": job(profiles[u.pk].created_by_job_id) if u.pk in profiles else None,
                }
                for u in users
            ]
        ),
        "profiles": ordered(
            [
                {
                    "user": keys[p.user_id],
                    "external_user_id": p.external_user_id,
                    **{name: getattr(p, name) for name in PROFILE_FIELDS},
                    "created_by": job(p.created_by_job_id),
                }
                for p in profiles.values()
            ]
        ),
        "courses": ordered(
            [
                {
                    "external_course_id": c.external_course_id,
                    "title": c.title,
                    "kind": c.kind,
                    "pars_activity_id": c.pars_activity_id,
                    "certificate_enabled": c.certificate_enabled,
                    "created_by": job(c.created_by_job_id),
                }
                for c in courses.values()
            ]
        ),
        "enrollments": ordered(
            [
                {
                    "user": keys[e.user_id],
                    "course": courses[e.course_id].external_course_id,
                    "enrollment_start": when(e.enrollment_start),
                    "enrollment_end": when(e.enrollment_end),
                    "complete": e.complete,
                    "date_completed": when(e.date_completed),
                    "attended": e.attended,
                    "participant_category": e.participant_category,
                    "source": e.source,
                    "job": job(e.import_job_id),
                    "untouched": e.created_at == e.updated_at,
                }
                for e in enrollments.values()
            ]
        ),
        "awards": ordered(
            [
                {
                    "enrollment": enrollment_key(a.enrollment_id),
                    "credit_type": types[a.credit_type_id],
                    "credits": number(a.credits),
                    "credit_expiration": when(a.credit_expiration),
                    "source": a.source,
                    "job": job(a.import_job_id),
                    "untouched": a.created_at == a.updated_at,
                }
                for a in CreditAward.objects.all()
            ]
        ),
        "pending": ordered(
            [
                {
                    "job": job(p.import_job_id),
                    "line": p.line,
                    "status": p.status,
                    "email": p.email,
                    "external_user_id": p.external_user_id,
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "course": courses[p.course_id].external_course_id,
                    "enrollment_start": when(p.enrollment_start),
                    "enrollment_end": when(p.enrollment_end),
                    "complete": p.complete,
                    "date_completed": when(p.date_completed),
                    "attended": p.attended,
                    "participant_category": p.participant_category,
                    "credit_type": types.get(p.credit_type_id),
                    "credits": number(p.credits),
                    "credit_expiration": when(p.credit_expiration),
                    **{name: getattr(p, name) for name in PROFILE_FIELDS},
                    "source": p.source,
                    "applied_at": when(p.applied_at),
                    "enrollment": enrollment_key(p.enrollment_id),
                    "untouched": p.created_at == p.updated_at,
                }
                for p in PendingRecord.objects.all()
            ]
        ),
    }
