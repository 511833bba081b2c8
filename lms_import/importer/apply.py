"""Stage 4, apply: write planned records, set-based.

On PostgreSQL each batch goes to each table with one COPY, ids for the records later rows refer
to (accounts, shells, enrollments) reserved from the tables' sequences in bulk; foreign keys and
unique constraints stay on. Elsewhere (the SQLite of the zero-setup run) the same rows go in
with executemany. The counting writer of a dry run writes nothing.
"""

import functools
import io
import pickle
import tempfile
from datetime import date, datetime
from decimal import Decimal
from itertools import chain

from django.apps import apps
from django.db import connection

from enrollments.models import LearnerProfile

from .lookups import index_probes
from .schema import LAYOUTS, ORDER, PROFILE_FIELDS

# NULL in the COPY text the planner writes: a control character, which no written value can hold.
NULL_TEXT = "\x01"
_NULL_LITERAL = "E'\\x01'"


@functools.cache
def _model(table: str):
    return apps.get_model(LAYOUTS[table].model)


def _tables() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Table name and column list of each table the planner fills (schema.LAYOUTS)."""
    return {name: (_model(name)._meta.db_table, layout.columns) for name, layout in LAYOUTS.items()}


class Writer:
    """Collects one batch of rows per table and writes them on flush()."""

    textual = False  # True: takes dates, times and decimals as their text (the planner caches it)
    null = None  # what the planner gives for NULL

    def __init__(self) -> None:
        self.tables = _tables()
        self.buffers: dict[str, list[tuple]] = {name: [] for name in ORDER}
        self.profile_fills: list[tuple] = []
        self.written: dict[str, int] = dict.fromkeys(ORDER, 0)

    def add(self, table: str, values: tuple) -> None:
        self.buffers[table].append(values)

    def fill_profile(self, user_id: int, profile: tuple[str, ...]) -> None:
        self.profile_fills.append((*profile, user_id))

    def reserve(self, table: str, count: int) -> list[int]:
        raise NotImplementedError

    def flush(self) -> None:
        for name in ORDER:
            rows = self.buffers[name]
            if rows:
                self._write(name, rows)
                self.written[name] += len(rows)
                rows.clear()
        if self.profile_fills:
            self._fill_profiles(self.profile_fills)
            self.profile_fills.clear()

    def _write(self, table: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def _fill_profiles(self, rows: list[tuple]) -> None:
        sets = ", ".join(f"{f} = CASE WHEN {f} = '' THEN %s ELSE {f} END" for f in PROFILE_FIELDS)
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {LearnerProfile._meta.db_table} SET {sets} WHERE user_id = %s", rows)


class CountingWriter(Writer):
    """A dry run's writer: hands out stand-in ids and counts, writes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def reserve(self, table: str, count: int) -> list[int]:
        first = self._next + 1
        self._next += count
        return list(range(first, first + count))

    def _write(self, table: str, rows: list[tuple]) -> None:
        pass

    def _fill_profiles(self, rows: list[tuple]) -> None:
        pass


class CopyWriter(Writer):
    """PostgreSQL: COPY per table per batch; ids reserved from the sequences."""

    textual = True
    null = NULL_TEXT

    def __init__(self) -> None:
        super().__init__()
        self.sequences: dict[str, str] = {}

    def reserve(self, table: str, count: int) -> list[int]:
        if not count:
            return []
        with connection.cursor() as cursor:
            # The sequence named once (pg_get_serial_sequence per value cost ten times the nextval), the ids
            # back as one string rather than a million one-column rows.
            cursor.execute(
                "SELECT string_agg(nextval(%s::regclass)::text, ',') FROM generate_series(1, %s)",
                [self._sequence(table), count],
            )
            return [int(i) for i in cursor.fetchone()[0].split(",")]

    def _sequence(self, table: str) -> str:
        if table not in self.sequences:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [self.tables[table][0]])
                self.sequences[table] = cursor.fetchone()[0]
        return self.sequences[table]

    def _write(self, table: str, rows: list[tuple]) -> None:
        self._copy(table, self._text(rows))

    @staticmethod
    def _text(rows: list[tuple]) -> str:
        """COPY's text format: values joined by tabs, NULL_TEXT for NULL, backslashes doubled.

        The planner gives every value as text or as what str() writes as PostgreSQL reads it (ids, True/False),
        and NULL as NULL_TEXT. No value holds a tab, a line break or a control character: the rows of a file
        that do are refused (E_CONTROL_CHARACTER), and nothing else the planner writes has any.
        """
        if None in chain.from_iterable(rows):
            raise ValueError("A planned row holds None where the COPY writer takes NULL_TEXT.")
        text = "\n".join(["\t".join(map(str, row)) for row in rows]) + "\n"
        return text.replace("\\", "\\\\") if "\\" in text else text

    def _copy(self, table: str, text: str) -> None:
        name, columns = self.tables[table]
        sql = f"COPY {name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT text, NULL {_NULL_LITERAL})"
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(sql, io.StringIO(text))

    def payload_write(self, payload: dict) -> None:
        """Write a batch that the producer process planned and formatted (see SerializingWriter)."""
        for table in ORDER:
            if payload.get(table):
                self._copy(table, payload[table])
                self.written[table] += payload[f"{table}_rows"]
        if payload.get("profile_fills"):
            self._fill_from_text(payload["profile_fills"])
        self.constraints_check()

    @staticmethod
    def constraints_check() -> None:
        """Run the batch's deferred foreign-key checks now, not all at commit.

        Switching deferred constraints to IMMEDIATE runs every check still pending (PostgreSQL's
        set-based path, the one commit uses, about half the cost of checking row by row during COPY);
        switching back defers the next batch's. The checks then overlap the producer's next batch
        instead of adding up at the end.
        """
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def _fill_profiles(self, rows: list[tuple]) -> None:
        self._fill_from_text(self._text(rows))

    def _fill_from_text(self, text: str) -> None:
        """Existing profiles take the file's values where theirs are blank: COPY to a scratch table, one UPDATE.

        The scratch table is the connection's own (TEMPORARY) and emptied per batch. The UPDATE probes by user_id:
        left to itself PostgreSQL hashed the fills and scanned every profile, a table the import grows batch
        by batch, and the fills alone went quadratic.
        """
        table = LearnerProfile._meta.db_table
        scratch = "lms_import_profile_fill"
        fields = ", ".join(PROFILE_FIELDS)
        sets = ", ".join(f"{f} = CASE WHEN p.{f} = '' THEN v.{f} ELSE p.{f} END" for f in PROFILE_FIELDS)
        with connection.cursor() as cursor:
            columns = ", ".join(f"{f} text NOT NULL" for f in PROFILE_FIELDS)
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} ({columns}, user_id bigint NOT NULL)")
            cursor.execute(f"TRUNCATE {scratch}")
            copy = f"COPY {scratch} ({fields}, user_id) FROM STDIN WITH (FORMAT text, NULL {_NULL_LITERAL})"
            cursor.cursor.copy_expert(copy, io.StringIO(text))
            cursor.execute(f"ANALYZE {scratch}")  # its size, so that the fills drive the join
            with index_probes(cursor):
                cursor.execute(f"UPDATE {table} AS p SET {sets} FROM {scratch} AS v WHERE p.user_id = v.user_id")


