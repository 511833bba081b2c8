"""Bulk reads the checker and planner need: one query per batch of rows, never one per row."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from core.text import email_key
from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditAward, CreditType
from credits.rules import Offer
from enrollments.engine import completes_on_enrollment
from enrollments.models import Enrollment, LearnerProfile, PendingRecord

from .schema import PROFILE_FIELDS


@dataclass(frozen=True, slots=True)
class CourseInfo:
    external_course_id: str
    title: str
    kind: str
    id: int | None  # None: a shell this import will create
    offers: dict[str, Offer] | None  # None for shells, which offer nothing and take any credit type
    auto_complete: bool
    shell_ordinal: int = -1

    @property
    def key(self) -> int:
        """A compact exact key: existing courses by id, shells to create by their order in the file."""
        return self.id * 2 if self.id is not None else self.shell_ordinal * 2 + 1


@dataclass(frozen=True, slots=True)
class Learner:
    user_id: int
    email: str
    external_user_id: str
    profile: tuple[str, ...] | None  # None: the user has no learner profile yet
    label: str


def credit_types_all() -> dict[str, int]:
    return dict(CreditType.objects.values_list("machine_name", "id"))


def credit_type_labels() -> dict[str, str]:
    """{machine name: name} of every credit type: a file may name a type either way (credits.rules)."""
    return dict(CreditType.objects.values_list("machine_name", "name"))


def courses_find(external_ids: set[str]) -> dict[str, CourseInfo]:
    courses = list(
        Course.objects.filter(external_course_id__in=external_ids).annotate(
            has_required=Exists(CourseObject.objects.filter(course=OuterRef("pk"), required=True))
        )
    )
    offers: dict[int, dict[str, Offer]] = {c.id: {} for c in courses}
    for credit in CourseCredit.objects.filter(course__in=[c.id for c in courses]).select_related("credit_type"):
        offers[credit.course_id][credit.credit_type.machine_name] = Offer(
            credit_type_id=credit.credit_type_id,
            machine_name=credit.credit_type.machine_name,
            max_credits=credit.max_credits,
            variable=credit.variable,
            increment=credit.increment,
            name=credit.credit_type.name,
        )
    return {
        c.external_course_id: CourseInfo(
            external_course_id=c.external_course_id,
            title=c.title,
            kind=c.kind,
            id=c.id,
            offers=None if c.is_shell else offers[c.id],
            auto_complete=completes_on_enrollment(kind=c.kind, has_required_object=c.has_required),
        )
        for c in courses
    }


_SEPARATOR = "\x1f"  # never in a checked value: rows with control characters are refused before any look-up


def _array(values: list) -> tuple[str, list]:
    """An SQL array of `values` on PostgreSQL, and its parameters.

    The keys travel as one delimited string split by the server: a literal array of thousands of quoted
    values costs more to send and parse than the index probes themselves.
    """
    if values and all(type(v) is int for v in values):
        return "string_to_array(%s, ',')::bigint[]", [",".join(map(str, values))]
    if all(type(v) is str and _SEPARATOR not in v for v in values):
        return "string_to_array(%s, chr(31))", [_SEPARATOR.join(values)]
    return "%s", [values]


def _any(column: str, values) -> tuple[str, list]:
    """`column = ANY(array)` on PostgreSQL (one parameter, however many values); IN (...) elsewhere."""
    values = list(values)
    if connection.vendor != "postgresql":
        return f"{column} IN ({', '.join(['%s'] * len(values)) or 'NULL'})", values
    array, params = _array(values)
    return f"{column} = ANY({array})", params


@contextmanager
def index_probes(cursor) -> Iterator[None]:
    """PostgreSQL plans the statements run inside as index probes and nested loops, without JIT.

    Given thousands of keys, its planner prices one index probe per key above scanning a table of a few
    hundred thousand learners (in parallel, or a whole index with a filter), and picks the scan: 10x slower
    at 200k learners, and growing with the site, or with the import itself when the table is one it writes.
    Every statement run this way probes indexed keys, and its joins follow them to a row or two, so probes
    are always the right plan. A disabled plan's penalty can lift the estimate past jit_above_cost, and
    compiling took longer than the statements: no JIT. The settings last until the block ends.
    """
    cursor.execute("; ".join(f"SET LOCAL {knob} = {value}" for knob, value in _PROBES.items()))
    yield
    cursor.execute("; ".join(f"RESET {knob}" for knob in _PROBES))


_PROBES = {
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "max_parallel_workers_per_gather": "0",
    "jit": "off",
}


def _fetch(sql: str, params: list) -> list[tuple]:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    with transaction.atomic(), connection.cursor() as cursor, index_probes(cursor):
        cursor.execute(sql, params)
        return cursor.fetchall()


def _tables() -> dict[str, str]:
    return {
        "user": get_user_model()._meta.db_table,
        "profile": LearnerProfile._meta.db_table,
        "enrollment": Enrollment._meta.db_table,
        "award": CreditAward._meta.db_table,
        "pending": PendingRecord._meta.db_table,
    }


def _learners(users: list[tuple], profiles: list[tuple]) -> list[Learner]:
    """Learners from (id, username, email) rows of auth_user and (user_id, external id, *PARS fields) of profiles."""
    by_user = {uid: (ext, tuple(values)) for uid, ext, *values in profiles}
    learners = []
    for uid, username, email in users:
        ext, profile = by_user.get(uid, (None, None))
        learners.append(
            Learner(
                user_id=uid,
                email=email_key(email or ""),
                external_user_id=ext or "",
                profile=profile,
                label=ext or email or username,
            )
        )
    return learners


def _profiles(column: str, values) -> list[tuple]:
    where, params = _any(column, values)
    fields = ", ".join(PROFILE_FIELDS)
    return _fetch(f"SELECT user_id, external_user_id, {fields} FROM {_tables()['profile']} WHERE {where}", params)


def _users(column: str, values) -> list[tuple]:
    where, params = _any(column, values)
    return _fetch(f"SELECT id, username, email FROM {_tables()['user']} WHERE {where}", params)


# Two single-table queries each, not a join: given a join, PostgreSQL walked auth_user's primary key filtering
# every row by e-mail (7x slower). Keys that find nobody, most of them, cost one query.
def learners_by_external_id(external_ids: set[str]) -> dict[str, Learner]:
    if not external_ids:
        return {}
    profiles = _profiles("external_user_id", external_ids)
    if not profiles:
        return {}
    users = _users("id", [row[0] for row in profiles])
    return {learner.external_user_id: learner for learner in _learners(users, profiles)}


class AccountsBeyondAscii:
    """The accounts whose e-mail has a character beyond ASCII, read once per pass, by their core.text.email_key.

    E-mails match when their email_key agrees (ASCII letters folded, every other character exact), on every
    database. The index on LOWER(email) finds ASCII e-mails, which every database's LOWER() folds alike; what
    LOWER() does beyond ASCII depends on the database (PostgreSQL's on its locale), so the few accounts whose
    e-mail has other characters are read once and matched here.
    """

    def __init__(self) -> None:
        where = {
            "postgresql": "octet_length(email) <> char_length(email)",
            "sqlite": "length(CAST(email AS BLOB)) <> length(email)",
        }.get(connection.vendor, "1 = 1")
        self.by_email: dict[str, list[tuple]] = {}
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, username, email FROM {_tables()['user']} WHERE {where}")
            for row in cursor.fetchall():
                self.by_email.setdefault(email_key(row[2] or ""), []).append(row)

    def matching(self, emails: set[str]) -> list[tuple]:
        return [row for email in emails for row in self.by_email.get(email, ())]


def learners_by_email(emails: set[str], beyond_ascii: AccountsBeyondAscii) -> dict[str, list[Learner]]:
    """E-mail (lowercased) -> every account with it; Django does not make e-mails unique."""
    if not emails:
        return {}
    users = [u for u in _users("LOWER(email)", emails) if email_key(u[2] or "") in emails]
    found_ids = {u[0] for u in users}
    users += [u for u in beyond_ascii.matching(emails) if u[0] not in found_ids]
    if not users:
        return {}
    profiles = _profiles("user_id", [row[0] for row in users])
    found: dict[str, list[Learner]] = {}
    for learner in _learners(users, profiles):
        found.setdefault(learner.email, []).append(learner)
    return found


def _rows_of_pairs(table: str, alias: str, columns: tuple[str, str], pairs: set[tuple]) -> tuple[str, str, list]:
    """FROM and WHERE parts, with their parameters, that select the rows of `table` whose two columns hold one of
    these pairs. The caller keeps only the rows whose pair is one of them (elsewhere than on PostgreSQL the
    parts select a superset).

    PostgreSQL: the table joined to a derived table `k` of exactly these pairs, one index probe per pair.
    Filtering `a = ANY(...) AND b = ANY(...)` instead lets it scan the index of the less selective column
    (every enrollment in the course), entries this import's own writes add included: a look-up that grows
    with the import. SQLite: the first column IN (...), on its index (given a list of pairs to join, its
    planner may scan the table instead); a learner has few rows beyond those asked for.
    """
    first_column, second_column = columns
    firsts, seconds = (list(values) for values in zip(*pairs, strict=True))
    if connection.vendor == "postgresql":
        first, first_params = _array(firsts)
        second, second_params = _array(seconds)
        keys = f"unnest({first}, {second}) AS k({first_column}, {second_column})"
        join = f"{alias}.{first_column} = k.{first_column} AND {alias}.{second_column} = k.{second_column}"
        return f"{keys} JOIN {table} {alias} ON {join}", "TRUE", first_params + second_params
    where, params = _any(f"{alias}.{first_column}", set(firsts))
    return f"{table} {alias}", where, params


def enrollments_existing(pairs: set[tuple[int, int]], *, exclude_job: int | None) -> dict[tuple[int, int], set[int]]:
    """(user, course) -> credit type ids already awarded, for these pairs' enrollments this job did not write."""
    if not pairs:
        return {}
    t = _tables()
    source, where, params = _rows_of_pairs(t["enrollment"], "e", ("user_id", "course_id"), pairs)
    rows = _fetch(
        f"SELECT e.user_id, e.course_id, a.credit_type_id FROM {source} "
        f"LEFT JOIN {t['award']} a ON a.enrollment_id = e.id "
        f"WHERE {where} AND (e.import_job_id IS NULL OR e.import_job_id <> %s)",
        params + [exclude_job or 0],
    )
    found: dict[tuple[int, int], set[int]] = {}
    for user_id, course_id, type_id in rows:
        if (user_id, course_id) not in pairs:
            continue
        awarded = found.setdefault((user_id, course_id), set())
        if type_id is not None:
            awarded.add(type_id)
    return found


def pending_existing(
    by_email: set[tuple[str, int]], by_external_id: set[tuple[str, int]], *, exclude_job: int | None
) -> set[tuple[str, int]]:
    """('e:'+email or 'x:'+external id, course id) of these pairs already waiting in the holding table."""
    t = _tables()
    found = set()
    for prefix, column, pairs in (("e:", "email", by_email), ("x:", "external_user_id", by_external_id)):
        if not pairs:
            continue
        source, where, params = _rows_of_pairs(t["pending"], "p", (column, "course_id"), pairs)
        rows = _fetch(
            f"SELECT p.{column}, p.course_id FROM {source} "
            f"WHERE {where} AND p.status = 'pending' AND (p.import_job_id IS NULL OR p.import_job_id <> %s)",
            params + [exclude_job or 0],
        )
        found.update((prefix + value, course_id) for value, course_id in rows if (value, course_id) in pairs)
    return found


def pending_any(*, exclude_job: int | None) -> bool:
    """Is anything waiting in the holding table? If not, a whole file's worth of look-ups can be skipped."""
    return PendingRecord.objects.filter(status=PendingRecord.STATUS_PENDING).exclude(import_job_id=exclude_job).exists()


def usernames_taken(names: set[str]) -> set[str]:
    if not names:
        return set()
    where, params = _any("username", names)
    return {row[0] for row in _fetch(f"SELECT username FROM {_tables()['user']} WHERE {where}", params)}
