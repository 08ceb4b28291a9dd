"""Rows that do not fit their types wait in a spool until their load's transaction ends.

Only one COPY can run on a connection at a time, and the file's COPY is running
while bad rows are found; the spool (memory, then a temporary file) keeps memory
flat however many rows a file quarantines.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import date

from psycopg import Connection

SPOOL_MEMORY = 1 << 20
COPY_SQL = (
    "copy audit.quarantine (system, export_date, entity, file_name, line_number, raw_line,"
    " reason, load_id) from stdin with (format csv)"
)


class QuarantineSpool:
    def __init__(self, system: str, export_date: date, entity: str, file_name: str,
                 load_id: int) -> None:
        self._prefix = [system, export_date.isoformat(), entity, file_name]
        self._load_id = load_id
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, mode="w+b")
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        self.count = 0
        self.first: list[tuple[int, str]] = []  # a few (line, reason) for messages

    def add(self, line_number: int, raw_line: str, reason: str,
            file_name: str | None = None) -> None:
        """One bad row; `file_name` when it is not the load's file (a native export's
        entity read from several files names the one the row is in)."""
        # PostgreSQL text cannot hold NUL: show it escaped (the reason says so).
        raw_line = raw_line.replace("\x00", "\\x00")
        prefix = self._prefix if file_name is None else [*self._prefix[:3], file_name]
        self._writer.writerow([*prefix, line_number, raw_line, reason, self._load_id])
        self._file.write(self._text.getvalue().encode("utf-8"))
        self._text.seek(0)
        self._text.truncate()
        self.count += 1
        if len(self.first) < 3:
            self.first.append((line_number, reason))

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(size):
            yield chunk

    def write(self, conn: Connection) -> None:
        """COPY the spooled rows into audit.quarantine (inside the caller's transaction)."""
        if not self.count:
            return
        with conn.cursor().copy(COPY_SQL) as copy:
            for chunk in self.chunks():
                copy.write(chunk)

    def close(self) -> None:
        self._file.close()
