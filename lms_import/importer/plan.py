"""Stage 3, plan: from valid rows to the records to create.

The planner turns each batch of valid rows into table rows (accounts, profiles, shells,
enrollments, credit awards, pending records) and hands them to a writer. The same planner
runs for a dry run, with a writer that only counts, so the preview's numbers are the import's.
The completion engine is applied here: a new enrollment in a course without a required course
object is complete at once with the maximum credit of every type the course offers.
"""

import os
from array import array
from dataclasses import dataclass
from datetime import datetime

from core.records import Source
from enrollments.engine import engine_awards

from . import lookups
from .apply import Writer
from .check import Row, remember

UNUSABLE_PASSWORD_PREFIX = "!"  # django.contrib.auth.hashers: a password that can never match


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
        job_id: int | None,
        global_importer: bool,
        create_accounts: bool,
        credit_types: dict[str, int],
        now: datetime,
    ):
        self.writer = writer
        self.credit_types = credit_types
        self.job_id = job_id
        self.source = Source.LEGACY_IMPORT if global_importer else Source.COURSE_IMPORT
        self.create_accounts = create_accounts
        self.now = now
        # COPY writers take text: dates, times and decimals repeat a great deal in a file, so their text is
        # made once and reused (str() of a datetime costs more than the rest of its row's formatting).
        self.textual = writer.textual
        self._texts: dict = {}
        self.stamp = self._text(now)
        # Order in the file -> id in the database, for records later rows refer to.
        self.user_ids = array("q")
        self.enrollment_ids = array("q")
        self.shell_ids = array("q")
        self.created = Created()

    def _text(self, value):
        if value is None or not self.textual:
            return value
        text = self._texts.get(value)
        if text is None:
            text = str(value)
            remember(self._texts, value, text)
        return text

    def plan_batch(self, rows: list[Row]) -> list[int]:
        """Queue the writes for one batch of valid rows; return the ids of accounts created."""
        writer, created, text, stamp = self.writer, self.created, self._text, self.stamp
        self._reserve(rows)
        new_accounts = self._accounts(rows) if self.create_accounts else []
        self._profiles_fill(rows)
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
                complete, completed = row.complete, row.date_completed
                if course.auto_complete:
                    complete, completed = True, completed or self.now
                writer.add(
                    "enrollment",
                    (
                        enrollment_id,
                        user_id,
                        course_id,
                        text(row.enrollment_start),
                        text(row.enrollment_end),
                        complete,
                        text(completed),
                        row.attended,
                        row.participant_category,
                        self.source,
                        self.job_id,
                        stamp,
                        stamp,
                    ),
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
        taken = lookups.usernames_taken({(r.email or r.external_user_id)[:150] for r in firsts}) if firsts else set()
        created = []
        # Unusable passwords, never hashed: one urandom call per batch instead of one per account.
        noise = os.urandom(20 * len(firsts)).hex()
        randomness = (noise[i : i + 40] for i in range(0, len(noise), 40))
        for row in firsts:
            user_id = self.user_ids[row.new_learner]
            username = (row.email or row.external_user_id)[:150]
            if username in taken:
                username = f"{username[:130]}.{user_id}"
            taken.add(username)
            password = UNUSABLE_PASSWORD_PREFIX + next(randomness)
            self.writer.add(
                "user",
                (
                    user_id,
                    password,
                    None,
                    False,
                    username,
                    row.first_name,
                    row.last_name,
                    row.email,
                    False,
                    True,
                    self.stamp,
                ),
            )
            self.writer.add("profile", (user_id, row.external_user_id or None, *row.profile, self.job_id))
            created.append(user_id)
        self.created.accounts += len(created)
        return created

    def _profiles_fill(self, rows: list[Row]) -> None:
        """Existing learners: their profile gets the file's PARS data only where it is blank."""
        seen = set()
        for row in rows:
            learner = row.learner
            if learner is None or learner.user_id in seen or row.profile == learner.profile or not any(row.profile):
                continue
            seen.add(learner.user_id)
            if learner.profile is None:
                self.writer.add("profile", (learner.user_id, None, *row.profile, None))
            elif any(mine and not theirs for mine, theirs in zip(row.profile, learner.profile, strict=True)):
                self.writer.fill_profile(learner.user_id, row.profile)

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
        type_id = self.credit_types.get(row.credit_type) if row.credit_type else None
        self.writer.add(
            "pending",
            (
                self.job_id,
                row.line,
                "pending",
                row.email,
                row.external_user_id,
                row.first_name,
                row.last_name,
                course_id,
                row.enrollment_start,
                row.enrollment_end,
                row.complete,
                row.date_completed,
                row.attended,
                row.participant_category,
                type_id,
                row.credits,
                row.credit_expiration,
                *row.profile,
                self.source,
                None,
                None,
                self.now,
                self.now,
            ),
        )
        self.created.pending += 1

    def _award(self, enrollment_id: int, type_id: int, credits, expiration) -> None:
        text, stamp = self._text, self.stamp
        self.writer.add(
            "award", (enrollment_id, type_id, text(credits), text(expiration), self.source, self.job_id, stamp, stamp)
        )
        self.created.credits += 1
