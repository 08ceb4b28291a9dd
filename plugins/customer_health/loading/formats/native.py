"""Translate a native export file into contract rows, streamed into the loader's COPY.

A `NativeScanner` reads one native file with the contract scanner's record reader (same
limits, same UTF-8 and quoting errors, the native line numbers) and turns each record
into the contract's columns by its declaration's rules: renames, value maps, lookups in
other files of the folder, constants, named transforms, then the format's time zone,
number format and booleans. It is checked like a contract row and written for COPY with
the unknown native columns as `_extra` and the native line number; a record that cannot
be translated or checked goes to quarantine with the native file, its native line(s)
and the reason. For speed, a block of records (about a megabyte) is read by one csv
call and translated and checked column by column; a block with any bad record goes
record by record, where each gets its exact reason.
"""

from __future__ import annotations

import csv
import gc
import io
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate, compress
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import BinaryIO

from customer_health.contract import Column, Entity
from customer_health.loading.checks import _FAST_VALUE, check_value
from customer_health.loading.formats.declaration import (
    ColumnRule,
    ExportFormat,
    FileRule,
    load_parameters,
    with_load_parameters,
)
from customer_health.loading.formats.local_time import LocalTime
from customer_health.loading.formats.transforms import TRANSFORMS
from customer_health.loading.quarantine import QuarantineSpool
from customer_health.loading.scanner import (
    BATCH_SIZE,
    COPY_END_MARKER,
    Scanner,
    UnreadableFile,
)

_SEP = "\x1f"  # joins a row's contract values for the one-regex check


def whole_records_end(buf: bytes | bytearray, start: int, stop: int) -> int:
    """The end of the longest run of whole records in buf[start:stop]: just after the
    last line end at which every quote opened since `start` is closed (a quoted field may
    span lines). Counts quotes in C: once for the run, then line by line backwards."""
    end = buf.rfind(b"\n", start, stop) + 1
    if end <= start:
        return start
    odd = buf.count(b'"', start, end) & 1
    while odd:
        line_start = buf.rfind(b"\n", start, end - 1) + 1
        if line_start <= start:
            return start
        odd ^= buf.count(b'"', line_start, end) & 1
        end = line_start
    return end


def _quote(value: str) -> str:
    """RFC 4180 quoting where COPY needs it (an empty value stays unquoted: NULL)."""
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _quote_column(values: Sequence[str]) -> list[str]:
    """`_quote` of each value: every value that is not empty quoted (COPY reads a quoted
    value as it is), the empty ones left as they are (NULL), without a call per value."""
    return ['"' + v.replace('"', '""') + '"' if v else v for v in values]


Lookups = dict[str, dict[str, dict[str, str]]]  # lookup -> key -> column -> value


class _Bad(Exception):  # noqa: N818 (a row's reason, caught per row)
    pass


class _NamedSpool:
    """The shared quarantine spool, naming this native file in each row it gets."""

    def __init__(self, spool: QuarantineSpool, file_name: str) -> None:
        self.spool = spool
        self.file_name = file_name

    @property
    def count(self) -> int:
        return self.spool.count

    def add(self, line_number: int, raw_line: str, reason: str) -> None:
        self.spool.add(line_number, raw_line, reason, self.file_name)


def _row_pattern(columns: Sequence[Column]) -> re.Pattern[str]:
    """One contract row's values joined by _SEP: the fast form of `check_value` (what it
    matches, the exact check accepts; a text value with a line end goes to the exact
    check, which also refuses COPY's end marker)."""
    parts = []
    for c in columns:
        if c.type == "text":
            parts.append(r"[^\x1f\x00\r\n]*" if c.nullable else r"[^\x1f\x00\r\n]+")
        else:
            value = _FAST_VALUE[c.type].decode()
            parts.append(f"(?:{value})?+" if c.nullable else f"(?:{value})")
    return re.compile(_SEP.join(parts), re.ASCII)


def _column_check(column: Column) -> Callable[[Sequence[str]], bool]:
    """Whether a block's values of one column all pass `check_value` (True), in C where
    possible; False sends the block row by row, where the exact check gives reasons."""
    if column.type == "text":
        if column.nullable:
            return lambda values: "\x00" not in "".join(values)
        return lambda values: all(values) and "\x00" not in "".join(values)
    value = _FAST_VALUE[column.type].decode()
    one = f"(?:{value})?+" if column.nullable else f"(?:{value})"
    rx = re.compile(f"(?:{one}\n)*+", re.ASCII)  # the whole column, a value a line
    return lambda values: rx.fullmatch("\n".join(values) + "\n") is not None


