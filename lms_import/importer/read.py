"""Stage 1, read: from bytes on disk to numbered rows of text.

Looks at the whole file once (size, checksum, what it is: a workbook, or text in which encoding, its
line count) at C speed, then streams a CSV file's rows through the csv module (a workbook's go through
workbook.py). Every way a file can be unreadable ends here with a file-level finding, quickly: a PDF, a
binary, an undecodable byte, a quote that never closes. Nothing here can hang: the work is bounded by
the file's size.
"""

import codecs
import csv
import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from core.csv_safety import csv_unescape
from core.findings import F_EMPTY, F_ENCODING, F_NOT_CSV, F_TOO_LARGE, W_ENCODING_GUESSED, FileProblem, Finding

CHUNK = 1 << 20
MAX_FIELD_CHARS = 64 * 1024  # longer, across lines, can only be a quote that never closed
SNIFF_CHARS = 64 * 1024  # of the header line, to find its delimiter
# The last columns of an error report (report.py): a file that ends with them is a report come back.
REPORT_COLUMNS = ("_line", "_codes", "_messages")
DELIMITERS = (",", ";", "\t")

_MAGIC = (
    (b"PK\x03\x04", "a zip archive (a Word document, say), not a workbook"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "a rich-text document"),
)
SAVE_AS_CSV = (
    "Upload the course records as a CSV file or a workbook (.xlsx, .xls, .ods); from Excel, File → Save As → "
    "'Excel Workbook' or 'CSV UTF-8 (Comma delimited)'."
)
WORKBOOK_LABELS = {"xlsx": "Excel workbook (.xlsx)", "xls": "Excel 97-2003 workbook", "ods": "OpenDocument (.ods)"}


def not_csv_kind(head: bytes) -> str | None:
    """What a file is, from its first bytes, when it is something admins upload by mistake instead of a CSV."""
    return next((what for magic, what in _MAGIC if head.startswith(magic)), None)


def workbook_kind(path, head: bytes) -> str | None:
    """'xlsx', 'xls' or 'ods' for a workbook, from its first bytes and, for a zip, its contents; else None.

    `path` is a path or a seekable binary file (an upload)."""
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"  # an OLE container: an .xls, or a password-protected workbook (workbook.py says which)
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "mimetype" in names and archive.read("mimetype").startswith(
                b"application/vnd.oasis.opendocument.spread"
            ):
                return "ods"
    except (zipfile.BadZipFile, OSError, KeyError):
        return "xlsx" if b"xl/" in head else None  # a damaged workbook: the reader says so
    finally:
        if hasattr(path, "seek"):
            path.seek(0)
    return None


_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0c")


@dataclass
class FileFacts:
    size: int
    sha256: str
    encoding: str  # a Python codec name
    encoding_label: str  # what the job and the admin see
    guessed: bool
    newlines: int
    kind: str = "csv"  # or a workbook's: xlsx, xls, ods


_LABEL_CODECS = {"UTF-8": "utf-8", "UTF-8 with BOM": "utf-8-sig", "UTF-16": "utf-16", "Windows-1252": "cp1252"}


def recorded_facts(job) -> FileFacts | None:
    """The facts a job's validation recorded of its file (its kind and encoding), enough to read its first rows
    again without looking at the whole file; None when it recorded none."""
    kind = next((kind for kind, label in WORKBOOK_LABELS.items() if label == job.encoding), "csv")
    if kind == "csv" and job.encoding not in _LABEL_CODECS:
        return None
    encoding = _LABEL_CODECS.get(job.encoding, "")
    return FileFacts(job.file_size, job.sha256, encoding, job.encoding, job.encoding == "Windows-1252", 0, kind)


