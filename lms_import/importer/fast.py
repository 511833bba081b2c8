"""The speed seam: the forms of the rules and of the cross-row state that an import runs by default.

Each class here stands for one in rows.py (or a rule of the domain) and must give exactly what it
gives: tests/test_differential.py runs every path of an import with both (IMPORT_REFERENCE_RULES)
and compares findings and written records. Nothing here decides anything the rules do not:

- FastRowParser remembers, per column, the values that texts parsed to without a finding, and which
  inputs of the row rules passed; a row it has not seen the like of goes to the reference parser whole.
- PackedLearners and PackedEnrollments keep the cross-row state (one entry per new learner and per
  enrollment, the part of an import that grows with the file) in typed arrays instead of dicts of
  tuples. Hashes only say where to look: every match is confirmed on the exact values kept beside.
- CreditChecks remembers which (course, credit type, credits, complete) passed credits.rules.credit_check.
"""

import operator
from array import array
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from courses.rules import course_ref_check
from credits.rules import credit_check
from enrollments.rules import dates_check, learner_check, text_parse

from .rows import CONTROL_CHARACTER, DATE_COLUMNS, Checked, RowParser, remember
from .schema import COLUMNS, NAMES, Header, Row

_MISS = object()
_WORD = (1 << 64) - 1


class FastRowParser(RowParser):
    """The reference parser's results, remembered: C-speed shape checks, then cached column values."""

    def __init__(self, header: Header, *, chosen: str | None, zone: tzinfo, now: datetime):
        super().__init__(header, chosen=chosen, zone=zone, now=now)
        width = self.width
        # Missing columns read position `width`: the "" appended to each row while it is picked.
        self.pick = operator.itemgetter(*[p if p >= 0 else width for p in self.positions])
        self.limits = [column.max_length for column in COLUMNS]
        # Columns that need a parser call (not free text), with the values their texts parsed to.
        self.parsed = []
        for i, column in enumerate(COLUMNS):
            if column.parse is not text_parse:
                cache: dict = {}
                self.parsed.append((i, cache.get, cache, column.parse, column.name))
        self.learner_ok: set[tuple[bool, bool]] = set()  # (no external id, no e-mail) that learner_check passed
        self.course_ok: dict[str, bool] = {}
        self.dates_ok: dict[tuple, bool] = {}
        self.start_at, self.end_at, self.completed_at = self.dates_at
        self.complete_at = NAMES.index("complete")
        self.ext_at, self.email_at, self.course_at = (
            NAMES.index("external_user_id"),
            NAMES.index("external_email"),
            NAMES.index("external_course_id"),
        )
        self.profile_get = operator.itemgetter(*self.profile_at)

    def parse_batch(self, batch: list[tuple[int, list[str]]]) -> list[Checked]:
        width, pick, limits, zone, chosen = self.width, self.pick, self.limits, self.zone, self.chosen
        parsed, profile_get, strip, gt = self.parsed, self.profile_get, str.strip, operator.gt
        control = CONTROL_CHARACTER.search
        start_at, end_at, completed_at, complete_at = self.start_at, self.end_at, self.completed_at, self.complete_at
        ext_at, email_at, course_at = self.ext_at, self.email_at, self.course_at
        learner_ok, course_ok, dates_ok = self.learner_ok, self.course_ok, self.dates_ok
        out = []
        append = out.append
        for line, fields in batch:
            if len(fields) != width:
                append(self.parse(line, fields))
                continue
            fields.append("")
            picked = pick(fields)  # the columns the importer reads, in COLUMNS order ("" for those not in the file)
            fields.pop()
            joined = "".join(picked)
            if not joined.isprintable() and control(joined):  # isprintable: C speed for the common case
                append(self.parse(line, fields))
                continue
            values = list(map(strip, picked))
            if any(map(gt, map(len, values), limits)):
                append(self.parse(line, fields))
                continue
            # The date rule's inputs, as text: what dates_check saw pass is remembered by them.
            dates = (values[start_at], values[end_at], values[completed_at], values[complete_at])
            clean = True
            for i, cached, cache, parse, name in parsed:
                text = values[i]
                value = cached(text, _MISS)
                if value is _MISS:
                    value, found = parse(text, line, name, zone)
                    if found:
                        clean = False
                        break
                    remember(cache, text, value)
                values[i] = value
            if not clean:
                append(self.parse(line, fields))
                continue

            # The row rules, on inputs already seen to pass; anything else goes to the reference whole.
            learner = (not values[ext_at], not values[email_at])
            if learner not in learner_ok:
                if learner_check(has_external_user_id=not learner[0], has_email=not learner[1], line=line):
                    append(self.parse(line, fields))
                    continue
                learner_ok.add(learner)
            course = values[course_at]
            if course not in course_ok:
                if course_ref_check(line=line, value=course, chosen=chosen):
                    append(self.parse(line, fields))
                    continue
                remember(course_ok, course, True)
            if chosen is not None:
                values[course_at] = chosen
            if dates not in dates_ok:
                found = dates_check(
                    line=line,
                    complete=values[complete_at],
                    start=values[start_at],
                    end=values[end_at],
                    completed=values[completed_at],
                    raw=dict(zip(DATE_COLUMNS, dates[:3], strict=True)),
                    now=self.now,
                )
                if found:
                    append(self.parse(line, fields))
                    continue
                remember(dates_ok, dates, True)
            append(Checked(line, fields, Row(line, *values, profile_get(values))))
        return out


