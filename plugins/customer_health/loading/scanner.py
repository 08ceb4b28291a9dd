"""Stream one export file into COPY-ready CSV, checking every row on the way.

Lines are read in blocks of about a megabyte. The longest run of plain valid lines
at the front of a block is matched by one regular expression (`checks`) and goes
to COPY as it is, with its line number appended (the other provenance columns are
the load's column defaults: `loader`). The first line that does
not match is parsed by the csv module (it may be a multi-line quoted record, a
29 February, or a bad row), checked field by field, and either re-written for
COPY or sent to quarantine with its reason. Memory stays bounded by the block
size whatever the file's size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from typing import BinaryIO

from customer_health.contract import Column, Entity
from customer_health.loading.checks import check_value, fast_block_pattern
from customer_health.loading.quarantine import QuarantineSpool

BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 1 << 20
MAX_LINE = 8 << 20  # a physical line longer than this is not a CSV export
BATCH_SIZE = 1 << 20  # bytes handed to COPY at a time
_COPY_END_MARKER = re.compile(r"(?:^|\n)\\\.\r?(?:\n|$)")


class FileRejected(Exception):
    """The file as a whole cannot be loaded; the message says why, for a person."""


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
        if len(self.buf) > MAX_LINE and self.buf.find(b"\n") < 0:
            raise FileRejected(
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


class _Feeder:
    """The csv reader's line source: remembers the raw lines of the current record."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.taken: list[bytes] = []

    def __iter__(self) -> _Feeder:
        return self

    def __next__(self) -> str:
        line = self.lines.next_line()
        if line is None:
            raise StopIteration
        self.taken.append(line)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.lines.line_no - 1, line[exc.start]) from None


def _not_utf8(line_no: int, byte: int) -> FileRejected:
    return FileRejected(
        f"not UTF-8: byte 0x{byte:02x} on line {line_no} is not valid UTF-8 "
        "(re-export the file as UTF-8)"
    )


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return (f"not valid CSV: a field is longer than {csv.field_size_limit()} characters "
                "(probably a quote that is never closed)")
    if "expected after" in text:
        return ("not valid CSV: a closing quote must be followed by a comma or the line end"
                f" ({text})")
    return f"not valid CSV: {text}"


class Scanner:
    """Reads one export file: `read_header()`, then `batches()` for COPY; counts rows."""

    def __init__(self, stream: BinaryIO, entity: Entity, quarantine: QuarantineSpool,
                 chunk_size: int = CHUNK_SIZE) -> None:
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
        self.drift: list[str] = []
        self.missing_optional: list[str] = []
        self._fast: re.Pattern[bytes] | None = None

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine.count

    def sha256(self) -> str:
        return self.lines.drain()

    # -- header -------------------------------------------------------------------

    def read_header(self) -> None:
        start = self.lines.line_no
        self._feeder.taken = []
        try:
            names = next(self._reader)
        except StopIteration:
            raise FileRejected("the file is empty: expected a header row") from None
        except csv.Error as exc:
            raise FileRejected(f"the header row (line {start}) is not valid CSV: {exc}") from None
        if not names:
            raise FileRejected("the first line is empty: expected the header row")
        known = {c.name: c for c in self.entity.columns}
        if not known.keys() & set(names):
            raise FileRejected(
                f"the first line holds none of the contract's column names ({', '.join(known)}):"
                " is the header row missing?"
            )
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        if dupes:
            raise FileRejected(f"the header names column(s) more than once: {', '.join(dupes)}")
        missing = [c for c in self.entity.columns if c.name not in seen]
        required = [c.name for c in missing if not c.nullable]
        if required:
            raise FileRejected(
                f"missing required column(s): {', '.join(required)} "
                f"(the header has: {', '.join(names)})"
            )
        self.missing_optional = [c.name for c in missing]
        self.file_columns = [known.get(n) for n in names]
        self.drift = [n or f"(unnamed column {i + 1})" for i, n in enumerate(names)
                      if n not in known]
        self.copy_columns = [n for n in names if n in known]
        if not self.drift:
            self._fast = fast_block_pattern(self.file_columns)

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
            self._check_utf8(max(start, lines.checked), end)
            good = self._fast.match(lines.buf, start, end).end() if self._fast else start
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

    def _check_utf8(self, start: int, end: int) -> None:
        lines = self.lines
        if start >= end:
            return
        block = lines.buf[start:end]
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                line_no = lines.line_no + lines.buf.count(b"\n", lines.pos, start + exc.start)
                raise _not_utf8(line_no, block[exc.start]) from None
        lines.checked = end

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
        return b"".join([b"%b,%d\n" % (r, i) for i, r in enumerate(rows, first)])

    def _slow_record(self) -> bytes | None:
        lines = self.lines
        start = lines.line_no
        self._feeder.taken = []
        try:
            fields = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            if lines.eof and lines.pos >= len(lines.buf) and "unexpected end" in str(exc):
                raise FileRejected(
                    f"a quoted field opened on line {start} is never closed before the end of "
                    "the file (a broken quote, or a truncated file)"
                ) from None
            self._quarantine(start, _csv_reason(exc))
            return None
        if not fields:
            return None  # a blank line holds no row
        reason = self._check(fields)
        if reason:
            self._quarantine(start, reason)
            return None
        # An empty value is written unquoted (COPY reads it as NULL): the line number as
        # the last field makes sure the row is never a lone empty field, which csv quotes.
        self._writer.writerow([*(v for c, v in zip(self.file_columns, fields, strict=True)
                                 if c), start])
        text = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        self.rows_read += 1
        self.rows_loaded += 1
        return text[:-2].encode() + b"\n"

    def _check(self, fields: list[str]) -> str | None:
        width = len(self.file_columns)
        if len(fields) != width:
            return f"expected {width} fields as in the header, found {len(fields)}"
        reasons = []
        for column, value in zip(self.file_columns, fields, strict=True):
            if column is None:
                continue
            reason = check_value(column, value)
            if reason is None and ("\n" in value or "\r" in value) and \
                    _COPY_END_MARKER.search(value):
                reason = (f"{column.name}: a line holding only '\\.' inside a quoted field "
                          "cannot be loaded by PostgreSQL COPY")
            if reason:
                reasons.append(reason)
        return "; ".join(reasons) or None

    def _quarantine(self, line_no: int, reason: str) -> None:
        raw = b"".join(self._feeder.taken).decode("utf-8")
        if raw.endswith("\n"):
            raw = raw[:-2] if raw.endswith("\r\n") else raw[:-1]
        self.rows_read += 1
        self.quarantine.add(line_no, raw, reason)

