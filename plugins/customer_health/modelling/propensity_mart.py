"""The mart `customer_purchase_propensity`: P(alive) of the invoice-only accounts, nightly.

dbt builds the purchases (`intermediate.int_invoice_only_purchases`: one row per account
and day with a paid invoice); this step, a task of the nightly DAG between `dbt_build` and
the marts gate, fits BG/NBD on them (`purchase_propensity`) and writes the night's rows into
the schema dbt wrote the night's marts to (the shadow, before the gate), keyed by
as_of_date like the other dated marts: write, audit, publish carries it with them.

dbt cannot run Python on PostgreSQL, so the table is created here; its columns are
described in PostgreSQL comments (as dbt's persist_docs does for the dbt marts) and in
docs/marts.md.

Too few invoice-only accounts (CHW_PROPENSITY_MIN_ACCOUNTS), none that bought twice, or a
fit that does not converge is not a failure of the night: the night's rows are none, and
the result (in the task's log and return value) says why. A lost connection raises, so the
task retries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

from customer_health import settings
from customer_health.modelling import purchase_propensity as bgnbd

log = logging.getLogger(__name__)

MART = "customer_purchase_propensity"
PURCHASES = ("intermediate", "int_invoice_only_purchases")

#: column -> (type, comment)
COLUMNS: dict[str, tuple[str, str]] = {
    "as_of_date": ("date not null", "The night the figures are as of."),
    "account_id": ("text not null", "CRM account that pays invoice by invoice (no "
                   "subscription)."),
    "account_team": ("text", "The account's team tonight."),
    "first_purchase_on": ("date not null", "UTC day of its first paid invoice."),
    "last_purchase_on": ("date not null", "UTC day of its latest paid invoice."),
    "days_since_last_purchase": ("integer not null", "Days from last_purchase_on to "
                                 "as_of_date."),
    "repeat_purchases": ("integer not null", "Days with a paid invoice after the first "
                         "(BG/NBD's frequency)."),
    "p_alive": ("double precision not null", "BG/NBD probability that the account still "
                "buys (has not dropped out), 0..1."),
    "expected_purchases_90d": ("double precision not null", "BG/NBD expected purchase "
                               "days in the next 90 days."),
    "fitted_accounts": ("integer not null", "Invoice-only accounts the night's fit read."),
    "model_r": ("double precision not null", "Fitted BG/NBD parameter r (purchase rate "
                "shape)."),
    "model_alpha": ("double precision not null", "Fitted BG/NBD parameter alpha (purchase "
                    "rate scale, days)."),
    "model_a": ("double precision not null", "Fitted BG/NBD parameter a (drop-out)."),
    "model_b": ("double precision not null", "Fitted BG/NBD parameter b (drop-out)."),
}
_TABLE_COMMENT = ("P(alive) and expected purchases in the next 90 days of the accounts "
                  "without a subscription (BG/NBD, Fader, Hardie & Lee 2005), one row per "
                  "account per night: see docs/marts.md")


@dataclass
class PropensityResult:
    as_of_date: date
    schema: str
    accounts: int = 0
    rows_written: int = 0
    parameters: bgnbd.BgNbdParameters | None = None
    skipped_because: str | None = None

    def describe(self) -> str:
        where = f"{self.schema}.{MART} for {self.as_of_date}"
        if self.skipped_because:
            return f"{where}: no rows ({self.skipped_because})"
        p = self.parameters
        return (f"{where}: {self.rows_written} account(s); BG/NBD r={p.r:.4g} "
                f"alpha={p.alpha:.4g} a={p.a:.4g} b={p.b:.4g}")


def ensure_table(conn: psycopg.Connection, schema: str) -> None:
    """Create the mart in `schema` with its comments, when it is not there."""
    table = sql.Identifier(schema, MART)
    exists = conn.execute("select to_regclass(%s) is not null",
                          (table.as_string(conn),)).fetchone()[0]
    if exists:
        return
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, (kind, _) in COLUMNS.items())
    conn.execute(sql.SQL("create table {} ({}, primary key (as_of_date, account_id))")
                 .format(table, columns))
    conn.execute(sql.SQL("comment on table {} is {}").format(table,
                                                               sql.Literal(_TABLE_COMMENT)))
    for name, (_, comment) in COLUMNS.items():
        conn.execute(sql.SQL("comment on column {}.{} is {}").format(
            table, sql.Identifier(name), sql.Literal(comment)))


def _purchases(conn: psycopg.Connection) -> tuple[list[tuple[str, date]], dict[str, str]]:
    rows = conn.execute(sql.SQL("select account_id, account_team, purchased_on from {}")
                        .format(sql.Identifier(*PURCHASES))).fetchall()
    return [(a, d) for a, _, d in rows], {a: t for a, t, _ in rows}


def _skip_reason(summary, minimum: int) -> str | None:
    if len(summary) < minimum:
        return (f"{len(summary)} invoice-only account(s), fewer than "
                f"CHW_PROPENSITY_MIN_ACCOUNTS={minimum} to fit BG/NBD on")
    if not (summary["frequency"] > 0).any():
        return "no invoice-only account bought on a second day: BG/NBD cannot be fitted"
    return None


def score_night(url: str, as_of_date: date, schema: str) -> PropensityResult:
    """Fit BG/NBD on the invoice-only accounts' purchases up to `as_of_date` and replace the
    night's rows of `schema`.customer_purchase_propensity with their scores."""
    result = PropensityResult(as_of_date, schema)
    with psycopg.connect(url) as conn:
        ensure_table(conn, schema)
        purchases, teams = _purchases(conn)
        rows: list[tuple] = []
        if purchases:
            summary = bgnbd.purchase_summary(purchases, as_of_date)
            result.accounts = len(summary)
            result.skipped_because = _skip_reason(summary, settings.propensity_min_accounts())
        else:
            result.skipped_because = "no invoice-only account has a paid invoice"
        if result.skipped_because is None:
            try:
                fitter = bgnbd.fit(summary)
                result.parameters = bgnbd.parameters(fitter)
                rows = _rows(bgnbd.score(summary, fitter), teams, as_of_date, result)
            except (ValueError, ArithmeticError) as exc:  # lifetimes' ConvergenceError too
                result.skipped_because, result.parameters = f"the BG/NBD fit failed: {exc}", None
        table = sql.Identifier(schema, MART)
        conn.execute(sql.SQL("delete from {} where as_of_date = %s").format(table),
                     (as_of_date,))
        if rows:
            names = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
            with conn.cursor().copy(sql.SQL("copy {} ({}) from stdin").format(table, names)) \
                    as copy:
                for row in rows:
                    copy.write_row(row)
        result.rows_written = len(rows)
    log.info("score_purchase_propensity: %s", result.describe())
    return result


def _rows(scored, teams: dict[str, str], as_of_date: date,
          result: PropensityResult) -> list[tuple]:
    p = result.parameters
    rows = []
    for account_id, s in scored.iterrows():
        p_alive = min(1.0, max(0.0, float(s["p_alive"])))
        expected = max(0.0, float(s["expected_purchases"]))
        if not (math.isfinite(p_alive) and math.isfinite(expected)):
            raise ArithmeticError(f"BG/NBD gave a non-finite score for {account_id}")
        last = s["last_purchase"]
        rows.append((
            as_of_date, account_id, teams.get(account_id),
            as_of_date.fromordinal(as_of_date.toordinal() - int(s["T"])),
            last, (as_of_date - last).days, int(s["frequency"]), p_alive, expected,
            result.accounts, p.r, p.alpha, p.a, p.b,
        ))
    return rows