class CreditChecks:
    """credits.rules.credit_check, remembered for the inputs that passed (the course's id text stands for the
    course: within one pass it names one CourseInfo)."""

    def __init__(self) -> None:
        self.passed: dict[tuple, Decimal | None] = {}

    def __call__(
        self,
        *,
        line: int,
        course_key: str,
        credit_type: str,
        credits: str,
        complete: bool,
        site_types,
        offers,
        names=None,
        labels=None,
    ):
        key = (course_key, credit_type, credits, complete)
        number = self.passed.get(key, _MISS)
        if number is not _MISS:
            return number, []
        number, found = credit_check(
            line=line,
            credit_type=credit_type,
            credits=credits,
            complete=complete,
            site_types=site_types,
            offers=offers,
            names=names,
            labels=labels,
        )
        if not found:
            remember(self.passed, key, number)
        return number, found


# -- compact exact cross-row state ------------------------------------------------------------------------
EMPTY = 0
# Fibonacci hashing: the top bits of key * 2^64/phi spread even sequential keys (learner << 22 | course)
# evenly over the slots; taking low bits of such keys would pile them into a few long probe runs.
_GOLDEN = 0x9E3779B97F4A7C15


def table_capacity(entries: int, load: float = 0.7, most: int = 1 << 22) -> int:
    """The power of two that holds `entries` below the load factor (at least 4096, at most `most` to start)."""
    capacity = 1 << 12
    while capacity * load < entries and capacity < most:
        capacity <<= 1
    return capacity


class PackedTable:
    """Non-zero uint64 keys to one uint32 value each (open addressing, linear probing).

    A key may be in the table more than once: callers whose keys are hashes walk every slot of a key
    (`slots`) and confirm each candidate on the exact values they keep elsewhere.
    """

    def __init__(self, capacity: int = 1 << 12, load: float = 0.7):
        self.load = load
        self.count = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.mask = capacity - 1
        self.shift = 64 - (capacity.bit_length() - 1)
        self.limit = int(capacity * self.load)
        self.keys = array("Q", [EMPTY]) * capacity
        self.values = array("I", [0]) * capacity

    def slots(self, key: int):
        """Every slot holding key, in probe order."""
        keys, mask = self.keys, self.mask
        slot = ((key * _GOLDEN) & _WORD) >> self.shift
        while True:
            found = keys[slot]
            if found == EMPTY:
                return
            if found == key:
                yield slot
            slot = (slot + 1) & mask

    def find(self, key: int) -> int:
        """The first slot of key, or -1 (for exact keys, which are never in the table twice)."""
        keys, mask = self.keys, self.mask
        slot = ((key * _GOLDEN) & _WORD) >> self.shift
        while True:
            found = keys[slot]
            if found == key:
                return slot
            if found == EMPTY:
                return -1
            slot = (slot + 1) & mask

    def insert(self, key: int, value: int) -> None:
        if self.count >= self.limit:
            self._grow()
        keys, mask = self.keys, self.mask
        slot = ((key * _GOLDEN) & _WORD) >> self.shift
        while keys[slot] != EMPTY:
            slot = (slot + 1) & mask
        keys[slot] = key
        self.values[slot] = value
        self.count += 1

    def _grow(self) -> None:
        old_keys, old_values = self.keys, self.values
        self._allocate((self.mask + 1) * 2)
        self.count = 0
        for key, value in zip(old_keys, old_values, strict=True):
            if key != EMPTY:
                self.insert(key, value)

    def __len__(self) -> int:
        return self.count


def identifier_key(kind: int, text: str) -> int:
    """Where an identifier is looked for (kind 0: external id, 1: e-mail): a non-zero 64-bit hash."""
    return (hash(text) << 1 | kind) & _WORD or 2