def file_inspect(path: Path, *, max_bytes: int, max_workbook_bytes: int | None = None) -> FileFacts:
    """Check that the file is text we can decode; return its size, checksum, encoding and line count."""
    size = path.stat().st_size
    if size > max_bytes:
        raise FileProblem(
            Finding(
                F_TOO_LARGE,
                f"The file is {size:,} bytes; the limit is {max_bytes:,}. Split it into smaller files.",
                value=str(size),
            )
        )
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    if not head.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe"):
        raise FileProblem(Finding(F_EMPTY, "The file is empty. Export the course records again and upload that file."))
    kind = workbook_kind(path, head)
    if kind:
        if max_workbook_bytes is not None and size > max_workbook_bytes:
            raise FileProblem(
                Finding(
                    F_TOO_LARGE,
                    f"The workbook is {size:,} bytes; a workbook is read whole into memory, so the limit for one is "
                    f"{max_workbook_bytes:,}. Save the sheet as 'CSV UTF-8' (a CSV file may be up to {max_bytes:,} "
                    f"bytes) and upload that, or split the workbook.",
                    value=str(size),
                )
            )
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return FileFacts(size, digest.hexdigest(), "", WORKBOOK_LABELS[kind], False, 0, kind)
    what = not_csv_kind(head)
    if what:
        raise FileProblem(
            Finding(F_NOT_CSV, f"This file is {what}, not a CSV file. {SAVE_AS_CSV}", value=head[:8].hex(" "))
        )

    chosen = _encoding_choose(head)
    if chosen is None:
        # No BOM: UTF-8 if every byte decodes as UTF-8 (one pass does that and the checksum), else Windows-1252.
        scan = _scan(path, "utf-8")
        encoding, label, guessed = ("utf-8", "UTF-8", False) if scan.error is None else ("cp1252", "Windows-1252", True)
        if guessed:
            scan = _scan(path, encoding)
    else:
        encoding, label, guessed = chosen
        scan = _scan(path, encoding)
    if scan.error is not None:
        offset, sample = scan.error
        raise _encoding_problem(label, offset, sample)
    return FileFacts(size, scan.digest, encoding, label, guessed, scan.newlines)


@dataclass
class _Scan:
    digest: str
    newlines: int
    error: tuple[int, bytes] | None  # byte offset and bytes of the first that does not decode