class SerializingWriter(CopyWriter):
    """In the producer process: ids reserved from the sequences, rows formatted as CSV, nothing written."""

    def __init__(self) -> None:
        super().__init__()
        self.payload: dict = {}

    def _write(self, table: str, rows: list[tuple]) -> None:
        self.payload[table] = self._text(rows)
        self.payload[f"{table}_rows"] = len(rows)

    def _fill_profiles(self, rows: list[tuple]) -> None:
        self.payload["profile_fills"] = self._text(rows)

    def take(self) -> dict:
        self.flush()
        payload, self.payload = self.payload, {}
        return payload


class InsertWriter(Writer):
    """Any other database: executemany; ids handed out above the table's current maximum.

    The import lock serialises imports, but this transaction's own ORM writes (held rows applied at the end)
    and other writers take ids too: the maximum is read again at every reservation.
    """

    def __init__(self) -> None:
        super().__init__()
        self._next: dict[str, int] = {}

    def reserve(self, table: str, count: int) -> list[int]:
        if not count:
            return []
        name = self.tables[table][0]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {name}")
            used = cursor.fetchone()[0]
            if connection.vendor == "sqlite":  # AUTOINCREMENT never gives an id twice, even a deleted one's
                cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = %s", [name])
                used = max(used, cursor.fetchone()[0])
            first = max(self._next.get(table, 0), used) + 1
        self._next[table] = first + count - 1
        return list(range(first, first + count))

    def _write(self, table: str, rows: list[tuple]) -> None:
        name, columns = self.tables[table]
        ops = connection.ops
        adapted = [tuple(_adapt(ops, v) for v in row) for row in rows]
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", adapted)


class StagedWriter(InsertWriter):
    """SQLite's apply: batches go to a temporary file while the pass checks them; `replay` writes them all.

    SQLite lets one connection write at a time: an apply that wrote batch by batch would hold the write lock
    for the whole pass, and the heartbeat, the progress and every other writer would wait for it. Staged,
    the pass only reads, and the one transaction that writes lasts the few seconds of the replay. Ids are
    reserved as they are planned (InsertWriter), so later rows can refer to them before they are written.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stage = tempfile.TemporaryFile(prefix="lms-import-stage-")

    def _write(self, table: str, rows: list[tuple]) -> None:
        pickle.dump((table, rows), self._stage, protocol=pickle.HIGHEST_PROTOCOL)

    def _fill_profiles(self, rows: list[tuple]) -> None:
        pickle.dump(("profile fills", rows), self._stage, protocol=pickle.HIGHEST_PROTOCOL)

    def replay(self) -> None:
        """Write every staged batch, in the order it was planned."""
        self._stage.seek(0)
        while True:
            try:
                table, rows = pickle.load(self._stage)  # noqa: S301 - our own file, written just above
            except EOFError:
                return
            if table == "profile fills":
                super()._fill_profiles(rows)
            else:
                super()._write(table, rows)

    def close(self) -> None:
        self._stage.close()


def _adapt(ops, value):
    if isinstance(value, datetime):
        return ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return ops.adapt_datefield_value(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def writer_for_connection(*, dry_run: bool) -> Writer:
    if dry_run:
        return CountingWriter()
    return CopyWriter() if connection.vendor == "postgresql" else InsertWriter()