class PackedLearners:
    """The reference Learners (rows.py), compact: per learner, its identifiers and first profile as bytes.

    `blob` holds, for learner n, `external id \\x1f e-mail \\x1e profile values joined by \\x1f` from
    `starts[n]` to `starts[n + 1]` (checked rows hold no control characters, so the separators are safe).
    The table maps identifier hashes to learner orders; a hash that finds a learner is confirmed on the
    identifier itself, so two identifiers with one hash are two learners. Files list a learner's rows
    together: the last learner found is remembered, and the next row of the same learner skips the table.
    """

    def __init__(self, expected_rows: int = 0, key: Callable[[int, str], int] | None = None) -> None:
        self._table = PackedTable(table_capacity(expected_rows))
        self._key = key or identifier_key
        self._custom_key = key is not None  # tests: a hash that makes every identifier collide
        self.blob = bytearray()
        self.starts = array("Q", [0])
        self._last: tuple = ("", "", -1, ())  # external id, e-mail, order, first profile

    @property
    def count(self) -> int:
        return len(self.starts) - 1

    def _record(self, order: int) -> tuple[str, str, tuple[str, ...]]:
        text = self.blob[self.starts[order] : self.starts[order + 1]].decode()
        identity, profile = text.split("\x1e")
        external_id, email = identity.split("\x1f")
        return external_id, email, tuple(profile.split("\x1f"))

    def _find(self, external_id: str, email: str) -> tuple[int, tuple]:
        """(order, its record) of the learner this external id (else this e-mail) names; (-1, ()) if none."""
        if external_id:
            found = self._probe(0, external_id)
            if found[0] >= 0:
                return found
        if email:
            return self._probe(1, email)
        return -1, ()

    def _probe(self, kind: int, text: str) -> tuple[int, tuple]:
        table = self._table
        keys, values, mask = table.keys, table.values, table.mask
        key = self._key(kind, text) if self._custom_key else (hash(text) << 1 | kind) & _WORD or 2  # identifier_key
        slot = ((key * _GOLDEN) & _WORD) >> table.shift
        while True:  # PackedTable.slots, inline: among the import's busiest lines
            found = keys[slot]
            if found == EMPTY:
                return -1, ()
            if found == key:
                record = self._record(values[slot])
                if record[kind] == text:
                    return values[slot], record
            slot = (slot + 1) & mask

    def knows(self, row: Row) -> bool:
        last = self._last
        if row.external_user_id == last[0] and row.external_email == last[1]:
            return True
        return self._find(row.external_user_id, row.external_email)[0] >= 0

    def find_or_add(self, row: Row) -> tuple[int, bool, bool, tuple[str, ...]]:
        """(order, first row of this learner, identity conflict, the profile of the learner's first row)."""
        external_id, email = row.external_user_id, row.external_email
        last = self._last
        if external_id == last[0] and email == last[1]:
            return last[2], False, False, last[3]
        order, record = self._find(external_id, email)
        if order >= 0:
            if (record[0], record[1]) != (external_id, email):
                return order, False, True, ()
            self._last = (external_id, email, order, record[2])
            return order, False, False, record[2]
        order = self.count
        self.blob += f"{external_id}\x1f{email}\x1e{chr(31).join(row.profile)}".encode()
        self.starts.append(len(self.blob))
        for kind, text in ((0, external_id), (1, email)):
            if text:
                self._table.insert(self._key(kind, text), order)
        self._last = (external_id, email, order, row.profile)
        return order, True, False, row.profile

    def username_earlier(self, username: str, order: int) -> bool:
        """Does a learner before `order` in the file get `username` as its own (its e-mail, or its id without one)?"""
        if not username:
            return False  # no learner is named by an empty identifier
        for slot in self._table.slots(self._key(1, username)):
            earlier = self._table.values[slot]
            if earlier < order and self._record(earlier)[1] == username:
                return True
        for slot in self._table.slots(self._key(0, username)):
            earlier = self._table.values[slot]
            if earlier < order:
                external_id, email, _ = self._record(earlier)
                if external_id == username and not email:
                    return True
        return False


