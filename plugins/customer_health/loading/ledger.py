"""audit.load_ledger: one row per file per load attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from psycopg import Connection

from customer_health.loading.results import FileResult


@dataclass(frozen=True)
class PreviousLoad:
    load_id: int
    sha256: str | None
    finished_at: datetime


def previous_load(conn: Connection, system: str, export_date: date,
                  entity: str) -> PreviousLoad | None:
    """The load whose rows raw holds now for (system, date, entity), if any."""
    row = conn.execute(
        "select load_id, file_sha256, finished_at from audit.load_ledger"
        " where system = %s and export_date = %s and entity = %s and status = 'loaded'"
        " order by load_id desc limit 1",
        (system, export_date, entity),
    ).fetchone()
    return PreviousLoad(*row) if row else None


def next_load_id(conn: Connection) -> int:
    """Taken from the sequence up front so quarantine rows can name their load.

    A sequence value survives a rollback, so a rejected file's ledger row written
    afterwards keeps the id its quarantine rows carry.
    """
    return conn.execute(
        "select nextval(pg_get_serial_sequence('audit.load_ledger', 'load_id'))"
    ).fetchone()[0]


def record(conn: Connection, load_id: int, result: FileResult, started_at: datetime,
           finished_at: datetime) -> None:
    conn.execute(
        "insert into audit.load_ledger (load_id, system, export_date, entity, file_name,"
        " file_sha256, rows_read, rows_loaded, rows_quarantined, status, message, started_at,"
        " finished_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (load_id, result.system, result.export_date, result.entity, result.file_name,
         result.sha256, result.rows_read, result.rows_loaded, result.rows_quarantined,
         result.status, result.message, started_at, finished_at),
    )