def _exact_reason(columns: Sequence[Column], values: Sequence[str]) -> str | None:
    reasons = []
    for column, value in zip(columns, values, strict=True):
        reason = check_value(column, value)
        if reason is None and ("\n" in value or "\r" in value) and \
                COPY_END_MARKER.search(value):
            reason = (f"{column.name}: a line holding only '\\.' inside a quoted field "
                      "cannot be loaded by PostgreSQL COPY")
        if reason:
            reasons.append(reason)
    return "; ".join(reasons) or None


def _split_records(text: str, physical: list[str], first: int = 0
                   ) -> tuple[list[list[str]], Sequence[int] | None]:
    """What `csv.reader` reads from a block of whole lines (the first one numbered
    `first`), and the number of each record's first line (None: csv read the block, the
    caller finds them), faster: a line
    without quotes is split at its commas (csv's own reading of it); only the records
    with quotes (a record spans lines while a quote is open) go through one csv reader.
    Where that cannot be sure to agree with csv (CR, NUL, a blank line, a quote inside an
    unquoted field), csv reads the block whole."""
    n = len(physical)
    if "\r" in text or "\x00" in text or "" in physical:
        return _csv_records(text), None
    records = [line.split(",") for line in physical]
    if '"' not in text:
        return records, range(first, first + n)
    quoted = [i for i, line in enumerate(physical) if '"' in line]
    groups: list[tuple[int, int]] = []  # the lines [i, j) of a record with quotes
    k, q = 0, len(quoted)
    while k < q:
        i = quoted[k]
        if physical[i].count('"') & 1:  # a quote stays open: up to the line that closes it
            k += 1
            while k < q and not physical[quoted[k]].count('"') & 1:
                k += 1
            if k == q:
                return _csv_records(text), None
            groups.append((i, quoted[k] + 1))
        else:
            groups.append((i, i + 1))
        k += 1
    parsed = list(csv.reader(["\n".join(physical[i:j]) for i, j in groups], strict=True))
    if len(parsed) != len(groups):
        return _csv_records(text), None
    if len(groups) == q:  # every record is one line
        for (i, _), fields in zip(groups, parsed, strict=True):
            records[i] = fields
        return records, range(first, first + n)
    out: list[list[str]] = []
    starts: list[int] = []
    done = 0
    for (i, j), fields in zip(groups, parsed, strict=True):
        out += records[done:i]
        starts += range(first + done, first + i)
        out.append(fields)
        starts.append(first + i)
        done = j
    out += records[done:]
    starts += range(first + done, first + n)
    return out, starts


def _csv_records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="\n"), strict=True))