class PackedProfiles:
    """The reference Profiles (rows.py), compact: learner key -> its changed profile as bytes in one blob.

    A change appends the new profile and points the key at it. The last learner asked about is remembered:
    a learner's rows come together.
    """

    def __init__(self, expected_rows: int = 0) -> None:
        self._table = PackedTable(table_capacity(expected_rows // 4))
        self.blob = bytearray()
        self.starts = array("Q", [0])
        self._last: tuple = (0, None)

    def get(self, key: int) -> tuple[str, ...] | None:
        if key == self._last[0]:
            return self._last[1]
        slot = self._table.find(key)
        if slot < 0:
            profile = None
        else:
            index = self._table.values[slot]
            profile = tuple(self.blob[self.starts[index] : self.starts[index + 1]].decode().split("\x1f"))
        self._last = (key, profile)
        return profile

    def set(self, key: int, profile: tuple[str, ...]) -> None:
        index = len(self.starts) - 1
        self.blob += "\x1f".join(profile).encode()
        self.starts.append(len(self.blob))
        slot = self._table.find(key)
        if slot < 0:
            self._table.insert(key, index)
        else:
            self._table.values[slot] = index
        self._last = (key, profile)


_NONE = -(1 << 63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CATEGORY_BITS = {"": 0, "physician": 1, "other": 2}
_ATTENDED_BITS = {None: 0, False: 1, True: 2}


def _micros(moment: datetime | None) -> int:
    """A moment as microseconds since 1970 UTC: equal exactly when the moments are (as aware datetimes compare)."""
    if moment is None:
        return _NONE
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class PackedEnrollments:
    """The reference Enrollments (rows.py), compact: the key is exact, (learner key << 22) | course key, and
    each enrollment's first line, fields and credit types are kept in arrays indexed by its order. (The checker
    numbers the courses of a file densely, so the course key is small; keys that do not fit get one of their
    own from a dict.)

    Fields are kept exactly: each moment as microseconds (equal when the moments are equal), complete,
    attended and category as bits. Credit types are a bit each (types past the 63rd in a small dict).
    """

    def __init__(self, expected_rows: int = 0, credit_types: dict[str, int] | None = None) -> None:
        self._table = PackedTable(table_capacity(expected_rows))
        self.first_line = array("I")
        self.start = array("q")
        self.end = array("q")
        self.completed = array("q")
        self.flags = array("B")
        self.types = array("Q")
        self._overflow: dict[int, int] = {}
        self._wide: dict[tuple[int, int], int] = {}
        self._encoded: dict[tuple, tuple[int, int, int, int]] = {}
        # "" (a row without credit) is bit 0; the site's types follow in name order.
        self._bits = {name: 1 << (i + 1) for i, name in enumerate(sorted(credit_types or {}))} | {"": 1}
        self._last = (-1, -1, None)  # key, order and fields of the last row: an enrollment's rows come together

    @property
    def count(self) -> int:
        return len(self.first_line)

    def _bit(self, credit_type: str) -> int:
        """A new type's bit: not a site type (checked rows never get here), but the state stays exact anyway."""
        bit = self._bits[credit_type] = 1 << (len(self._bits) + 1)
        return bit

    def add_row(
        self, learner_key: int, course_key: int, line: int, fields: tuple, credit_type: str
    ) -> tuple[int, bool, int, str | None]:
        """(enrollment order, first row of it, its first line, problem: None, 'inconsistent' or 'duplicate')."""
        if course_key < 1 << 22 and learner_key < 1 << 41:
            key = learner_key << 22 | course_key
        else:  # beyond the packed key space (ids past 2^40): a key of its own, numbered above 2^63
            key = self._wide.setdefault((learner_key, course_key), 1 << 63 | len(self._wide))
        bit = self._bits.get(credit_type) or self._bit(credit_type)
        last_key, order, last_fields = self._last
        if key != last_key:
            table = self._table
            slot = table.find(key)
            if slot < 0:
                order = len(self.first_line)
                table.insert(key, order)
                start, end, completed, flags = self._encode(fields)
                self.first_line.append(line)
                self.start.append(start)
                self.end.append(end)
                self.completed.append(completed)
                self.flags.append(flags)
                if bit < 1 << 64:
                    self.types.append(bit)
                else:
                    self.types.append(0)
                    self._overflow[order] = bit
                self._last = (key, order, fields)
                return order, True, line, None
            order = table.values[slot]
            same = self._fields_equal(order, fields)
        else:
            same = last_fields == fields
        first = self.first_line[order]
        if not same:
            return order, False, first, "inconsistent"
        self._last = (key, order, fields)
        if bit < 1 << 64:
            types = self.types[order]
            if types & bit:
                return order, False, first, "duplicate"
            self.types[order] = types | bit
            return order, False, first, None
        if self._overflow.get(order, 0) & bit:
            return order, False, first, "duplicate"
        self._overflow[order] = self._overflow.get(order, 0) | bit
        return order, False, first, None

    def _encode(self, fields: tuple) -> tuple[int, int, int, int]:
        """Start, end and completion as microseconds, complete, attended and category as bits (remembered: the
        same few dates repeat)."""
        encoded = self._encoded.get(fields)
        if encoded is None:
            start, end, complete, completed, attended, category = fields
            flags = complete | _ATTENDED_BITS[attended] << 1 | _CATEGORY_BITS[category] << 3
            encoded = (_micros(start), _micros(end), _micros(completed), flags)
            remember(self._encoded, fields, encoded)
        return encoded

    def _fields_equal(self, order: int, fields: tuple) -> bool:
        start, end, completed, flags = self._encode(fields)
        return (
            self.start[order] == start
            and self.end[order] == end
            and self.completed[order] == completed
            and self.flags[order] == flags
        )
