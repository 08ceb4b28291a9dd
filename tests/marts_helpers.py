"""Small hand-made exports for the mart tests, and ways to put them into raw.*.

The scenario (hand-worked answers in tests/test_marts.py and docs/marts.md):

* A1 Acme (enterprise, north): new in July at 100, expansion to 150 in September,
  contraction to 120 in October; a refunded payment; an activity at 23:30 -02:00 on
  31 October (= 1 November UTC); an activity re-delivered in the second export.
* A2 Beta (mid_market, north): trial in August (counts 0), new in September at 200,
  canceled mid-October (churn), a big first invoice (win-back candidate).
* A3 Gamma (smb, south): paid in EUR; new in June, canceled in July (churn), a new
  subscription in September (reactivation).
* A4 Delta (smb, south): new in August at 80, past_due in October with a failed payment
  and an overdue invoice; the October version is re-delivered on 7 November with the same
  updated_at and mrr 90 (the later export wins).
* A5 Epsilon (enterprise, north): deleted in the CRM: in no mart.
* A6 Zeta (mid_market): team north, moves to team south on 2 November.
* A7 Eta (mid_market, south): created on 30 October, no data until a subscription
  starts on 3 November (new).

Export 2026-10-31 is the full history; export 2026-11-07 the delta.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from customer_health.contract import ENTITIES, Entity
from customer_health.loading import load_export
from customer_health.loading.raw_schema import ensure_partition, ensure_schemas

E0 = date(2026, 10, 31)
E1 = date(2026, 11, 7)

Rows = list[dict[str, str]]
Tables = dict[str, tuple[list[str], list[tuple]]]  # table -> its columns, its sorted rows
Export = dict[tuple[str, str], Rows]  # (system, entity) -> rows


def _rows(columns: str, *lines: Iterable[str]) -> Rows:
    names = columns.split()
    rows = []
    for line in lines:
        values = list(line)
        assert len(values) == len(names), (names, values)
        rows.append(dict(zip(names, values, strict=True)))
    return rows


ACCOUNT_COLS = ("account_id account_name industry segment region account_team owner_email "
                "created_at updated_at is_deleted")
SUB_COLS = ("subscription_id customer_id plan_code billing_interval quantity mrr currency status "
            "started_at current_term_end canceled_at updated_at")
INV_COLS = ("invoice_id customer_id subscription_id issued_at due_at amount_due amount_paid "
            "currency status paid_at updated_at")
PAY_COLS = ("payment_id invoice_id customer_id amount currency status attempted_at failure_code "
            "updated_at")
ACT_COLS = ("activity_id account_id contact_id activity_type direction occurred_at owner_email "
            "subject updated_at")
TICKET_COLS = ("ticket_id account_id contact_id priority status opened_at first_response_at "
               "resolved_at csat_score updated_at")


def _inv(iid: str, cust: str, sub: str, day: str, amount: str, currency: str = "USD") -> list[str]:
    at = f"{day}T09:00:00Z"
    return [iid, cust, sub, at, f"{day}T09:00:00Z", amount, amount, currency, "paid", at, at]


def _pay(pid: str, inv: str, cust: str, day: str, amount: str, currency: str = "USD",
         status: str = "succeeded", code: str = "") -> list[str]:
    at = f"{day}T09:05:00Z"
    return [pid, inv, cust, amount, currency, status, at, code, at]


FIRST_EXPORT: Export = {
    ("crm", "accounts"): _rows(
        ACCOUNT_COLS,
        ["A1", "Acme, Inc.", "software", "enterprise", "emea", "north", "anna@vendor.example",
         "2026-06-15T09:00:00Z", "2026-06-15T09:00:00Z", "false"],
        ["A2", "Beta \"GmbH\"", "", "mid_market", "na", "north", "ben@vendor.example",
         "2026-07-20T09:00:00Z", "2026-07-20T09:00:00Z", "false"],
        ["A3", "Gamma", "retail", "smb", "emea", "south", "carl@vendor.example",
         "2026-05-20T09:00:00Z", "2026-05-20T09:00:00Z", "false"],
        ["A4", "Delta", "", "smb", "latam", "south", "dora@vendor.example",
         "2026-07-25T09:00:00Z", "2026-07-25T09:00:00Z", "false"],
        ["A5", "Epsilon", "", "enterprise", "apac", "north", "anna@vendor.example",
         "2026-06-01T09:00:00Z", "2026-06-01T09:00:00Z", "false"],
        ["A5", "Epsilon", "", "enterprise", "apac", "north", "anna@vendor.example",
         "2026-06-01T09:00:00Z", "2026-10-10T12:00:00Z", "true"],
        ["A6", "Zeta", "media", "mid_market", "na", "north", "ben@vendor.example",
         "2026-09-01T08:00:00Z", "2026-09-01T08:00:00Z", "false"],
        ["A7", "Eta", "", "mid_market", "emea", "south", "carl@vendor.example",
         "2026-10-30T10:00:00Z", "2026-10-30T10:00:00Z", "false"],
    ),
    ("crm", "contacts"): _rows(
        "contact_id account_id full_name email title is_primary created_at updated_at is_deleted",
        ["K1", "A1", "Alice Customer", "alice@acme.example", "CTO", "true",
         "2026-06-15T09:00:00Z", "2026-06-15T09:00:00Z", "false"],
        ["K2", "A2", "Bob Customer", "bob@beta.example", "", "true",
         "2026-07-20T09:00:00Z", "2026-07-20T09:00:00Z", "false"],
        ["K3", "A2", "Old Contact", "old@beta.example", "", "false",
         "2026-07-20T09:00:00Z", "2026-08-20T09:00:00Z", "true"],
    ),
    ("crm", "activities"): _rows(
        ACT_COLS,
        ["ACT1", "A1", "K1", "call", "outbound", "2026-10-21T10:00:00Z", "anna@vendor.example",
         "QBR prep, pricing", "2026-10-21T10:05:00Z"],
        ["ACT2", "A1", "K1", "email", "inbound", "2026-10-01T09:00:00Z", "", "",
         "2026-10-01T09:00:00Z"],
        ["ACT3", "A1", "", "meeting", "outbound", "2026-08-15T10:00:00Z", "", "",
         "2026-08-15T10:00:00Z"],
        # 23:30 at -02:00 on 31 October is 01:30 UTC on 1 November: not part of 31 October
        ["ACT4", "A1", "", "call", "outbound", "2026-10-31T23:30:00-02:00", "", "",
         "2026-11-01T01:35:00Z"],
        ["ACT5", "A2", "K2", "email", "outbound", "2026-09-20T15:00:00Z", "", "",
         "2026-09-20T15:00:00Z"],
        ["ACT6", "A3", "", "call", "outbound", "2026-07-01T12:00:00Z", "", "",
         "2026-07-01T12:00:00Z"],
        ["ACT7", "A4", "", "email", "inbound", "2026-10-20T08:00:00Z", "", "",
         "2026-10-20T08:00:00Z"],
        ["ACT8", "A6", "", "qbr", "outbound", "2026-10-25T14:00:00Z", "", "",
         "2026-10-25T14:00:00Z"],
        ["ACT9", "A6", "", "meeting", "outbound", "2026-10-30T16:00:00Z", "", "",
         "2026-10-30T16:00:00Z"],
        ["ACT10", "A5", "", "call", "outbound", "2026-10-01T10:00:00Z", "", "",
         "2026-10-01T10:00:00Z"],
    ),
    ("crm", "support_tickets"): _rows(
        TICKET_COLS,
        ["T1", "A1", "K1", "high", "open", "2026-10-25T10:00:00Z", "", "", "",
         "2026-10-25T10:00:00Z"],
        ["T2", "A2", "K2", "normal", "solved", "2026-09-10T00:00:00Z", "2026-09-10T02:00:00Z",
         "2026-09-11T00:00:00Z", "2", "2026-09-11T00:00:00Z"],
    ),
    ("crm", "nps_responses"): _rows(
        "response_id account_id contact_id score responded_at comment",
        ["R1", "A1", "K1", "9", "2026-09-05T10:00:00Z", "great, really"],
        # 22:30 at -03:00 on 30 September is 1 October UTC: an October response
        ["R2", "A1", "K1", "6", "2026-09-30T22:30:00-03:00", ""],
        ["R3", "A2", "K2", "3", "2026-10-10T10:00:00Z", "too slow\nand pricey"],
        ["R4", "A6", "", "10", "2026-10-29T10:00:00Z", ""],
        ["R5", "A5", "", "10", "2026-10-02T10:00:00Z", ""],
        ["R6", "A4", "", "7", "2026-10-12T10:00:00Z", ""],
    ),
    ("billing", "customers"): _rows(
        "customer_id account_id billing_email currency created_at updated_at",
        ["C1", "A1", "billing@acme.example", "USD", "2026-07-01T00:00:00Z", "2026-07-01T00:00:00Z"],
        ["C2", "A2", "", "USD", "2026-07-25T00:00:00Z", "2026-07-25T00:00:00Z"],
        ["C3", "A3", "", "EUR", "2026-05-25T00:00:00Z", "2026-05-25T00:00:00Z"],
        ["C4", "A4", "", "USD", "2026-07-30T00:00:00Z", "2026-07-30T00:00:00Z"],
        ["C5", "A5", "", "USD", "2026-06-20T00:00:00Z", "2026-06-20T00:00:00Z"],
        ["C6", "A6", "", "USD", "2026-09-02T00:00:00Z", "2026-09-02T00:00:00Z"],
    ),
    ("billing", "subscriptions"): _rows(
        SUB_COLS,
        ["S1", "C1", "pro", "month", "10", "100.00", "USD", "active", "2026-07-10T09:00:00Z",
         "2027-07-10", "", "2026-07-10T09:00:00Z"],
        ["S1", "C1", "pro", "month", "15", "150.00", "USD", "active", "2026-07-10T09:00:00Z",
         "2027-07-10", "", "2026-09-15T12:00:00Z"],
        ["S1", "C1", "pro", "month", "12", "120.00", "USD", "active", "2026-07-10T09:00:00Z",
         "2027-07-10", "", "2026-10-05T12:00:00Z"],
        ["S2", "C2", "team", "month", "20", "200.00", "USD", "trialing", "2026-08-01T00:00:00Z",
         "2026-09-01", "", "2026-08-01T00:00:00Z"],
        ["S2", "C2", "team", "month", "20", "200.00", "USD", "active", "2026-08-01T00:00:00Z",
         "2026-10-01", "", "2026-09-01T00:00:00Z"],
        ["S2", "C2", "team", "month", "20", "200.00", "USD", "canceled", "2026-08-01T00:00:00Z",
         "2026-11-01", "2026-10-15T14:00:00Z", "2026-10-15T14:00:00Z"],
        ["S3", "C3", "starter", "month", "1", "50.00", "EUR", "active", "2026-06-01T00:00:00Z",
         "2026-07-01", "", "2026-06-01T00:00:00Z"],
        ["S3", "C3", "starter", "month", "1", "50.00", "EUR", "canceled", "2026-06-01T00:00:00Z",
         "2026-08-01", "2026-07-20T08:00:00Z", "2026-07-20T08:00:00Z"],
        ["S3B", "C3", "starter", "month", "1", "50.00", "EUR", "active", "2026-09-10T00:00:00Z",
         "2026-11-10", "", "2026-09-10T00:00:00Z"],
        ["S4", "C4", "starter", "month", "8", "80.00", "USD", "active", "2026-08-01T00:00:00Z",
         "2026-11-15", "", "2026-08-01T00:00:00Z"],
        ["S4", "C4", "starter", "month", "8", "80.00", "USD", "past_due", "2026-08-01T00:00:00Z",
         "2026-11-15", "", "2026-10-20T06:00:00Z"],
        ["S5", "C5", "pro", "year", "50", "500.00", "USD", "active", "2026-07-01T00:00:00Z",
         "2027-07-01", "", "2026-07-01T00:00:00Z"],
        ["S6", "C6", "team", "month", "30", "300.00", "USD", "active", "2026-09-05T10:00:00Z",
         "2026-12-05", "", "2026-09-05T10:00:00Z"],
    ),
    ("billing", "invoices"): _rows(
        INV_COLS,
        _inv("I1", "C1", "S1", "2026-07-10", "100.00"),
        _inv("I2", "C1", "S1", "2026-08-10", "100.00"),
        _inv("I3", "C1", "S1", "2026-09-15", "150.00"),
        _inv("I4", "C1", "S1", "2026-10-05", "120.00"),
        _inv("I5", "C2", "S2", "2026-09-01", "500.00"),
        _inv("I6", "C2", "S2", "2026-10-01", "200.00"),
        _inv("I7", "C3", "S3", "2026-06-01", "50.00", "EUR"),
        _inv("I8", "C3", "S3B", "2026-09-10", "50.00", "EUR"),
        _inv("I9", "C3", "S3B", "2026-10-10", "50.00", "EUR"),
        _inv("I10", "C4", "S4", "2026-08-01", "80.00"),
        _inv("I11", "C4", "S4", "2026-09-01", "80.00"),
        ["I12", "C4", "S4", "2026-10-15T09:00:00Z", "2026-10-25T09:00:00Z", "80.00", "0",
         "USD", "open", "", "2026-10-15T09:00:00Z"],
        _inv("I13", "C6", "S6", "2026-09-05", "300.00"),
        _inv("I14", "C6", "S6", "2026-10-05", "300.00"),
        _inv("I15", "C5", "S5", "2026-07-01", "500.00"),
    ),
    ("billing", "payments"): _rows(
        PAY_COLS,
        _pay("P1", "I1", "C1", "2026-07-10", "100.00"),
        _pay("P2", "I2", "C1", "2026-08-10", "100.00"),
        _pay("P3", "I3", "C1", "2026-09-15", "150.00"),
        _pay("P4", "I4", "C1", "2026-10-05", "120.00"),
        _pay("P5", "I4", "C1", "2026-10-06", "20.00", status="refunded"),
        _pay("P6", "I5", "C2", "2026-09-01", "500.00"),
        _pay("P7", "I6", "C2", "2026-10-01", "200.00"),
        _pay("P8", "I7", "C3", "2026-06-01", "50.00", "EUR"),
        _pay("P9", "I8", "C3", "2026-09-10", "50.00", "EUR"),
        _pay("P10", "I9", "C3", "2026-10-10", "50.00", "EUR"),
        _pay("P11", "I10", "C4", "2026-08-01", "80.00"),
        _pay("P12", "I11", "C4", "2026-09-01", "80.00"),
        _pay("P13", "I12", "C4", "2026-10-20", "80.00", status="failed", code="card_declined"),
        _pay("P14", "I13", "C6", "2026-09-05", "300.00"),
        _pay("P15", "I14", "C6", "2026-10-05", "300.00"),
    ),
}

SECOND_EXPORT: Export = {
    ("crm", "accounts"): _rows(
        ACCOUNT_COLS,
        ["A6", "Zeta", "media", "mid_market", "na", "south", "carl@vendor.example",
         "2026-09-01T08:00:00Z", "2026-11-02T09:00:00Z", "false"],
    ),
    ("crm", "contacts"): [],
    ("crm", "activities"): _rows(
        ACT_COLS,
        # re-delivered, identical
        ["ACT1", "A1", "K1", "call", "outbound", "2026-10-21T10:00:00Z", "anna@vendor.example",
         "QBR prep, pricing", "2026-10-21T10:05:00Z"],
    ),
    ("crm", "support_tickets"): _rows(
        TICKET_COLS,
        ["T1", "A1", "K1", "high", "solved", "2026-10-25T10:00:00Z", "2026-10-25T12:00:00Z",
         "2026-11-03T10:00:00Z", "4", "2026-11-03T10:00:00Z"],
    ),
    ("crm", "nps_responses"): _rows(
        "response_id account_id contact_id score responded_at comment",
        ["R7", "A6", "", "8", "2026-11-05T10:00:00Z", ""],
    ),
    ("billing", "customers"): _rows(
        "customer_id account_id billing_email currency created_at updated_at",
        ["C7", "A7", "", "USD", "2026-11-03T00:00:00Z", "2026-11-03T00:00:00Z"],
    ),
    ("billing", "subscriptions"): _rows(
        SUB_COLS,
        # same key and updated_at as the first export's version, corrected mrr: later export wins
        ["S4", "C4", "starter", "month", "9", "90.00", "USD", "past_due", "2026-08-01T00:00:00Z",
         "2026-11-15", "", "2026-10-20T06:00:00Z"],
        ["S7", "C7", "starter", "month", "6", "60.00", "USD", "active", "2026-11-03T12:00:00Z",
         "2026-12-03", "", "2026-11-03T12:00:00Z"],
    ),
    ("billing", "invoices"): _rows(INV_COLS, _inv("I16", "C7", "S7", "2026-11-03", "60.00")),
    ("billing", "payments"): _rows(PAY_COLS, _pay("P16", "I16", "C7", "2026-11-03", "60.00")),
}

SCENARIO: dict[date, Export] = {E0: FIRST_EXPORT, E1: SECOND_EXPORT}


def write_export(landing: Path, export_date: date, export: Mapping[tuple[str, str], Rows]) -> None:
    """Write one night's CSV files (every entity, header only where no rows) per the contract."""
    for ent in ENTITIES:
        folder = landing / ent.system / export_date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        rows = export.get((ent.system, ent.name), [])
        with open(folder / ent.file_name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ent.column_names), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def _insert_entity(conn: psycopg.Connection, ent: Entity, export_date: date, rows: Rows) -> None:
    names = [*ent.column_names, "_export_date", "_source_file", "_line_number"]
    casts = [sql.SQL("{}::{}").format(sql.Placeholder(), sql.SQL(c.pg_type)) for c in ent.columns]
    casts += [sql.SQL("%s::date"), sql.SQL("%s"), sql.SQL("%s")]
    statement = sql.SQL("insert into {} ({}) values ({})").format(
        sql.Identifier("raw", ent.raw_table),
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
        sql.SQL(", ").join(casts),
    )
    source = f"{ent.system}/{export_date.isoformat()}/{ent.file_name}"
    params = [
        [*(row[c] if row[c] != "" else None for c in ent.column_names),
         export_date.isoformat(), source, line]
        for line, row in enumerate(rows, start=2)
    ]
    if params:
        ensure_partition(conn, ent, export_date)
        with conn.cursor() as cur:
            cur.executemany(statement, params)


