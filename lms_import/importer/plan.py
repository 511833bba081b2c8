"""Stage 3, plan: from valid rows to the records to create.

The planner turns each batch of valid rows into table rows (accounts, profiles, shells,
enrollments, credit awards, pending records), in the column order of schema.LAYOUTS, and hands
them to a writer. The same planner runs for a dry run, with a writer that only counts, so the
preview's numbers are the import's. The completion engine is applied here: a new enrollment in a
course without a required course object is complete at once with the maximum credit of every
type the course offers.
"""

import os
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.records import Source
from enrollments.engine import engine_awards

from . import lookups
from .rows import remember
from .schema import LAYOUTS, Row

UNUSABLE_PASSWORD_PREFIX = "!"  # django.contrib.auth.hashers: a password that can never match
USERNAME_LENGTH = 150  # auth.User.username

USER, PROFILE, COURSE, ENROLLMENT, AWARD, PENDING = (LAYOUTS[name] for name in LAYOUTS)
# Where the completion engine changes the file's enrollment values.
COMPLETE_AT = ENROLLMENT.file_columns.index("complete")
DATE_COMPLETED_AT = ENROLLMENT.file_columns.index("date_completed")


class Writer(Protocol):
    """Where planned rows go (apply.py): per table, tuples in the order of schema.LAYOUTS[table].columns."""

    textual: bool  # True: takes dates, times and decimals as their text (the planner caches it)
    null: object  # what NULL is given as (None, or the COPY writer's marker)

    def add(self, table: str, values: tuple) -> None: ...

    def fill_profile(self, user_id: int, profile: tuple[str, ...]) -> None: ...

    def reserve(self, table: str, count: int) -> list[int]: ...


class NewLearners(Protocol):
    """The checker's registry of this file's learners without an account (rows.Learners or fast.PackedLearners)."""

    def username_earlier(self, username: str, order: int) -> bool: ...


@dataclass
class Created:
    enrollments: int = 0
    credits: int = 0
    pending: int = 0
    accounts: int = 0
    shells: int = 0