class NativeScanner(Scanner):
    """One native file of an entity: `read_header()`, then `batches()` for COPY."""

    source_per_row = False

    def __init__(self, stream: BinaryIO, entity: Entity, spool: QuarantineSpool,
                 fmt: ExportFormat, rule: FileRule, lookups: Lookups, source: str,
                 with_source: bool, export_date: str, extra: bool | None = None) -> None:
        super().__init__(stream, entity, _NamedSpool(spool, rule.file))  # type: ignore[arg-type]
        self.fmt = fmt
        self.rule = rule
        self.lookups = lookups
        self.source = source
        self.source_per_row = with_source
        self.force_extra = extra
        # `${export_date}`, `${snapshot_at}` of constants, and transforms' params
        self.load_parameters = load_parameters(export_date)
        self.copy_columns = list(entity.column_names)
        self._translate: Callable[[list[str]], list[str]] = list
        self._extra_at: list[int] = []
        self._keys: list[str] = []
        self._check = _row_pattern(entity.columns).fullmatch

    @property
    def has_extra(self) -> bool:
        return self.force_extra if self.force_extra is not None else bool(self._extra_at)

    def read_header(self) -> None:
        names = self.read_header_names()
        fmt, rule = self.fmt, self.rule
        at = {}
        for i, n in enumerate(names):
            key = fmt.header_key(n)
            if key in at:
                raise UnreadableFile(f"the header names column {n!r} more than once")
            at[key] = i
        self.width = len(names)
        used: set[int] = set()
        getters: list[Callable[[list[str]], str] | int] = []
        self._column_fns: list[Callable[[list[tuple[str, ...]], int], Sequence[str]]] = []
        missing_required, self.missing_optional = [], []
        for column in self.entity.columns:
            spec = rule.columns.get(column.name)
            absent = [n for n in (spec.native if spec else ()) if fmt.header_key(n) not in at]
            if spec is None or absent:
                if spec is not None and not column.nullable and not spec.default:
                    missing_required.append(f"{', '.join(absent)} (for {column.name})")
                self.missing_optional.append(column.name)
                default = spec.default if spec is not None else ""
                getters.append(lambda f, d=default: d)
                self._column_fns.append(lambda cols, n, d=default: [d] * n)
                continue
            idx = [at[fmt.header_key(n)] for n in spec.native]
            used.update(idx)
            getter, column_fn = self._getter(column, spec, idx)
            getters.append(getter)
            self._column_fns.append(column_fn)
        if missing_required:
            raise UnreadableFile(f"missing required column(s): {'; '.join(missing_required)}"
                                 f" (the header has: {', '.join(names)})")
        also = {fmt.header_key(n) for n in rule.also}
        self._extra_at = [i for i in range(len(names)) if i not in used]
        self._keys = [("{" if j == 0 else ", ") + encode_basestring(names[i] or
                      f"(unnamed column {i + 1})") + ": " for j, i in enumerate(self._extra_at)]
        self.drift = [names[i] or f"(unnamed column {i + 1})" for i in self._extra_at
                      if fmt.header_key(names[i]) not in also]
        if len(getters) > 1 and all(isinstance(g, int) for g in getters):
            pick = operator.itemgetter(*getters)  # a file of renames only
            self._translate = lambda f: list(pick(f))
        else:
            calls = [operator.itemgetter(g) if isinstance(g, int) else g for g in getters]
            self._translate = lambda f: [g(f) for g in calls]
        self._column_checks = [_column_check(c) for c in self.entity.columns]

    def _getter(self, column: Column, spec: ColumnRule, idx: list[int]) -> tuple[
            Callable[[list[str]], str] | int, Callable[[list[tuple[str, ...]], int],
                                                     Sequence[str]]]:
        """How a row gives the column's value (a function, or the field's index when the
        value is taken as it is), and how a block's native columns give its values (a
        KeyError or _Bad there sends the block row by row, for the reasons)."""
        if spec.constant is not None:
            const = with_load_parameters(spec.constant, self.load_parameters)
            return (lambda f: const), (lambda cols, n: [const] * n)
        conv = self._converter(column)
        conv_column = (getattr(conv, "column", None) or
                       (lambda values: list(map(conv, values)))) if conv else None
        if spec.transform:
            transform = TRANSFORMS[spec.transform]
            read, native = transform.read, spec.native
            params = {**spec.params, **self.load_parameters}

            def transformed(*values: str) -> str:
                try:
                    value = read(values, params)
                except ValueError as exc:
                    raise _Bad(f"{', '.join(native)}: {exc}") from None
                return conv(value) if conv else value
            if transform.columns is not None and conv is None:
                return ((lambda f: transformed(*[f[i] for i in idx])),
                        (lambda cols, n: transform.columns([cols[i] for i in idx], params)))
            if transform.column is not None and len(idx) == 1 and conv is None:
                (i,) = idx
                return ((lambda f: transformed(f[i])),
                        (lambda cols, n: transform.column(cols[i], params)))
            return ((lambda f: transformed(*[f[i] for i in idx])),
                    (lambda cols, n: list(map(transformed, *[cols[i] for i in idx]))))
        (i,) = idx
        native = spec.native[0]
        plain = not (spec.via or spec.values is not None or spec.default or
                     spec.null_if_prefix)
        if plain:
            if conv is None:
                return i, (lambda cols, n: cols[i])
            return (lambda f: conv(f[i])), (lambda cols, n: conv_column(cols[i]))
        steps = [(self.lookups[s.lookup], self.fmt.header_key(s.column),
                  self.fmt.lookups[s.lookup]) for s in spec.via]
        values, default, prefixes = spec.values, spec.default, spec.null_if_prefix
        where = f"{self.fmt.path.name} [values.{spec.values_name}]"

        def mapped(v: str) -> str:
            if prefixes and v.startswith(prefixes):
                v = ""
            for table, take, lookup in steps:
                if not v:
                    break
                row = table.get(v)
                if row is None:
                    raise _Bad(f"{native}: no row of {lookup.file} has {lookup.key} {v!r}")
                v = row.get(take, "")
            if not v:
                v = default
            elif values is not None:
                try:
                    v = values[v]
                except KeyError:
                    known = ", ".join(list(values)[:8])
                    raise _Bad(f"{native}: {v!r} has no mapping in {where} (known: {known})"
                               ) from None
            return conv(v) if conv and v else v
        if (values is not None or steps) and not prefixes:
            # a value map or lookups: every native value's result, found once, so a block
            # takes one dict lookup per value, in C (a value missing from it: the row path)
            first = steps[0][0] if steps else values
            table = {}
            for key in ["", *first]:
                try:
                    table[key] = mapped(key)
                except _Bad:
                    pass
            return (lambda f: mapped(f[i])), (lambda cols, n: list(map(table.__getitem__,
                                                                          cols[i])))
        if prefixes and not steps and values is None and conv is None:
            marks = tuple(_SEP + p for p in prefixes)

            def without_prefixed(cols: list[tuple[str, ...]], n: int) -> Sequence[str]:
                """The column as it is when no value has the prefix (one search, in C)."""
                joined = _SEP + _SEP.join(cols[i])
                if any(mark in joined for mark in marks):
                    return list(map(mapped, cols[i]))
                return [v or default for v in cols[i]] if default else cols[i]
            return (lambda f: mapped(f[i])), without_prefixed
        return (lambda f: mapped(f[i])), (lambda cols, n: list(map(mapped, cols[i])))

    def _converter(self, column: Column) -> Callable[[str], str] | None:
        fmt = self.fmt
        if column.type == "timestamp" and fmt.timezone != "UTC":
            return LocalTime.of(fmt.timezone)
        if column.type in ("int", "numeric") and (fmt.thousands_separator or
                                                  fmt.decimal_separator != "."):
            thousands, decimal = fmt.thousands_separator, fmt.decimal_separator

            def number(v: str) -> str:
                if thousands:
                    v = v.replace(thousands, "")
                return v.replace(decimal, ".") if decimal != "." else v

            def numbers(values: Sequence[str]) -> Sequence[str]:
                text = "".join(values)
                if (not thousands or thousands not in text) and (
                        decimal == "." or decimal not in text):
                    return values  # nothing to change: one search, in C
                return list(map(number, values))
            number.column = numbers  # type: ignore[attr-defined]
            return number
        if column.type == "bool" and fmt.booleans:
            booleans = fmt.booleans
            return lambda v: booleans.get(v, v)
        return None

    def batches(self) -> Iterator[bytes]:
        """COPY-ready CSV: every contract column, `_extra`, `_source_file`, line number.

        Blocks of lines that each hold a whole record (an even number of quotes, valid
        UTF-8) are parsed by one csv reader at a time; any other line, and a block csv
        refuses, goes through the record reader one record at a time (multi-line
        records, quoting errors, the file's UTF-8 error). Every line written ends with
        CRLF, the line end PostgreSQL's COPY then expects throughout.
        """
        self._want_extra = self.has_extra
        self._tail = "," + self.source if self.source_per_row else ""
        # A block makes a list per record, none of them cyclic: Python's cyclic garbage
        # collector would scan them again and again (about an eighth of the time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            yield from self._batches()
        finally:
            if collecting:
                gc.enable()

    def _batches(self) -> Iterator[bytes]:
        lines = self.lines
        out: list[str] = []
        size = 0
        while True:
            start = lines.pos
            end = lines.buf.rfind(b"\n", start) + 1
            if end <= start:
                if not lines.fill():
                    break
                continue
            valid = self._check_utf8(max(start, lines.checked), end)
            good = whole_records_end(lines.buf, start, valid)
            if good > start:
                first = lines.line_no
                text = lines.buf[start:good].decode("utf-8")
                physical = text.split("\n")
                physical.pop()
                # lines with their ends: a quoted field keeps its line breaks as they are
                try:
                    records, at = _split_records(text, physical, first)
                except csv.Error:
                    records = None
                if records is not None:
                    lines.pos = good
                    lines.line_no += len(physical)
                    size += self._records(records, at, text, physical, first, out)
                else:  # csv says why, record by record
                    while lines.pos < good:
                        record = self.read_record()
                        if record is not None:
                            size += self._row(record[0], record[1], None, out)
            if good < end:
                record = self.read_record()
                if record is not None:
                    size += self._row(record[0], record[1], None, out)
            elif not lines.fill():
                break
            if size >= BATCH_SIZE:
                yield "".join(out).encode()
                out, size = [], 0
        if out:
            yield "".join(out).encode()

    def _records(self, records: list[list[str]], at: Sequence[int] | None, text: str,
                 physical: list[str], first: int, out: list[str]) -> int:
        """The records csv read from a block of lines (`at`: the number of each one's
        first line, or None): as one block if they all fit, else one by one with their raw
        lines.

        Without `at`, a record starts on each line that begins outside quotes: after an
        even number of quotes (counted per line, in C). Where that count does not give one
        line per record (a quote inside an unquoted field), csv says where each ends."""
        if at is not None:
            starts = at
        else:
            outside = map(operator.not_, accumulate(
                [line.count('"') & 1 for line in physical], operator.xor, initial=0))
            starts = list(compress(range(first, first + len(physical)), outside))
            if len(starts) != len(records):
                reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
                starts = [first] + [first + reader.line_num for _ in reader][:-1]
        block = self._block(records, starts)
        if block is not None:
            out.append(block)
            return len(block)
        size = 0
        ends = [*starts[1:], first + len(physical)]
        for fields, start, end in zip(records, starts, ends, strict=True):
            if fields:
                size += self._row(start, fields, "\n".join(physical[start - first:end - first]),
                                  out)
        return size

    def _block(self, records: list[list[str]], starts: Sequence[int]) -> str | None:
        """A block of records translated column by column (C loops over each column
        instead of Python per row), or None when any record needs the row path: a blank
        line, a field count unlike the header's, a value that does not map or check, a
        line holding only COPY's end marker. `starts`: each record's first line."""
        n = len(records)
        if n < 2 or set(map(len, records)) != {self.width}:
            return None
        cols = list(zip(*records, strict=True))
        try:
            values = [fn(cols, n) for fn in self._column_fns]
        except (_Bad, KeyError, ValueError):
            return None
        if not all(check(col) for check, col in zip(self._column_checks, values,
                                                      strict=True)):
            return None
        texts = ["".join(col) for col in values]
        if any("\\." in text and "\n" in text for text in texts):
            return None  # perhaps COPY's end marker inside a field: the exact check decides
        values = [_quote_column(col) if any(c in text for c in '",\r\n') else col
                  for col, text in zip(values, texts, strict=True)]
        if self._want_extra:
            extra_at = self._extra_at
            if not extra_at:
                values.append([""] * n)
            else:
                if any("\x00" in "".join(cols[i]) for i in extra_at):
                    return None
                keys = self._keys
                values.append(['"' + ("".join([k + (encode_basestring(v) if v else "null")
                                               for k, v in zip(keys, row, strict=True)])
                                      + "}").replace('"', '""') + '"'
                               for row in zip(*[cols[i] for i in extra_at], strict=True)])
        if self.source_per_row:
            values.append([self.source] * n)
        values.append(list(map(str, starts)))
        self.rows_read += n
        self.rows_loaded += n
        return "\r\n".join(map(",".join, zip(*values, strict=True))) + "\r\n"

    def _row(self, start: int, fields: list[str], text: str | None, out: list[str]) -> int:
        """Translate and check one record; append its COPY line to `out` and return its
        length, or quarantine it (`text`: its line, else the record reader's) and return 0."""
        if len(fields) != self.width:
            return self._reject(start, text, f"expected {self.width} fields as in the header,"
                                             f" found {len(fields)}")
        try:
            values = self._translate(fields)
        except _Bad as exc:
            return self._reject(start, text, str(exc))
        joined = _SEP.join(values)
        if "\x00" in joined or not self._check(joined):
            reason = _exact_reason(self.entity.columns, values)
            if reason:
                return self._reject(start, text, self._native_reason(reason))
        if '"' in joined or "," in joined or "\n" in joined or "\r" in joined:
            line = ",".join([_quote(v) for v in values])
        else:
            line = joined.replace(_SEP, ",")
        if self._want_extra:
            extra_at = self._extra_at
            if any("\x00" in fields[i] for i in extra_at):
                return self._reject(start, text, "a column kept in _extra contains a NUL"
                                                 " character")
            if extra_at:
                extra = "".join([k + (encode_basestring(fields[i]) if fields[i] else "null")
                                 for k, i in zip(self._keys, extra_at, strict=True)]) + "}"
                line += ',"' + extra.replace('"', '""') + '"'
            else:
                line += ","
        line += f"{self._tail},{start}\r\n"
        out.append(line)
        self.rows_read += 1
        self.rows_loaded += 1
        return len(line)

    def _reject(self, start: int, text: str | None, reason: str) -> int:
        if text is None:
            self._quarantine(start, reason)
        else:
            self.rows_read += 1
            self.quarantine.add(start, text[:-1] if text.endswith("\r") else text, reason)
        return 0

    def _native_reason(self, reason: str) -> str:
        """A check's reason names the contract column: add the native column it came from."""
        rule = self.rule
        parts = []
        for part in reason.split("; "):
            column = part.split(":", 1)[0]
            spec = rule.columns.get(column)
            parts.append(f"{part} (from {', '.join(spec.native)})"
                         if spec is not None and spec.native else part)
        return "; ".join(parts)
