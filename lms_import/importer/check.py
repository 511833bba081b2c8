"""Stage 2, check: from rows of text to valid rows and findings.

Per batch of rows: parse each row's values (pure rules of the domain apps), find its course and
its learner with one bulk query each, check what the database already holds (enrollments,
credits, the holding table), then run the cross-row checks in file order. The cross-row state
is what must grow with the file: one compact entry per distinct learner without an account and
per distinct enrollment (see LearnerRegistry and EnrollmentRegistry).
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from operator import gt, itemgetter

from core.findings import (
    E_ALREADY_ENROLLED,
    E_ALREADY_PENDING,
    E_COLUMN_COUNT,
    E_CONTROL_CHARACTER,
    E_CREDIT_EXISTS,
    E_DUPLICATE_CREDIT_TYPE,
    E_FIELD_TOO_LONG,
    E_INCONSISTENT_ROWS,
    E_VALUE_INVALID,
    Finding,
    show,
)
from courses.rules import course_ref_check, shell_title_check
from credits.rules import credit_check
from enrollments.rules import (
    CATEGORIES,
    FLAGS,
    attended_parse,
    category_parse,
    complete_parse,
    date_invalid,
    date_parse,
    dates_check,
    dob_check,
    email_check,
    learner_check,
    when_parse,
)

from . import lookups
from .columns import BY_NAME, COLUMNS, Header
from .lookups import CourseInfo, Learner
from .registry import PackedTable, table_capacity, table_key

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DOB_MONTHS = frozenset({str(n) for n in range(1, 13)} | {f"{n:02d}" for n in range(1, 13)})
DOB_DAYS = frozenset({str(n) for n in range(1, 32)} | {f"{n:02d}" for n in range(1, 32)})
_WORD = (1 << 64) - 1
_UNSEEN = object()

COLUMN_COUNT = (
    "This row has {got} values but the header has {want} columns. Look for a missing or extra delimiter (a comma "
    "inside a name needs the value in double quotes)."
)
CONTROL = (
    "{column} contains a special (control) character {value} that cannot be imported; such characters are what "
    "makes imports hang elsewhere. Delete it, or retype the value."
)
TOO_LONG = "{column} is {length} characters long; at most {limit} fit. Shorten it."
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


@dataclass(slots=True)
class Row:
    """The clean values of one row, and what the checker found it refers to."""

    line: int
    external_user_id: str
    email: str  # lowercased: e-mails are matched case-insensitively
    first_name: str
    last_name: str
    course_text: str
    title: str
    enrollment_start: datetime | None
    enrollment_end: datetime | None
    complete: bool
    date_completed: datetime | None
    attended: bool | None
    participant_category: str
    credit_type: str
    credits_text: str
    credit_expiration: date | None
    profile: tuple[str, ...]
    credits: Decimal | None = None
    course: CourseInfo | None = None
    learner: Learner | None = None  # an existing account
    new_learner: int = -1  # otherwise: the learner's order among this file's learners without an account
    first_of_learner: bool = False
    first_of_shell: bool = False
    enrollment: int = -1  # the enrollment's order among this file's enrollments
    first_of_enrollment: bool = False
    learner_keys: list[int] | None = None  # see LearnerRegistry

    @property
    def who(self) -> str:
        return self.external_user_id or self.email

    @property
    def enrollment_fields(self) -> tuple:
        return (
            self.enrollment_start,
            self.enrollment_end,
            self.complete,
            self.date_completed,
            self.attended,
            self.participant_category,
        )


@dataclass(slots=True)
class Checked:
    line: int
    fields: list[str]
    row: Row | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.row is not None and not self.findings


def remember(cache: dict, key, value, limit: int = 20_000) -> None:
    """Keep what a value parsed or formatted to for the rows after: values repeat a great deal in a file.
    Emptied when full, so that every cache stays small whatever the file's size."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def profile_conflicts(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """A value in the file that differs from a value the profile already has (blanks never conflict)."""
    return any(a and b and a != b for a, b in zip(mine, theirs, strict=True))


