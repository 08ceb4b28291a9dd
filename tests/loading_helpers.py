"""Helpers for the loader's tests: write export folders, read back what was loaded."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg

DAY = date(2026, 11, 21)
ACT_HEADER = ("activity_id,account_id,contact_id,activity_type,direction,occurred_at,"
              "owner_email,subject,updated_at")
SUB_HEADER = ("subscription_id,customer_id,plan_code,billing_interval,quantity,mrr,currency,"
              "status,started_at,current_term_end,canceled_at,updated_at")


def act(i: int, occurred: str = "2026-11-20T10:00:00Z", subject: str = "hello") -> str:
    """One valid activities row."""
    return (f"a{i},acc{i % 3},,call,outbound,{occurred},am@example.com,{subject},"
            "2026-11-20T10:00:00Z")


def sub(i: int, quantity: str = "3", mrr: str = "1234.50", term_end: str = "2027-01-31") -> str:
    return (f"s{i},c{i},pro,month,{quantity},{mrr},EUR,active,2026-01-01T00:00:00Z,"
            f"{term_end},,2026-11-20T08:00:00+01:00")


def csv_text(header: str, rows: list[str], eol: str = "\n") -> str:
    return "".join(line + eol for line in [header, *rows])


def write_export(landing: Path, system: str, files: dict[str, str | bytes],
                 day: date = DAY, manifest: bool | dict = False) -> Path:
    """Write `<landing>/<system>/<day>/<name>` for each file; optionally a manifest.

    `manifest=True` writes a correct one (rows = data lines, for files without
    blank or multi-line records); a dict is written as given.
    """
    folder = landing / system / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    if manifest is True:
        manifest = manifest_for(files, system, day)
    if manifest:
        (folder / "_manifest.json").write_text(json.dumps(manifest))
    return folder


def manifest_for(files: dict[str, str | bytes], system: str, day: date = DAY) -> dict:
    entries = {}
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        entries[name] = {"rows": data.count(b"\n") - 1, "sha256": hashlib.sha256(data).hexdigest()}
    return {"export_date": day.isoformat(), "system": system, "full": False, "files": entries}


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def raw_rows(url: str, table: str, columns: str = "activity_id, _line_number") -> list[tuple]:
    return query(url, f"select {columns} from raw.{table} order by _line_number")  # noqa: S608


def quarantine(url: str) -> list[tuple]:
    """(line_number, raw_line, reason) of every quarantined row, in file order."""
    return query(url, "select line_number, raw_line, reason from audit.quarantine"
                      " order by load_id, line_number")


def ledger(url: str) -> list[tuple]:
    """(entity, status, rows_read, rows_loaded, rows_quarantined, message) per attempt."""
    return query(url, "select entity, status, rows_read, rows_loaded, rows_quarantined, message"
                      " from audit.load_ledger order by load_id")


#: raw.crm_activities as an earlier version made it: without `_extra`, before raw was
#: partitioned by night (the upgrade tests add " partition by list (_export_date)").
EARLIER_ACTIVITIES_DDL = (
    "create table raw.crm_activities (activity_id text, account_id text,"
    " contact_id text, activity_type text, direction text,"
    " occurred_at timestamptz, owner_email text, subject text,"
    " updated_at timestamptz, _export_date date not null,"
    " _source_file text not null, _line_number bigint not null,"
    " _loaded_at timestamptz not null default now())"
)


def edit_export(landing: Path, system: str, day: date, entity: str,
                change: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> None:
    """Rewrite one export file with `change` applied (as a re-delivery would) and drop the
    folder's manifest, whose checksums no longer hold: the folder is then complete when
    every file is there."""
    folder = landing / system / day.isoformat()
    path = folder / f"{entity}.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(change(rows))
    (folder / "_manifest.json").unlink(missing_ok=True)