def insert_export(url: str, export_date: date, export: Mapping[tuple[str, str], Rows]) -> None:
    """Put one night's rows straight into raw.* (what the loader would, minus the checks)."""
    with psycopg.connect(url) as conn:
        ensure_schemas(conn)
        with conn.transaction():
            conn.execute("set local time zone 'UTC'")
            for ent in ENTITIES:
                _insert_entity(conn, ent, export_date, list(export.get((ent.system, ent.name), [])))


def load_export_via_loader(url: str, landing: Path, export_date: date,
                           export: Mapping[tuple[str, str], Rows]) -> None:
    """Write the CSV files and load them with the project's loader."""
    from customer_health.loading import load_export

    write_export(landing, export_date, export)
    results = load_export(url, landing, export_date)
    bad = [r for r in results if not r.ok or r.rows_quarantined]
    assert not bad, bad


def fetch(url: str, query: str, params: tuple = ()) -> list[dict]:
    """Rows of a query as dicts (Decimal for numeric, as PostgreSQL returns them)."""
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def by_key(rows: list[dict], *keys: str) -> dict:
    """Index rows by one key (or a tuple of keys)."""
    if len(keys) == 1:
        return {r[keys[0]]: r for r in rows}
    return {tuple(r[k] for k in keys): r for r in rows}


def layer_tables(url: str, layers: Iterable[str] = ("staging", "intermediate", "marts")) -> Tables:
    """Every table of the layers (schemas), its columns (but the times a build wrote or
    computed a row: _written_*, computed_at) and sorted rows."""
    with psycopg.connect(url) as conn:
        names = conn.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema = any(%s) and table_type = 'BASE TABLE' order by 1, 2",
            (list(layers),)).fetchall()
        out: Tables = {}
        for schema, table in names:
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s"
                " and column_name not like '\\_written%%' and column_name <> 'computed_at'"
                " order by column_name",
                (schema, table)).fetchall()]
            rows = conn.execute(sql.SQL("select {} from {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(schema, table))).fetchall()
            out[f"{schema}.{table}"] = (columns, sorted(rows, key=repr))
    return out


def load_night(url: str, landing: Path, day: date) -> None:
    """Load a night's exports with the loader; every file must be accepted."""
    bad = [r for r in load_export(url, landing, day) if not r.ok]
    assert not bad, bad


def compiled_code(result: object, model: str) -> str:
    """The SQL dbt compiled for `model` in a run (a transform.DbtRunResult)."""
    return next(r.node.compiled_code for r in result.raw.results
                if r.node.unique_id == f"model.chw.{model}")