def _scan(path: Path, encoding: str) -> _Scan:
    """One read of the whole file: its checksum, its line count, and whether it decodes."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    newlines = offset = 0
    error = None
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            if error is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    error = (offset + exc.start, chunk[exc.start : exc.start + 4])
            offset += len(chunk)
    if error is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            error = (offset, b"")
    return _Scan(digest.hexdigest(), newlines, error)


def _encoding_choose(head: bytes) -> tuple[str, str, bool] | None:
    """(codec, label, guessed) from a BOM or UTF-16 without one; None: UTF-8 or Windows-1252, decided by a scan."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, {"utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16"}[codec], False

    controls = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROLS)
    if head.count(0) > len(head) // 10:
        # Text with a NUL every other byte is UTF-16 without its BOM; anything else with that many NULs is binary.
        guess = charset_normalizer.from_bytes(head).best()
        if guess is not None and guess.encoding.startswith("utf_16"):
            return guess.encoding, "UTF-16", True
    if controls > max(8, len(head) // 50):
        raise FileProblem(
            Finding(
                F_NOT_CSV,
                f"This file is not text: {controls} of its first {len(head):,} bytes are control or NUL bytes. "
                f"Upload the course records saved as 'CSV UTF-8' from your spreadsheet program.",
                value=head[:16].hex(" "),
            )
        )
    return None


def _encoding_problem(label: str, offset: int, sample: bytes) -> FileProblem:
    return FileProblem(
        Finding(
            F_ENCODING,
            f"The file cannot be read as {label}: byte {offset:,} ({sample.hex(' ') or 'end of file'}) is not valid "
            f"there. Save the file from your spreadsheet program as 'CSV UTF-8' and upload it again.",
            value=sample.hex(" "),
            column=f"byte {offset}",
        )
    )


def encoding_warning(facts: FileFacts) -> tuple[str, str, int] | None:
    if not facts.guessed:
        return None
    return (
        W_ENCODING_GUESSED,
        f"The file is not UTF-8 and was read as {facts.encoding_label}. Check accented names in the preview.",
        1,
    )


class CsvSource:
    """The rows of one decoded file, read once: (line, fields), line counted from the header = 1.

    What a file can do to a worker is bounded here: more lines than the row limit are refused before any is
    parsed, more columns than the column limit when the header is read, and a batch holds at most
    `max_chars` characters of text however wide its rows.
    """

    def __init__(self, path: Path, facts: FileFacts, *, max_rows: int, max_columns: int):
        self.path = path
        self.facts = facts
        self.max_rows = max_rows
        self.delimiter = ","
        self.header: list[str] = []
        self.rows_read = 0
        self.chars = 0  # characters read so far
        self.last_line = ""
        self.expected_rows = max(facts.newlines - 1, 1)  # for the progress bar
        self.sheet = ""
        if facts.newlines - 1 > max_rows:
            raise FileProblem(
                Finding(
                    F_TOO_LARGE,
                    f"The file has {facts.newlines:,} lines; one import takes at most {max_rows:,} rows. Split it "
                    f"into smaller files.",
                    value=str(facts.newlines),
                )
            )
        self._file = path.open("r", encoding=facts.encoding, newline="")
        first = self._file.readline()
        self.delimiter = delimiter_sniff(first[:SNIFF_CHARS])
        self._file.seek(0)
        csv.field_size_limit(MAX_FIELD_CHARS)
        self._reader = csv.reader(self._counted(self._file), delimiter=self.delimiter)
        try:
            self.header = next(self._reader)
        except StopIteration:
            self.close()
            raise FileProblem(Finding(F_EMPTY, "The file has no header line.")) from None
        except csv.Error as exc:
            self.close()
            raise FileProblem(_broken_quoting(1, exc)) from None
        if len(self.header) > max_columns:
            self.close()
            raise FileProblem(
                Finding(
                    F_TOO_LARGE,
                    f"The header has {len(self.header):,} columns; the importer reads at most {max_columns:,}. "
                    f"Keep the course record columns (see the template) and delete the others.",
                    line=1,
                    value=str(len(self.header)),
                )
            )
        if not any(cell.strip() for cell in self.header):
            self.close()
            raise FileProblem(Finding(F_EMPTY, "The first line of the file is blank; it must be the header.", line=1))
        # An error report come back: its diagnosis columns are not the file's, and its cells lose the apostrophe
        # the report put before what a spreadsheet would run as a formula.
        self.is_report = [cell.strip() for cell in self.header[-len(REPORT_COLUMNS) :]] == list(REPORT_COLUMNS)
        if self.is_report:
            self.header = [csv_unescape(cell) for cell in self.header[: -len(REPORT_COLUMNS)]]

    def _counted(self, file) -> Iterator[str]:
        for text in file:
            self.chars += len(text)
            self.last_line = text
            yield text

    def batches(self, size: int, max_chars: int) -> Iterator[list[tuple[int, list[str]]]]:
        """(line of the row's start, its fields), up to `size` rows and about `max_chars` characters at a time;
        blank rows are skipped."""
        reader = self._reader
        line = reader.line_num
        batch: list[tuple[int, list[str]]] = []
        batch_start = self.chars
        rows = iter(reader)
        while True:
            try:
                for fields in rows:
                    start, line = line + 1, reader.line_num
                    if self.is_report:
                        fields = self._unreported(fields)
                    if fields and any(fields):  # not a blank line or a row of empty cells (Excel leaves them)
                        batch.append((start, fields))
                        if len(batch) >= size or self.chars - batch_start >= max_chars:
                            self._count(batch)
                            yield batch
                            batch, batch_start = [], self.chars
                break
            except csv.Error as exc:
                if reader.line_num != line + 1 or "field larger than field limit" not in str(exc):
                    raise FileProblem(_broken_quoting(line + 1, exc)) from None
                # One line with a value longer than the parser takes: read that line again without the limit, so
                # that the value is reported on its line and column (E_FIELD_TOO_LONG) like any value too long.
                line = reader.line_num
                fields = _long_line_split(self.last_line, self.delimiter)
                batch.append((line, self._unreported(fields) if self.is_report else fields))
        if batch:
            self._count(batch)
            yield batch

    def _unreported(self, fields: list[str]) -> list[str]:
        """A row of an error report as the admin first sent it (fixed since, one hopes)."""
        if len(fields) == len(self.header) + len(REPORT_COLUMNS):
            fields = fields[: len(self.header)]
        return [csv_unescape(cell) for cell in fields]

    def _count(self, batch: list[tuple[int, list[str]]]) -> None:
        if self.rows_read + len(batch) > self.max_rows:
            start = batch[self.max_rows - self.rows_read][0]
            raise FileProblem(
                Finding(
                    F_TOO_LARGE,
                    f"The file has more than {self.max_rows:,} rows, the limit for one import. Split it into "
                    f"smaller files.",
                    line=start,
                )
            )
        self.rows_read += len(batch)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CsvSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _long_line_split(text: str, delimiter: str) -> list[str]:
    limit = csv.field_size_limit(len(text) + 1)
    try:
        return next(csv.reader([text], delimiter=delimiter))
    finally:
        csv.field_size_limit(limit)


def delimiter_sniff(header_line: str) -> str:
    """The delimiter is whichever of comma, semicolon and tab the header line uses most (outside quotes)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _broken_quoting(line: int, exc: csv.Error) -> Finding:
    return Finding(
        F_NOT_CSV,
        f"The file's quoting is broken from line {line}: a value opens a double quote that never closes, so the "
        f'rest of the file cannot be split into rows ({exc}). Remove the stray " character and upload again.',
        line=line,
    )
