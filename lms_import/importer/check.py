"""Stage 2, check: from rows of text to valid rows and findings.

Per batch of rows: parse each row with the column schema's rules and the row rules of the domain
apps (a RowParser), find each row's course and learner with one bulk query each, check what the
database already holds (enrollments, credits, the holding table), then run the cross-row checks in
file order. The cross-row state is what must grow with the file: one entry per distinct learner
without an account, per distinct enrollment, and per learner whose profile the file changes
(Learners, Enrollments, Profiles).

The checker runs the fast forms of fast.py by default and the reference forms of rows.py with
IMPORT_REFERENCE_RULES; the differential tests run both over every path of an import.
"""

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from core.findings import (
    E_ALREADY_ENROLLED,
    E_ALREADY_PENDING,
    E_CREDIT_EXISTS,
    E_DUPLICATE_CREDIT_TYPE,
    E_INCONSISTENT_ROWS,
    E_VALUE_INVALID,
    Finding,
    show,
)
from courses.rules import shell_title_check
from credits.rules import credit_type_names, credit_type_resolve

from . import lookups
from .fast import CreditChecks, FastRowParser, PackedEnrollments, PackedLearners, PackedProfiles
from .lookups import CourseInfo
from .rows import (
    Checked,
    Enrollments,
    Learners,
    Profiles,
    RowParser,
    credits_check,
    profile_conflicts,
    profile_merge,
)
from .schema import Header, enrollment_fields

ALREADY_ENROLLED = (
    "{learner} is already enrolled in {course}. The importer never changes an enrollment that exists: edit it in "
    "the admin, or revert the import that created it, then import again."
)
CREDIT_EXISTS = (
    "{learner} already has {credit_type} credit in {course}. The importer never changes credit already assigned: "
    "edit it in the admin, or revert the import that created it."
)
ALREADY_PENDING = (
    "{learner} already has a record for {course} waiting in the holding table (from an earlier import). Remove "
    "that pending record first, or drop this row."
)
DUPLICATE_TYPE = (
    "{learner} already has a row for {credit_type} in {course} (line {first} is the first row of this "
    "enrollment). Enter only one row per credit type awarded."
)
DUPLICATE_ROW = (
    "{learner} already has a row without credit in {course} (line {first}). Enter one row per learner and course, "
    "or one per credit type awarded."
)
INCONSISTENT = (
    "This row disagrees with line {first}, the first row of {learner} in {course}, on the enrollment fields "
    "(enrollment_start, enrollment_end, complete, date_completed, attended, participant_category). Rows of one "
    "learner and course must repeat the same values and differ only in credit_type and credits."
)
IDENTITY = (
    "{learner} appears earlier in this file with a different external_user_id or external_email. Give every row of "
    "one learner the same identifiers."
)
EMAIL_SHARED = (
    "{count} accounts share the e-mail {value}, so the row cannot be matched by e-mail. Add the learner's "
    "external_user_id."
)
ID_CONFLICT = (
    "external_user_id {value} does not match the account with e-mail {email}, whose external_user_id is {other}. "
    "Correct the id or the e-mail."
)


@dataclass
class CheckTotals:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    profile_conflicts: int = 0
    auto_completed: int = 0
    auto_learners: list[str] = field(default_factory=list)
    auto_courses: list[str] = field(default_factory=list)
    pending_rows: int = 0
    pending_learners: int = 0
    shells: list[str] = field(default_factory=list)