class LearnerRegistry:
    """Learners of this file who have no account yet, each with an order number.

    Keyed by 64-bit hashes of the e-mail (odd keys) and of the external id (even keys); each entry also
    carries a second, independent hash of both identifiers, so that a hash collision surfaces as an error
    on the row (E_INCONSISTENT_ROWS), never as two people merged into one account. Files list a learner's
    rows together, so the last learner found is remembered: the next row of the same learner skips the table.
    """

    def __init__(self, capacity: int = 1 << 12) -> None:
        # columns: order | identity hash << 32, profile hash
        self._table = PackedTable("QI", capacity)
        self.count = 0
        self._last: tuple = ("", "", -1, 0)  # external id, e-mail, order, profile hash of the learner's first row

    @staticmethod
    def _keys(row: Row) -> list[int]:
        if row.learner_keys is None:
            keys = [table_key(hash(row.external_user_id) << 1)] if row.external_user_id else []
            if row.email:
                keys.append(table_key(hash(row.email) << 1 | 1))
            row.learner_keys = keys
        return row.learner_keys

    def knows(self, row: Row) -> bool:
        last = self._last
        if row.external_user_id == last[0] and row.email == last[1]:
            return True
        find = self._table.find
        for key in self._keys(row):
            if find(key) >= 0:
                return True
        return False

    def find_or_add(self, row: Row) -> tuple[int, bool, bool, bool]:
        """(order, first row of this learner, identity conflict, profile differs from the first row)."""
        profile = hash(row.profile) & 0xFFFFFFFF
        last = self._last
        if row.external_user_id == last[0] and row.email == last[1]:
            return last[2], False, False, last[3] != profile
        keys = self._keys(row)
        identity = hash((row.external_user_id, row.email, "identity")) & 0xFFFFFFFF
        table = self._table
        packed_column, profile_column = table.columns
        for key in keys:
            slot = table.find(key)
            if slot >= 0:
                packed = packed_column[slot]
                order = packed & 0xFFFFFFFF
                if packed >> 32 != identity:
                    return order, False, True, False
                self._last = (row.external_user_id, row.email, order, profile_column[slot])
                return order, False, False, profile_column[slot] != profile
        order = self.count
        self.count += 1
        for key in keys:
            slot = table.insert(key)
            table.columns[0][slot] = order | identity << 32
            table.columns[1][slot] = profile
        self._last = (row.external_user_id, row.email, order, profile)
        return order, True, False, False


