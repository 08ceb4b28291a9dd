"""Stream one export file into COPY-ready CSV, checking every row on the way.

Lines are read in blocks of about a megabyte. The longest run of plain valid lines
at the front of a block is matched by one regular expression (`checks`) and goes
to COPY as it is, with its line number appended (the other provenance columns are
the load's column defaults: `loader`). The first line that does
not match is parsed by the csv module (it may be a multi-line quoted record, a
29 February, or a bad row), checked field by field, and either re-written for
COPY or sent to quarantine with its reason. Memory stays bounded by the block
size and the record limit whatever the file's size.

A record whose quoted field runs over several lines may be up to `MAX_RECORD` bytes
long; a longer one is quarantined whole, and the scanner follows the file's quoting
to the record's end before it reads on, so no line inside a quoted field is ever
read as a record of its own. Columns the contract does not know are kept: their
values of each row go to COPY as one JSON object (`_extra`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import BinaryIO

from customer_health.contract import Column, Entity
from customer_health.loading.checks import check_value, fast_block_pattern
from customer_health.loading.quarantine import QuarantineSpool

BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 1 << 20
MAX_LINE = 8 << 20  # a physical line longer than this is not a CSV export
MAX_RECORD = MAX_LINE  # a record of several lines longer than this is quarantined whole
# csv's own limit on a field's length (131,072 characters by default) is raised above
# anything the loader hands it, so csv never stops inside a record: `_Feeder` stops first.
CSV_FIELD_LIMIT = 2 * MAX_LINE
BATCH_SIZE = 1 << 20  # bytes handed to COPY at a time
COPY_END_MARKER = re.compile(r"(?:^|\n)\\\.\r?(?:\n|$)")


class UnreadableFile(Exception):
    """The file as a whole cannot be read as the contract's CSV (the loader rejects it and
    quarantines it whole); the message says why, for a person."""


class _Lines:
    """A byte buffer over the stream: hands out whole lines, hashes everything read."""

    def __init__(self, stream: BinaryIO, chunk_size: int) -> None:
        self.stream = stream
        self.chunk_size = chunk_size
        self.buf = b""
        self.pos = 0
        self.checked = 0  # buf[:checked] is known to be UTF-8
        self.line_no = 1  # physical line number of the line starting at pos
        self.eof = False
        self.sha = hashlib.sha256()
        self._first = True

    def fill(self) -> bool:
        """Read one more chunk into the buffer; False when nothing more will come."""
        if self.eof:
            return False
        chunk = self.stream.read(self.chunk_size)
        self.sha.update(chunk)
        if self._first:
            self._first = False
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM):]
        rest = self.buf[self.pos:]
        self.checked = max(0, self.checked - self.pos)
        self.pos = 0
        if not chunk:
            self.eof = True
            self.buf = rest + b"\n" if rest and not rest.endswith(b"\n") else rest
            return bool(rest)
        self.buf = rest + chunk
        if len(self.buf) > MAX_LINE and self.buf.find(b"\n", 0, MAX_LINE + 1) < 0:
            raise UnreadableFile(
                f"line {self.line_no} is longer than {MAX_LINE >> 20} MiB without a line end: "
                "this does not look like a CSV export"
            )
        return True

    def next_line(self) -> bytes | None:
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                line = self.buf[self.pos:end + 1]
                self.pos = end + 1
                self.line_no += 1
                return line
            if not self.fill():
                return None

    def drain(self) -> str:
        """Read the rest of the stream (for its checksum) and return the sha256."""
        while chunk := self.stream.read(self.chunk_size):
            self.sha.update(chunk)
        return self.sha.hexdigest()


class _RecordTooLong(Exception):  # noqa: N818 (a signal to the scanner, not an error)
    """The current record would grow past MAX_RECORD with `line`, its next line."""

    def __init__(self, line: bytes) -> None:
        super().__init__()
        self.line = line


class _Feeder:
    """The csv reader's line source: remembers the raw lines of the current record.

    csv asks for a further line of the same record only inside a quoted field; when
    that line would make the record longer than MAX_RECORD, the feeder hands csv
    nothing and raises `_RecordTooLong`, so the scanner, not csv, finds the record's end.
    """

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.taken: list[bytes] = []
        self.size = 0

    def start(self) -> None:
        self.taken = []
        self.size = 0

    def __iter__(self) -> _Feeder:
        return self

    def __next__(self) -> str:
        line = self.lines.next_line()
        if line is None:
            raise StopIteration
        if self.taken and self.size + len(line) > MAX_RECORD:
            raise _RecordTooLong(line)
        self.taken.append(line)
        self.size += len(line)
        return _decode(line, self.lines.line_no - 1)


def _decode(line: bytes, line_no: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(line_no, line[exc.start]) from None


def _record_ends(line: bytes, quoted: bool) -> tuple[bool, bool]:
    """Follow CSV quoting over one physical line: (the record ends with this line,
    the next line starts inside a quoted field). `quoted`: this line does.

    The same rules as the csv module in strict mode: a field that starts with a quote
    is quoted, `""` inside it is a quote, a quote elsewhere is a character; a closing
    quote followed by anything but a comma or the line end is an error, which ends the
    record with its line (csv reads on with the next line).
    """
    i = 0
    while True:
        if quoted:
            q = line.find(b'"', i)
            if q < 0:
                return False, True
            after = line[q + 1:q + 2]
            if after == b'"':
                i = q + 2
                continue
            if after != b",":
                return True, False
            i, quoted = q + 2, False
        if line[i:i + 1] == b'"':
            i, quoted = i + 1, True
            continue
        comma = line.find(b",", i)
        if comma < 0:
            return True, False
        i = comma + 1


def _not_utf8(line_no: int, byte: int) -> UnreadableFile:
    return UnreadableFile(
        f"not UTF-8: byte 0x{byte:02x} on line {line_no} is not valid UTF-8 "
        "(re-export the file as UTF-8)"
    )


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "expected after" in text:
        return ("not valid CSV: a closing quote must be followed by a comma or the line end"
                f" ({text})")
    return f"not valid CSV: {text}"


class Scanner:
    """Reads one export file: `read_header()`, then `batches()` for COPY; counts rows.

    `rows_read` counts records as they end (loaded or quarantined): a blank line is no
    record, a record over several lines is one. When the scanner stops with
    UnreadableFile, `rows_read` is the number of records that ended before the one it
    stopped in (0 when it stopped at the header); that record, whose quote is never
    closed or which holds a byte that is not UTF-8 or a line over MAX_LINE, is not
    counted. This is the `rows_read` of a file rejected while it was read.
    """

    def __init__(self, stream: BinaryIO, entity: Entity, quarantine: QuarantineSpool,
                 chunk_size: int = CHUNK_SIZE) -> None:
        if csv.field_size_limit() < CSV_FIELD_LIMIT:
            csv.field_size_limit(CSV_FIELD_LIMIT)
        self.entity = entity
        self.quarantine = quarantine
        self.lines = _Lines(stream, chunk_size)
        self._feeder = _Feeder(self.lines)
        self._reader = csv.reader(self._feeder, strict=True)
        self._out = io.StringIO()
        # '\r\n' makes the writer quote any field holding \r or \n.
        self._writer = csv.writer(self._out, lineterminator="\r\n")
        self.rows_read = 0
        self.rows_loaded = 0
        self.file_columns: list[Column | None] = []
        self.copy_columns: list[str] = []
        self.drift: list[str] = []  # the unknown columns, named as in `_extra`
        self.missing_optional: list[str] = []
        self._fast: re.Pattern[bytes] | None = None
        self._known: Callable[[Sequence[str]], tuple[str, ...]] = tuple
        self._unknown: list[int] = []
        self._extra_keys: list[str] = []

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine.count

    def sha256(self) -> str:
        return self.lines.drain()

    # -- header -------------------------------------------------------------------

    @property
    def has_extra(self) -> bool:
        """Whether COPY gets an `_extra` column."""
        return bool(self.drift)

    #: Whether COPY gets `_source_file` per row (else it is the load's constant).
    source_per_row = False

    def read_header_names(self) -> list[str]:
        """The header row's names (the file's first record)."""
        start = self.lines.line_no
        self._feeder.start()
        try:
            names = next(self._reader)
        except StopIteration:
            raise UnreadableFile("the file is empty: expected a header row") from None
        except _RecordTooLong:
            raise UnreadableFile(f"the header row (line {start}) is longer than "
                               f"{MAX_RECORD >> 20} MiB: is the file an export?") from None
        except csv.Error as exc:
            raise UnreadableFile(f"the header row (line {start}) is not valid CSV: {exc}") from None
        if not names:
            raise UnreadableFile("the first line is empty: expected the header row")
        return names

    def read_header(self) -> None:
        names = self.read_header_names()
        known = {c.name: c for c in self.entity.columns}
        if not known.keys() & set(names):
            raise UnreadableFile(
                f"the first line holds none of the contract's column names ({', '.join(known)}):"
                " is the header row missing?"
            )
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        if dupes:
            raise UnreadableFile(f"the header names column(s) more than once: {', '.join(dupes)}")
        missing = [c for c in self.entity.columns if c.name not in seen]
        required = [c.name for c in missing if not c.nullable]
        if required:
            raise UnreadableFile(
                f"missing required column(s): {', '.join(required)} "
                f"(the header has: {', '.join(names)})"
            )
        self.missing_optional = [c.name for c in missing]
        self.file_columns = [known.get(n) for n in names]
        self.drift = [n or f"(unnamed column {i + 1})" for i, n in enumerate(names)
                      if n not in known]
        self.copy_columns = [n for n in names if n in known]
        self._fast = fast_block_pattern(self.file_columns)
        known = [i for i, c in enumerate(self.file_columns) if c]
        self._known = lambda fields: tuple(fields[i] for i in known)
        if len(known) > 1:
            self._known = operator.itemgetter(*known)
        self._unknown = [i for i, c in enumerate(self.file_columns) if c is None]
        self._extra_keys = [("{" if j == 0 else ", ") + encode_basestring(name) + ": "
                            for j, name in enumerate(self.drift)]

    # -- rows ---------------------------------------------------------------------

    def batches(self) -> Iterator[bytes]:
        """COPY-ready CSV: contract columns in `copy_columns` order, then the line number."""
        lines = self.lines
        out: list[bytes] = []
        size = 0
        while True:
            start = lines.pos
            end = lines.buf.rfind(b"\n", start) + 1
            if end <= start:
                if not lines.fill():
                    break
                continue
            valid = self._check_utf8(max(start, lines.checked), end)
            good = self._fast.match(lines.buf, start, valid).end() if self._fast else start
            if good > start:
                chunk = self._emit_fast(start, good)
                out.append(chunk)
                size += len(chunk)
            if good < end:
                row = self._slow_record()
                if row is not None:
                    out.append(row)
                    size += len(row)
            elif not lines.fill():
                break
            if size >= BATCH_SIZE:
                yield b"".join(out)
                out, size = [], 0
        if out:
            yield b"".join(out)

    def _check_utf8(self, start: int, end: int) -> int:
        """Where the buffer's lines stop being valid UTF-8: `end`, or the start of the
        first line holding a bad byte (the csv path reads that line and rejects the
        file there, after the records before it were counted)."""
        lines = self.lines
        if start >= end:
            return end
        block = lines.buf[start:end]
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                valid = lines.buf.rfind(b"\n", lines.pos, start + exc.start) + 1
                lines.checked = max(lines.checked, valid)
                return max(valid, lines.pos)
        lines.checked = end
        return end

    def _emit_fast(self, start: int, end: int) -> bytes:
        lines = self.lines
        seg = lines.buf[start:end]
        if b"\r" in seg:  # only as part of CRLF: the pattern allows no other \r
            seg = seg.replace(b"\r\n", b"\n")
        rows = seg.split(b"\n")
        rows.pop()
        first = lines.line_no
        n = len(rows)
        lines.pos = end
        lines.line_no += n
        self.rows_read += n
        self.rows_loaded += n
        if self.drift:
            return self._with_extra(rows, first)
        return b"".join([b"%b,%d\n" % (r, i) for i, r in enumerate(rows, first)])

    def _with_extra(self, rows: list[bytes], first: int) -> bytes:
        """Plain valid lines of a file with unknown columns, re-written for COPY: the
        contract's fields, `_extra`, the line number. Each line is one record (the fast
        pattern matches no line end inside a field) whose fields passed their checks."""
        text = b"\n".join(rows).decode("utf-8")
        known, extra = self._known, self._extra
        self._writer.writerows(
            (*known(fields), extra(fields), line_no)
            for line_no, fields in enumerate(csv.reader(text.split("\n")), first))
        out = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        return out.replace("\r\n", "\n").encode()

    def read_record(self) -> tuple[int, list[str]] | None:
        """The next record, parsed by csv: (its first line, its fields). None when it holds
        no row: a blank line, the end of the file, or a record csv cannot read or that is
        too long (quarantined here with its reason)."""
        lines = self.lines
        start = lines.line_no
        self._feeder.start()
        try:
            fields = next(self._reader)
        except StopIteration:
            return None
        except _RecordTooLong as exc:
            self._skip_long_record(start, exc.line)
            return None
        except csv.Error as exc:
            if lines.eof and lines.pos >= len(lines.buf) and "unexpected end" in str(exc):
                raise UnreadableFile(
                    f"a quoted field opened on line {start} is never closed before the end of "
                    "the file (a broken quote, or a truncated file)"
                ) from None
            self._quarantine(start, _csv_reason(exc))
            return None
        if not fields:
            return None  # a blank line holds no row
        return start, fields

    def _slow_record(self) -> bytes | None:
        record = self.read_record()
        if record is None:
            return None
        start, fields = record
        reason = self._check(fields)
        if reason:
            self._quarantine(start, reason)
            return None
        # An empty value is written unquoted (COPY reads it as NULL): the line number as
        # the last field makes sure the row is never a lone empty field, which csv quotes.
        if self.drift:
            self._writer.writerow((*self._known(fields), self._extra(fields), start))
        else:
            self._writer.writerow([*(v for c, v in zip(self.file_columns, fields, strict=True)
                                     if c), start])
        text = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        self.rows_read += 1
        self.rows_loaded += 1
        return text[:-2].encode() + b"\n"

    def _extra(self, fields: Sequence[str]) -> str:
        """The row's values of the unknown columns as a JSON object, `{"name": "value",
        ...}` with an empty value as null (what json.dumps writes, a few times faster).
        JSON writes a line end as `\\n`, so the object is one line of COPY data."""
        return "".join([key + (encode_basestring(fields[i]) if fields[i] else "null")
                        for key, i in zip(self._extra_keys, self._unknown, strict=True)]) + "}"

    def _check(self, fields: list[str]) -> str | None:
        width = len(self.file_columns)
        if len(fields) != width:
            return f"expected {width} fields as in the header, found {len(fields)}"
        reasons = []
        drift = iter(self.drift)
        for column, value in zip(self.file_columns, fields, strict=True):
            if column is None:
                name = next(drift)
                if "\x00" in value:  # PostgreSQL's jsonb cannot hold it either
                    reasons.append(f"{name}: contains a NUL character")
                continue
            reason = check_value(column, value)
            if reason is None and ("\n" in value or "\r" in value) and \
                    COPY_END_MARKER.search(value):
                reason = (f"{column.name}: a line holding only '\\.' inside a quoted field "
                          "cannot be loaded by PostgreSQL COPY")
            if reason:
                reasons.append(reason)
        return "; ".join(reasons) or None

    def _skip_long_record(self, start: int, line: bytes) -> None:
        """Quarantine the record that starts on line `start` and would grow past
        MAX_RECORD with `line`, as one record: follow its quoting from its first line to
        its end, so the next record is read from where this one really ends. Its
        raw_line keeps the whole lines that fit in MAX_RECORD; the reason says so."""
        lines = self.lines
        kept = self._feeder.taken
        size = kept_size = self._feeder.size
        quoted = False
        for taken in kept:
            _, quoted = _record_ends(taken, quoted)
        keeping = True
        while True:  # csv asked for `line`, so the record has not ended before it
            _decode(line, lines.line_no - 1)
            size += len(line)
            keeping = keeping and kept_size + len(line) <= MAX_RECORD
            if keeping:
                kept.append(line)
                kept_size += len(line)
            ended, quoted = _record_ends(line, quoted)
            if ended:
                break
            line = lines.next_line()
            if line is None:
                raise UnreadableFile(
                    f"a quoted field opened on line {start} is never closed before the end of "
                    "the file (a broken quote, or a truncated file)")
        end = lines.line_no - 1
        reason = (f"the record on lines {start}-{end} is {size:,} bytes long, more than the "
                  f"loader's limit of {MAX_RECORD >> 20} MiB for one record (a quoted field "
                  "that long, or a quote opened and closed far away): quarantined whole")
        if kept_size < size:
            reason += f"; raw_line holds its first {kept_size:,} bytes, the file has the rest"
        self._quarantine(start, reason)

    def raw_record(self) -> str:
        """The lines of the record read last, as in the file (without its line end)."""
        raw = b"".join(self._feeder.taken).decode("utf-8")
        if raw.endswith("\n"):
            raw = raw[:-2] if raw.endswith("\r\n") else raw[:-1]
        return raw

    def _quarantine(self, line_no: int, reason: str) -> None:
        self.rows_read += 1
        self.quarantine.add(line_no, self.raw_record(), reason)