class Planner:
    def __init__(
        self,
        *,
        writer: Writer,
        learners: NewLearners,
        job_id: int | None,
        global_importer: bool,
        create_accounts: bool,
        credit_types: dict[str, int],
        now: datetime,
    ):
        self.writer = writer
        self.learners = learners
        self.credit_types = credit_types
        self.job_id = job_id
        self.source = Source.LEGACY_IMPORT if global_importer else Source.COURSE_IMPORT
        self.create_accounts = create_accounts
        self.now = now
        # COPY writers take text: dates, times and decimals repeat a great deal in a file, so their text is
        # made once and reused (str() of a datetime costs more than the rest of its row's formatting).
        self.textual = writer.textual
        self.null = writer.null
        self._texts: dict = {}
        self.stamp = self._text(now)
        # Order in the file -> id in the database, for records later rows refer to.
        self.user_ids = array("q")
        self.enrollment_ids = array("q")
        self.shell_ids = array("q")
        # Usernames this import gave with a suffix (few: only where the plain one was taken), see _username.
        self.suffixed: set[str] = set()
        self.created = Created()

    def _text(self, value):
        # Only moments, days and decimals: True == 1 == Decimal("1.00") as dict keys, so flags stay as they are.
        if value is None:
            return self.null
        if not self.textual or type(value) in (str, bool):
            return value
        text = self._texts.get(value)
        if text is None:
            text = str(value)
            remember(self._texts, value, text)
        return text

    def plan_batch(self, rows: list[Row]) -> list[int]:
        """Queue the writes for one batch of valid rows; return the ids of accounts created."""
        writer, created, text, stamp = self.writer, self.created, self._text, self.stamp
        enrollment_values = ENROLLMENT.values
        self._reserve(rows)
        new_accounts = self._accounts(rows) if self.create_accounts else []
        self._profiles_write(rows)
        for row in rows:
            if row.first_of_shell:
                self._shell(row)
            if row.learner is None and not self.create_accounts:
                self._pending(row)
                continue
            user_id = row.learner.user_id if row.learner else self.user_ids[row.new_learner]
            course = row.course
            course_id = course.id if course.id is not None else self.shell_ids[course.shell_ordinal]
            if row.first_of_enrollment:
                enrollment_id = self.enrollment_ids[row.enrollment]
                values = enrollment_values(row)
                if course.auto_complete:
                    values = list(values)
                    values[COMPLETE_AT] = True
                    values[DATE_COMPLETED_AT] = values[DATE_COMPLETED_AT] or self.now
                writer.add(
                    "enrollment",
                    (enrollment_id, user_id, course_id, *map(text, values), self.source, self.job_id, stamp, stamp),
                )
                created.enrollments += 1
                if course.auto_complete:
                    maximums = {o.credit_type_id: o.max_credits for o in course.offers.values()}
                    requested = {self.credit_types.get(row.credit_type): (row.credits, row.credit_expiration)}
                    for type_id, (credits, expiration) in engine_awards(maximums, requested).items():
                        self._award(enrollment_id, type_id, credits, expiration)
            if row.credit_type and not course.auto_complete:
                type_id = self.credit_types[row.credit_type]
                self._award(self.enrollment_ids[row.enrollment], type_id, row.credits, row.credit_expiration)
        return new_accounts

    def _reserve(self, rows: list[Row]) -> None:
        accounts = sum(1 for r in rows if r.first_of_learner) if self.create_accounts else 0
        enrollments = [r for r in rows if r.first_of_enrollment]
        shells = sum(1 for r in rows if r.first_of_shell)
        self.user_ids.extend(self.writer.reserve("user", accounts))
        self.shell_ids.extend(self.writer.reserve("course", shells))
        writing = [r for r in enrollments if r.learner is not None or self.create_accounts]
        ids = iter(self.writer.reserve("enrollment", len(writing)))
        for row in enrollments:
            # Enrollments of learners held in the holding table get no id: they are created later.
            self.enrollment_ids.append(next(ids) if (row.learner is not None or self.create_accounts) else 0)

    def _accounts(self, rows: list[Row]) -> list[int]:
        firsts = [r for r in rows if r.first_of_learner]
        if not firsts:
            return []
        usernames = self._usernames(firsts)
        created = []
        # Unusable passwords, never hashed: one urandom call per batch instead of one per account.
        noise = os.urandom(20 * len(firsts)).hex()
        randomness = (noise[i : i + 40] for i in range(0, len(noise), 40))
        user_values, profile_values, null, add = USER.values, PROFILE.values, self.null, self.writer.add
        for row, username in zip(firsts, usernames, strict=True):
            user_id = self.user_ids[row.new_learner]
            password = UNUSABLE_PASSWORD_PREFIX + next(randomness)
            add("user", (user_id, password, null, False, username, *user_values(row), False, True, self.stamp))
            external_id, *profile = profile_values(row)
            add("profile", (user_id, external_id or null, *profile, self.job_id))
            created.append(user_id)
        self.created.accounts += len(created)
        return created

    def _usernames(self, firsts: list[Row]) -> list[str]:
        """A username per new account, unique across batches and processes, and the same on every path.

        The learner's e-mail, else its external id. It is taken when an account in the database has it (what
        this process can see), when a learner before it in this file has it as its own (the checker's
        registry knows them all, also those another process wrote), or when this import gave it to another
        account with a suffix. A username taken, or longer than a username can be, gets ".<the new account's
        id>" (and a counter, in the unlikely case that one is taken too).
        """
        plain = [row.external_email or row.external_user_id for row in firsts]
        taken = lookups.usernames_taken({name for name in plain if len(name) <= USERNAME_LENGTH})
        chosen, clashes = [], []
        for row, name in zip(firsts, plain, strict=True):
            if (
                len(name) > USERNAME_LENGTH
                or name in taken
                or name in self.suffixed
                or self.learners.username_earlier(name, row.new_learner)
            ):
                clashes.append(len(chosen))
            chosen.append(name)
        attempt = 0
        while clashes:
            attempt += 1
            candidates = {}
            for i in clashes:
                suffix = f".{self.user_ids[firsts[i].new_learner]}" + (f".{attempt}" if attempt > 1 else "")
                candidates[i] = plain[i][: USERNAME_LENGTH - len(suffix)] + suffix
            taken = lookups.usernames_taken(set(candidates.values()))
            clashes = []
            for i, name in candidates.items():
                if (
                    name in taken
                    or name in self.suffixed
                    or self.learners.username_earlier(name, firsts[i].new_learner)
                ):
                    clashes.append(i)
                else:
                    chosen[i] = name
                    self.suffixed.add(name)
        return chosen

    def _profiles_write(self, rows: list[Row]) -> None:
        """What the checker decided for the learners' profiles: a profile for an account without one, or the
        file's PARS data in the blanks of one (the last fill of a batch holds every one before it)."""
        fills: dict[int, tuple[str, ...]] = {}
        for row in rows:
            if row.profile_write is None or (row.learner is None and not self.create_accounts):
                continue  # a learner in the holding table has no profile yet: its rows keep their own data
            user_id = row.learner.user_id if row.learner else self.user_ids[row.new_learner]
            action, profile = row.profile_write
            if action == "create":
                self.writer.add("profile", (user_id, self.null, *profile, self.null))
            else:
                fills[user_id] = profile
        for user_id, profile in fills.items():
            self.writer.fill_profile(user_id, profile)

    def _shell(self, row: Row) -> None:
        shell_id = self.shell_ids[row.course.shell_ordinal]
        course = row.course
        self.writer.add(
            "course", (shell_id, course.external_course_id, course.title, "shell", "", False, self.stamp, self.job_id)
        )
        self.created.shells += 1

    def _pending(self, row: Row) -> None:
        course = row.course
        course_id = course.id if course.id is not None else self.shell_ids[course.shell_ordinal]
        type_id = self.credit_types.get(row.credit_type) if row.credit_type else self.null
        text, null, stamp = self._text, self.null, self.stamp
        self.writer.add(
            "pending",
            (self.job_id, row.line, "pending", course_id, type_id, *map(text, PENDING.values(row)), self.source)
            + (null, null, stamp, stamp),
        )
        self.created.pending += 1

    def _award(self, enrollment_id: int, type_id: int, credits, expiration) -> None:
        text, stamp = self._text, self.stamp
        self.writer.add(
            "award", (enrollment_id, type_id, text(credits), text(expiration), self.source, self.job_id, stamp, stamp)
        )
        self.created.credits += 1