class EnrollmentRegistry:
    """One entry per learner and course seen in this file: its order, first line, fields and credit types.

    Keys are exact: (learner key << 22) | course key. Values: order | first line << 32, a hash of the
    enrollment fields, and a bit per credit type (types past the 63rd in a small overflow dict).
    """

    def __init__(self, capacity: int = 1 << 12) -> None:
        self._table = PackedTable("QQQ", capacity)
        self._overflow: dict[int, int] = {}
        self.count = 0
        self._last = (0, -1)  # key and slot of the last row: an enrollment's rows come together

    @staticmethod
    def key(learner_key: int, course_key: int) -> int:
        if course_key >= 1 << 22 or learner_key >= 1 << 42:
            raise ValueError("Course or learner ids beyond the importer's key space.")
        return learner_key << 22 | course_key

    def add_row(self, key: int, line: int, fields_hash: int, type_bit: int) -> tuple[int, bool, int, str | None]:
        """(enrollment order, first row of it, its first line, problem: None, 'inconsistent' or 'duplicate')."""
        table = self._table
        packed_column, fields_column, types_column = table.columns
        fields_hash &= _WORD
        last_key, slot = self._last
        if key != last_key:
            slot = table.find(key)
        if slot < 0:
            order = self.count
            self.count += 1
            slot = table.insert(key)  # after any growth of the table, so the slot remembered below stays right
            table.columns[0][slot] = order | line << 32
            table.columns[1][slot] = fields_hash
            self._types_add(slot, type_bit)
            self._last = (key, slot)
            return order, True, line, None
        self._last = (key, slot)
        packed = packed_column[slot]
        order, first = packed & 0xFFFFFFFF, packed >> 32
        if fields_column[slot] != fields_hash:
            return order, False, first, "inconsistent"
        if self._types_has(slot, type_bit):
            return order, False, first, "duplicate"
        self._types_add(slot, type_bit)
        return order, False, first, None

    def _types_has(self, slot: int, type_bit: int) -> bool:
        if type_bit < 1 << 64:
            return bool(self._table.columns[2][slot] & type_bit)
        return bool(self._overflow.get(self._table.keys[slot], 0) & type_bit)

    def _types_add(self, slot: int, type_bit: int) -> None:
        if type_bit < 1 << 64:
            self._table.columns[2][slot] |= type_bit
        else:
            key = self._table.keys[slot]
            self._overflow[key] = self._overflow.get(key, 0) | type_bit


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
    ):
        self.header = header
        self.width = len(header.raw)
        # Every column in a fixed order, with its position in this file's rows (-1: not in the file).
        self.names = [column.name for column in COLUMNS]
        # Columns missing from the file read position `width`: the "" appended to each row.
        self.pick = itemgetter(*[header.index.get(name, self.width) for name in self.names])
        self.limit_list = [BY_NAME[name].max_length for name in self.names]
        self._moments: dict[str, datetime] = {}
        self._dates: dict[str, date] = {}
        self._emails_ok: dict[str, bool] = {}
        self._dates_ok: dict[tuple, bool] = {}  # enrollment date texts and complete flag found in order
        self.names_by_position = {position: name for name, position in header.index.items()}
        self.importer_global = importer_global
        self.course = course
        self.chosen = None if importer_global else course.external_course_id
        self.credit_types = credit_types
        self.type_bits = {name: 1 << (i + 1) for i, name in enumerate(sorted(credit_types))}
        self.zone = zone
        self.now = now
        self.job_id = job_id
        self.create_accounts = create_accounts
        self.courses: dict[str, CourseInfo] = {course.external_course_id: course} if course else {}
        self.shells: dict[str, int] = {}
        self.pending_waiting = lookups.pending_any(exclude_job=job_id)
        self._credits_ok: dict[tuple, Decimal | None] = {}
        self.absent: set[str] = set()
        # Sized for the file up front (rows ≥ enrollments; learners have up to two keys): growing a table
        # rehashes it in Python, which cost more than all its look-ups together.
        capacity = table_capacity(expected_rows)
        self.learners = LearnerRegistry(capacity)
        self.enrollments = EnrollmentRegistry(capacity)
        self.totals = CheckTotals()

    # -- the batch --------------------------------------------------------------------------
    def check_batch(self, batch: list[tuple[int, list[str]]]) -> list[Checked]:
        checked = self._parse_batch(batch)
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

    # -- rows, no database -----------------------------------------------------------------
    def _parse_batch(self, batch: list[tuple[int, list[str]]]) -> list[Checked]:
        """Each row's values, parsed by the domain rules.

        The common case, a valid row, takes a fast path: C-level column picking and length checks,
        cached dates, flags and e-mails, and a rule function only where a value needs judging. Anything
        the fast path does not accept outright goes to the rule functions, which say what is wrong.
        """
        width, pick, limits, chosen, now = self.width, self.pick, self.limit_list, self.chosen, self.now
        when, dates, emails_ok = self._when, self._dates, self._emails_ok
        dates_ok = self._dates_ok
        moment_of = self._moments.get
        flags_get, categories_get = FLAGS.get, CATEGORIES.get
        control, strip = _CONTROL.search, str.strip
        out = []
        append = out.append
        for line, fields in batch:
            if len(fields) != width:
                message = COLUMN_COUNT.format(got=len(fields), want=width)
                value = ",".join(fields)[:200]
                append(Checked(line, fields, None, [Finding(E_COLUMN_COUNT, message, line, "", value)]))
                continue
            joined = "".join(fields)
            if not joined.isprintable() and control(joined):  # isprintable: C speed for the common case
                append(Checked(line, fields, None, self._controls(line, fields)))
                continue

            findings: list[Finding] = []
            fields.append("")
            values = list(map(strip, pick(fields)))
            fields.pop()
            if any(map(gt, map(len, values), limits)):
                for name, limit, value in zip(self.names, limits, values, strict=True):
                    if len(value) > limit:
                        message = TOO_LONG.format(column=name, length=len(value), limit=limit)
                        findings.append(Finding(E_FIELD_TOO_LONG, message, line, name, value[:200]))
            (
                ext,
                email,
                first_name,
                last_name,
                course_text,
                title,
                start_text,
                end_text,
                complete_text,
                completed_text,
                credit_type,
                credits_text,
                expiration_text,
                attended_text,
                category_text,
                dob_month,
                dob_day,
                state,
                license_id,
                board,
                board_id,
            ) = values

            if email:
                if email not in emails_ok:
                    found = email_check(email, line)
                    if found:
                        findings += found
                    else:
                        remember(emails_ok, email, True)
                email = email.lower()
            elif not ext:
                findings += learner_check(external_user_id=ext, email=email, line=line)
            if chosen is not None:
                if course_text and course_text != chosen:
                    findings += course_ref_check(line=line, value=course_text, chosen=chosen)
                course_text = chosen
            elif not course_text:
                findings += course_ref_check(line=line, value=course_text, chosen=None)
            complete = flags_get(complete_text.lower())
            if complete is None:
                complete, found = complete_parse(complete_text, line)
                findings += found

            start = (
                (moment_of(start_text) or when(start_text, "enrollment_start", line, findings)) if start_text else None
            )
            end = (moment_of(end_text) or when(end_text, "enrollment_end", line, findings)) if end_text else None
            completed = (
                (moment_of(completed_text) or when(completed_text, "date_completed", line, findings))
                if completed_text
                else None
            )
            expiration = None
            if expiration_text:
                expiration = dates.get(expiration_text)
                if expiration is None:
                    expiration = date_parse(expiration_text)
                    if expiration is None:
                        findings.append(date_invalid("credit_expiration", expiration_text, line))
                    else:
                        remember(dates, expiration_text, expiration)
            # Comparing aware datetimes is slow and the same few dates repeat: a combination found in order is
            # remembered by its text.
            combination = (start_text, end_text, completed_text, complete)
            if combination not in dates_ok:
                if (
                    (complete and completed is None)
                    or (completed is not None and (completed > now or (start is not None and completed < start)))
                    or (start is not None and end is not None and end < start)
                ):
                    raw = {"enrollment_start": start_text, "enrollment_end": end_text, "date_completed": completed_text}
                    findings += dates_check(
                        line=line, complete=complete, start=start, end=end, completed=completed, raw=raw, now=now
                    )
                elif not findings:
                    remember(dates_ok, combination, True)
            attended = None
            if attended_text:
                attended = flags_get(attended_text.lower())
                if attended is None:
                    attended, found = attended_parse(attended_text, line)
                    findings += found
            category = ""
            if category_text:
                category = categories_get(category_text.lower(), "")
                if not category:
                    category, found = category_parse(category_text, line)
                    findings += found
            if dob_month or dob_day:
                if not (dob_month in DOB_MONTHS and dob_day in DOB_DAYS):
                    findings += dob_check(month=dob_month, day=dob_day, line=line)
                dob_month = dob_month.zfill(2) if dob_month else ""
                dob_day = dob_day.zfill(2) if dob_day else ""

            row = Row(
                line,
                ext,
                email,
                first_name,
                last_name,
                course_text,
                title,
                start,
                end,
                complete,
                completed,
                attended,
                category,
                credit_type,
                credits_text,
                expiration,
                (dob_month, dob_day, state, license_id, board, board_id),
            )
            append(Checked(line, fields, row, findings))
        return out

    def _when(self, text: str, column: str, line: int, findings: list[Finding]) -> datetime | None:
        moment = self._moments.get(text)
        if moment is None:
            moment = when_parse(text, self.zone)
            if moment is None:
                findings.append(date_invalid(column, text, line))
                return None
            remember(self._moments, text, moment)
        return moment

    def _controls(self, line: int, fields: list[str]) -> list[Finding]:
        findings = []
        for position, value in enumerate(fields):
            match = _CONTROL.search(value)
            if match:
                column = self.names_by_position.get(position) or f"column {position + 1}"
                message = CONTROL.format(column=column, value=show(match.group()))
                findings.append(Finding(E_CONTROL_CHARACTER, message, line, column, value[:200]))
        return findings

    # -- courses: one query per batch for ids not seen before -------------------------------
    def _courses_resolve(self, checked: list[Checked]) -> None:
        unseen = {c.row.course_text for c in checked if c.row} - self.courses.keys() - self.absent
        unseen.discard("")
        if unseen:
            found = lookups.courses_find(unseen)
            self.courses.update(found)
            # Absent at first sight means a shell of this file, also once the apply has written it.
            self.absent.update(unseen - found.keys())
        credits_ok = self._credits_ok
        for item in checked:
            row = item.row
            if row is None or not row.course_text:
                continue
            course = self.courses.get(row.course_text)
            if course is None:
                # Only the global importer gets here: an unknown id becomes a course shell.
                item.findings += shell_title_check(line=row.line, course_id=row.course_text, title=row.title)
                course = CourseInfo(row.course_text, row.title, "shell", None, None, False)
            row.course = course
            # The course's id text stands for the course: within a pass it names one CourseInfo.
            key = (row.course_text, row.credit_type, row.credits_text, row.complete)
            credits = credits_ok.get(key, _UNSEEN)
            if credits is not _UNSEEN:
                row.credits = credits
                continue
            credits, found = credit_check(
                line=row.line,
                credit_type=row.credit_type,
                credits=row.credits_text,
                complete=row.complete,
                site_types=self.credit_types,
                offers=course.offers,
            )
            row.credits = credits
            if found:
                item.findings += found
            else:
                remember(credits_ok, key, credits)

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
            same = previous is not None and (row.external_user_id, row.email) == previous
            if not same:
                previous, previous_unknown = (row.external_user_id, row.email), not knows(row)
            if previous_unknown:
                unknown.append(c)
        rows = [c.row for c in unknown]
        by_ext = lookups.learners_by_external_id({r.external_user_id for r in rows if r.external_user_id})
        # By e-mail only where the external id found nobody: the external id decides when it matches.
        by_email = lookups.learners_by_email({r.email for r in rows if r.email and r.external_user_id not in by_ext})
        for item in unknown:
            row = item.row
            learner = by_ext.get(row.external_user_id) if row.external_user_id else None
            if learner is None and row.email:
                candidates = by_email.get(row.email, ())
                if len(candidates) > 1:
                    message = EMAIL_SHARED.format(count=len(candidates), value=show(row.email))
                    item.findings.append(Finding(E_VALUE_INVALID, message, row.line, "external_email", row.email))
                    continue
                if candidates:
                    learner = candidates[0]
                    if row.external_user_id and learner.external_user_id:
                        message = ID_CONFLICT.format(
                            value=show(row.external_user_id),
                            email=show(row.email),
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
                {(c.row.email, c.row.course.id) for c in unknown if c.row.email},
                {(c.row.external_user_id, c.row.course.id) for c in unknown if c.row.external_user_id},
                exclude_job=self.job_id,
            )
            for item in unknown:
                row = item.row
                if ("e:" + row.email, row.course.id) in waiting or (
                    "x:" + row.external_user_id,
                    row.course.id,
                ) in waiting:
                    message = ALREADY_PENDING.format(learner=row.who, course=row.course.external_course_id)
                    item.findings.append(Finding(E_ALREADY_PENDING, message, row.line, "", row.who))

    # -- across rows, in file order -----------------------------------------------------------
    def _cross_check(self, item: Checked) -> None:
        row = item.row
        totals = self.totals
        if row.learner is not None:
            learner_key = row.learner.user_id * 2
            theirs = row.learner.profile
            if theirs and theirs != row.profile and profile_conflicts(row.profile, theirs):
                totals.profile_conflicts += 1
        else:
            order, first, conflict, profile_differs = self.learners.find_or_add(row)
            if conflict:
                message = IDENTITY.format(learner=show(row.who))
                item.findings.append(Finding(E_INCONSISTENT_ROWS, message, row.line, "external_email", row.who))
                return
            learner_key = order * 2 + 1
            row.new_learner, row.first_of_learner = order, first
            totals.profile_conflicts += profile_differs

        course = row.course
        if course.id is None:
            shell = self.shells.get(course.external_course_id)
            if shell is None:
                shell = self.shells[course.external_course_id] = len(self.shells)
                row.first_of_shell = True
                totals.shells.append(course.external_course_id)
            course = row.course = CourseInfo(course.external_course_id, course.title, "shell", None, None, False, shell)

        key = self.enrollments.key(learner_key, course.key)
        bit = self.type_bits.get(row.credit_type, 1)
        order, first, first_line, problem = self.enrollments.add_row(key, row.line, hash(row.enrollment_fields), bit)
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
        if first and course.auto_complete:
            totals.auto_completed += 1
            if len(totals.auto_learners) < 20:
                totals.auto_learners.append(row.who)
            if course.external_course_id not in totals.auto_courses:
                totals.auto_courses.append(course.external_course_id)
        if row.learner is None and not self.create_accounts:
            totals.pending_rows += 1
            totals.pending_learners += row.first_of_learner