class Checker:
    """Checks batches of rows in file order; one instance per pass over a file."""

    def __init__(
        self,
        *,
        header: Header,
        importer_global: bool,
        course: CourseInfo | None,
        credit_types: dict[str, int],
        zone: tzinfo,
        now: datetime,
        job_id: int | None,
        create_accounts: bool,
        expected_rows: int = 0,
        fast: bool = True,
        credit_type_labels: dict[str, str] | None = None,  # {machine name: name}: a row may give either
    ):
        self.header = header
        self.importer_global = importer_global
        self.course = course
        chosen = None if importer_global else course.external_course_id
        parser = FastRowParser if fast else RowParser
        self.parser = parser(header, chosen=chosen, zone=zone, now=now)
        self.credit_check = CreditChecks() if fast else credits_check
        self.credit_types = credit_types
        self.credit_type_labels = credit_type_labels or {}
        self.credit_type_names = credit_type_names(self.credit_type_labels)
        self.job_id = job_id
        self.create_accounts = create_accounts
        self.courses: dict[str, CourseInfo] = {course.external_course_id: course} if course else {}
        self.shells: dict[str, int] = {}
        self.course_keys: dict[int, int] = {}
        self.absent: set[str] = set()
        self.pending_waiting = lookups.pending_any(exclude_job=job_id)
        self.beyond_ascii = lookups.AccountsBeyondAscii()
        # Sized for the file up front (rows ≥ enrollments; learners have up to two keys): growing a table
        # rehashes it in Python, which costs more than all its look-ups together.
        if fast:
            self.learners = PackedLearners(expected_rows)
            self.enrollments = PackedEnrollments(expected_rows, credit_types)
            self.profiles = PackedProfiles(expected_rows)
        else:
            self.learners = Learners(expected_rows)
            self.enrollments = Enrollments(expected_rows)
            self.profiles = Profiles(expected_rows)
        self.totals = CheckTotals()

    # -- the batch --------------------------------------------------------------------------
    def check_batch(self, batch: list[tuple[int, list[str]]]) -> list[Checked]:
        checked = self.parser.parse_batch(batch)
        self._courses_resolve(checked)
        self._learners_resolve(checked)
        self._state_check(checked)
        cross_check = self._cross_check
        valid = 0
        for item in checked:
            if item.row is not None and not item.findings:
                cross_check(item)
                valid += not item.findings
        self.totals.rows += len(checked)
        self.totals.valid += valid
        self.totals.invalid += len(checked) - valid
        return checked

    # -- courses: one query per batch for ids not seen before -------------------------------
    def _courses_resolve(self, checked: list[Checked]) -> None:
        unseen = {c.row.external_course_id for c in checked if c.row} - self.courses.keys() - self.absent
        unseen.discard("")
        if unseen:
            found = lookups.courses_find(unseen)
            self.courses.update(found)
            # Absent at first sight means a shell of this file, also once the apply has written it.
            self.absent.update(unseen - found.keys())
        credit_check, site_types = self.credit_check, self.credit_types
        names, labels = self.credit_type_names, self.credit_type_labels
        for item in checked:
            row = item.row
            if row is None or not row.external_course_id:
                continue
            course = self.courses.get(row.external_course_id)
            if course is None:
                # Only the global importer gets here: an unknown id becomes a course shell.
                item.findings += shell_title_check(line=row.line, course_id=row.external_course_id, title=row.title)
                course = CourseInfo(row.external_course_id, row.title, "shell", None, None, False)
            row.course = course
            # The credits text becomes the credits, checked against what the row's course offers.
            row.credits, found = credit_check(
                line=row.line,
                course_key=row.external_course_id,
                credit_type=row.credit_type,
                credits=row.credits,
                complete=row.complete,
                site_types=site_types,
                offers=course.offers,
                names=names,
                labels=labels,
            )
            if found:
                item.findings += found
            if row.credit_type:
                # Given by its name, the credit type is its machine name from here on: duplicates, existing
                # credit and the write compare machine names.
                row.credit_type = credit_type_resolve(row.credit_type, site_types=site_types, names=names)

    # -- learners: one query by external id and one by e-mail per batch ---------------------
    def _learners_resolve(self, checked: list[Checked]) -> None:
        # A learner this file introduced stays this file's new learner in later batches, even once the
        # apply has created their account in this transaction: the registry, not the database, decides.
        knows = self.learners.knows
        unknown = []
        previous, previous_unknown = None, False
        for c in checked:
            row = c.row
            if row is None or c.findings:
                continue
            # A learner's rows come together: the row before decides for this one when it is the same learner.
            same = previous is not None and (row.external_user_id, row.external_email) == previous
            if not same:
                previous, previous_unknown = (row.external_user_id, row.external_email), not knows(row)
            if previous_unknown:
                unknown.append(c)
        rows = [c.row for c in unknown]
        by_ext = lookups.learners_by_external_id({r.external_user_id for r in rows if r.external_user_id})
        # By e-mail only where the external id found nobody: the external id decides when it matches.
        by_email = lookups.learners_by_email(
            {r.external_email for r in rows if r.external_email and r.external_user_id not in by_ext}, self.beyond_ascii
        )
        for item in unknown:
            row = item.row
            learner = by_ext.get(row.external_user_id) if row.external_user_id else None
            if learner is None and row.external_email:
                candidates = by_email.get(row.external_email, ())
                if len(candidates) > 1:
                    message = EMAIL_SHARED.format(count=len(candidates), value=show(row.external_email))
                    item.findings.append(
                        Finding(E_VALUE_INVALID, message, row.line, "external_email", row.external_email)
                    )
                    continue
                if candidates:
                    learner = candidates[0]
                    if row.external_user_id and learner.external_user_id:
                        message = ID_CONFLICT.format(
                            value=show(row.external_user_id),
                            email=show(row.external_email),
                            other=show(learner.external_user_id),
                        )
                        item.findings.append(
                            Finding(E_VALUE_INVALID, message, row.line, "external_user_id", row.external_user_id)
                        )
                        continue
            row.learner = learner

    # -- what the database already holds -----------------------------------------------------
    def _state_check(self, checked: list[Checked]) -> None:
        known = [c for c in checked if c.valid and c.row.learner and c.row.course.id is not None]
        if known:
            existing = lookups.enrollments_existing(
                {(c.row.learner.user_id, c.row.course.id) for c in known}, exclude_job=self.job_id
            )
            for item in known:
                row = item.row
                awarded = existing.get((row.learner.user_id, row.course.id))
                if awarded is None:
                    continue
                names = {"learner": row.learner.label, "course": row.course.external_course_id}
                type_id = self.credit_types.get(row.credit_type)
                if type_id is not None and type_id in awarded:
                    message = CREDIT_EXISTS.format(credit_type=row.credit_type, **names)
                    item.findings.append(Finding(E_CREDIT_EXISTS, message, row.line, "credit_type", row.credit_type))
                else:
                    message = ALREADY_ENROLLED.format(**names)
                    item.findings.append(Finding(E_ALREADY_ENROLLED, message, row.line, "", row.who))

        unknown = [c for c in checked if c.valid and not c.row.learner and c.row.course.id is not None]
        if unknown and self.pending_waiting:
            waiting = lookups.pending_existing(
                {(c.row.external_email, c.row.course.id) for c in unknown if c.row.external_email},
                {(c.row.external_user_id, c.row.course.id) for c in unknown if c.row.external_user_id},
                exclude_job=self.job_id,
            )
            for item in unknown:
                row = item.row
                if ("e:" + row.external_email, row.course.id) in waiting or (
                    "x:" + row.external_user_id,
                    row.course.id,
                ) in waiting:
                    message = ALREADY_PENDING.format(learner=row.who, course=row.course.external_course_id)
                    item.findings.append(Finding(E_ALREADY_PENDING, message, row.line, "", row.who))

    # -- across rows, in file order -----------------------------------------------------------
    def _profile_check(self, row, learner_key: int, found: tuple[str, ...] | None) -> None:
        """A valid row's PARS data against its learner's profile as it stands after the rows before it.

        Blank fields take the row's values (the first row of a learner without a profile creates it); a value
        that differs from one the profile holds is kept out and counted for W_PROFILE_CONFLICT.
        """
        mine = row.profile
        if mine == found:
            # Nothing a row can change: the profile still holds every value it was found with, and the row has
            # nothing where it had a blank.
            return
        current = self.profiles.get(learner_key)
        if current is None:
            current = found
        if current is None:
            if any(mine):
                row.profile_write = ("create", mine)
                self.profiles.set(learner_key, mine)
            return
        if mine == current:
            return
        if profile_conflicts(mine, current):
            self.totals.profile_conflicts += 1
        merged = profile_merge(current, mine)
        if merged != current:
            row.profile_write = ("fill", merged)
            self.profiles.set(learner_key, merged)

    def _cross_check(self, item: Checked) -> None:
        row = item.row
        totals = self.totals
        if row.learner is not None:
            learner_key = row.learner.user_id * 2
            profile = row.learner.profile  # as the import found it: None when the account has no profile
        else:
            order, first, conflict, profile = self.learners.find_or_add(row)
            if conflict:
                message = IDENTITY.format(learner=show(row.who))
                item.findings.append(Finding(E_INCONSISTENT_ROWS, message, row.line, "external_email", row.who))
                return
            learner_key = order * 2 + 1
            row.new_learner, row.first_of_learner = order, first

        course = row.course
        if course.id is None:
            shell = self.shells.get(course.external_course_id)
            if shell is None:
                shell = self.shells[course.external_course_id] = len(self.shells)
                row.first_of_shell = True
                totals.shells.append(course.external_course_id)
            course = row.course = CourseInfo(course.external_course_id, course.title, "shell", None, None, False, shell)

        course_key = self.course_keys.get(course.key)
        if course_key is None:  # the file's courses numbered densely, whatever their ids
            course_key = self.course_keys[course.key] = len(self.course_keys)
        order, first, first_line, problem = self.enrollments.add_row(
            learner_key, course_key, row.line, enrollment_fields(row), row.credit_type
        )
        if problem:
            names = {"learner": show(row.who), "course": course.external_course_id, "first": first_line}
            if problem == "inconsistent":
                item.findings.append(Finding(E_INCONSISTENT_ROWS, INCONSISTENT.format(**names), row.line, "", row.who))
            elif row.credit_type:
                message = DUPLICATE_TYPE.format(credit_type=row.credit_type, **names)
                item.findings.append(
                    Finding(E_DUPLICATE_CREDIT_TYPE, message, row.line, "credit_type", row.credit_type)
                )
            else:
                message = DUPLICATE_ROW.format(**names)
                item.findings.append(Finding(E_DUPLICATE_CREDIT_TYPE, message, row.line, "credit_type", ""))
            return
        row.enrollment, row.first_of_enrollment = order, first
        if not row.first_of_learner:  # a new learner's first row is its profile
            self._profile_check(row, learner_key, profile)
        if first and course.auto_complete:
            totals.auto_completed += 1
            if len(totals.auto_learners) < 20:
                totals.auto_learners.append(row.who)
            if course.external_course_id not in totals.auto_courses:
                totals.auto_courses.append(course.external_course_id)
        if row.learner is None and not self.create_accounts:
            totals.pending_rows += 1
            totals.pending_learners += row.first_of_learner
