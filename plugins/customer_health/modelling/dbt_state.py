"""dbt's run results of each try of `dbt_build`, kept in the warehouse (audit.dbt_runs).

A retry of `dbt_build` may run on another worker than the try that failed, so whether
it runs `dbt retry` is decided from what every worker sees, never from a host's own
`target/run_results.json`:

- the key is the DAG run id, its clear number (Airflow adds one every time a task of the
  run is cleared) and the try number;
- `dbt retry` runs only when the newest earlier try of the same run and the same clear
  number was a `dbt build` of the same night that failed and stored its run results;
  those are written back into a fresh local target folder for dbt to read;
- anything else (a new DAG run, a cleared task or night, a try that left no results, a
  failed `dbt retry`) runs a full `dbt build`: a night is rebuilt, never skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

RUN_RESULTS = "run_results.json"

_DDL = """
create schema if not exists audit;
create table if not exists audit.dbt_runs (
    dag_run_id text not null,
    clear_number integer not null,
    try_number integer not null,
    as_of_date date not null,
    command text not null,
    success boolean not null,
    run_results jsonb,
    hostname text,
    recorded_at timestamptz not null default now(),
    primary key (dag_run_id, clear_number, try_number)
);
"""


@dataclass(frozen=True)
class BuildTry:
    """Which try of `dbt_build` this is: (DAG run id, clear number, try number)."""

    dag_run_id: str
    clear_number: int
    try_number: int


def ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(_DDL)


def previous_failed_build(url: str, key: BuildTry, as_of: date) -> dict[str, Any] | None:
    """The run results of this run's previous try when `dbt retry` can finish it: the
    newest earlier try of the same run and clear number was a failed `dbt build` of
    `as_of` that stored its results. None means: run a full build."""
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_table(conn)
        row = conn.execute(
            """
            select command, success, run_results from audit.dbt_runs
            where dag_run_id = %(run)s and clear_number = %(clear)s
              and try_number < %(try)s and as_of_date = %(day)s
            order by try_number desc limit 1
            """,
            {"run": key.dag_run_id, "clear": key.clear_number, "try": key.try_number,
             "day": as_of},
        ).fetchone()
    if row is None:
        return None
    command, success, results = row
    if success or command != "build" or not isinstance(results, dict):
        return None
    args = results.get("args") or {}
    night = str((args.get("vars") or {}).get("as_of_date"))
    if args.get("which") != "build" or night != as_of.isoformat():
        return None
    return results


def restore(results: dict[str, Any], target: Path) -> Path:
    """Write stored run results into `target` (created) for `dbt retry` to read."""
    target.mkdir(parents=True, exist_ok=True)
    path = target / RUN_RESULTS
    path.write_text(json.dumps(results), encoding="utf-8")
    return path


def record(url: str, key: BuildTry, as_of: date, command: str, success: bool,
           target: Path, hostname: str | None = None) -> None:
    """Store this try's outcome and dbt's run_results.json from `target` (if dbt wrote
    one); a later try of the same run reads them from here."""
    try:
        results = json.loads((target / RUN_RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = None
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_table(conn)
        conn.execute(
            """
            insert into audit.dbt_runs (dag_run_id, clear_number, try_number, as_of_date,
                                        command, success, run_results, hostname)
            values (%(run)s, %(clear)s, %(try)s, %(day)s, %(cmd)s, %(ok)s, %(res)s, %(host)s)
            on conflict (dag_run_id, clear_number, try_number) do update
               set command = excluded.command, success = excluded.success,
                   run_results = excluded.run_results, hostname = excluded.hostname,
                   recorded_at = now()
            """,
            {"run": key.dag_run_id, "clear": key.clear_number, "try": key.try_number,
             "day": as_of, "cmd": command, "ok": success,
             "res": Jsonb(results) if results is not None else None, "host": hostname},
        )
