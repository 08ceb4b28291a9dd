"""The marts gate: one suite per mart, run on the schema a build wrote (which need not be
`marts`: a night is built in a shadow schema, validated, then swapped in).

Which rows a suite reads: a dated mart's `as_of_date`; a monthly mart, or one rebuilt
whole, all its rows, unless the validation names the published schema (`published`, as
the nightly gate does). Then only the rows that differ from the published marts are
read, since the published ones passed the gate the night they were published:
- a monthly mart: the rows of the as_of_dates the build wrote that `marts` does not hold
  (the write-audit-publish generations, `wap.unpublished_dates`); a night rewrites whole
  months, so a month's rows are all of one as_of_date and uniqueness within the batch is
  uniqueness of the month;
- a mart rebuilt whole that says when each of its rows was computed (`COMPUTED_SINCE`):
  the rows computed after the published mart's newest, and any row sharing the unique key
  of one of them (which `unique` then fails), copied once into the batch schema.
The rest is read whole. Before issue 15's fourth pass the gate read these marts whole
every night: the back-test's rows and every month of history, 13-14 s of a night at
100,000 accounts x 365 days and 19-25 s at 730.
"""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg import sql

from customer_health.catalog import table_columns
from customer_health.modelling.dbt_facts import current_versions_sql, monthly_marts
from customer_health.publishing.wap import unpublished_dates
from customer_health.quality.batches import BatchView, batch_schema, table_exists
from customer_health.quality.config import load_config
from customer_health.quality.context import open_context, sync_context
from customer_health.quality.results import Outcome, QualityReport, ensure_results_table, store
from customer_health.quality.runner import run_suite
from customer_health.quality.suites import EXPECTED_ACCOUNTS, MARTS, mart_suite


def expected_accounts(conn: psycopg.Connection, as_of_date: date) -> int:
    """The accounts customer_health must hold a row for: the current version, at the end
    of the as_of_date, of every account exported by then, unless deleted. The version
    is chosen by dbt's own `current_versions` macro (the contract's delta rule), rendered
    for the night (customer_health.modelling.dbt_facts)."""
    if not table_exists(conn, "raw", "crm_accounts"):
        return 0
    current = current_versions_sql("raw.crm_accounts", "account_id", as_of_date)
    query = f"select count(*) from ({current}) as current_accounts where not is_deleted"  # noqa: S608 (rendered from constants)
    return conn.execute(query).fetchone()[0]


#: Marts rebuilt whole whose rows say when they were computed: mart -> (that column, the
#: mart's unique key: the gate reads the rows computed since with every row sharing their
#: key, so that a recomputed row clashing with an older one fails `unique`).
COMPUTED_SINCE = {"health_score_backtest_accounts": (
    "computed_at", ("evaluation_date", "horizon_days", "account_id"))}


def _computed_since(conn: psycopg.Connection, table: str, schema: str,
                    published: str) -> BatchView | None:
    """The batch of a whole mart listed in COMPUTED_SINCE: the rows computed after the
    published mart's newest and those sharing their key. None: read it whole (nothing
    published to compare with, or a table without the column)."""
    column, key = COMPUTED_SINCE[table]
    # (a missing table has no columns)
    if column not in set(table_columns(conn, published, table)) & set(
            table_columns(conn, schema, table)):
        return None
    newest = conn.execute(sql.SQL("select max({}) from {}").format(
        sql.Identifier(column), sql.Identifier(published, table))).fetchone()[0]
    if newest is None:
        return None
    keys = sql.SQL(", ").join(sql.Identifier("t", c) for c in key)
    where = sql.SQL("({keys}) in (select {keys} from {source} as t where {column} > {newest})"
                    ).format(keys=keys, source=sql.Identifier(schema, table),
                             column=sql.Identifier("t", column), newest=sql.Literal(newest))
    return BatchView(table, schema, table, where=where, materialize=True)


def mart_batch(conn: psycopg.Connection, table: str, schema: str, day: date,
               published: str | None, batch_column: str | None) -> BatchView:
    """The rows of `schema`.`table` a validation reads (module docstring)."""
    if batch_column is not None:
        return BatchView(table, schema, table, batch_column, day)
    if published is None or published == schema:
        return BatchView(table, schema, table)
    if table in monthly_marts():
        dates = unpublished_dates(conn, schema, published)
        if dates is None:
            return BatchView(table, schema, table)
        return BatchView(table, schema, table, where=sql.SQL("{} = any({})").format(
            sql.Identifier("t", "as_of_date"), sql.Literal(dates)))
    if table in COMPUTED_SINCE:
        return _computed_since(conn, table, schema, published) or BatchView(table, schema, table)
    return BatchView(table, schema, table)


def validate_marts(url: str, schema: str, as_of_date: date | str, run_id: str,
                   expected_account_count: int | None = None,
                   published: str | None = None) -> QualityReport:
    """Validate the marts in `schema` for `as_of_date` (dated marts: that date's rows;
    monthly marts and those rebuilt whole: all rows, or with `published`, the schema
    holding the marts that passed, only the rows that differ from them; module
    docstring); store one row per expectation in `audit.quality_results` and return the
    report. A mart table missing from the schema is a blocking failure.
    `expected_account_count` overrides the count customer_health is checked against
    (default: computed from raw.crm_accounts)."""
    day = date.fromisoformat(as_of_date) if isinstance(as_of_date, str) else as_of_date
    config = load_config()
    report = QualityReport(gate=f"marts({schema})", run_id=run_id, as_of_date=day)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_results_table(conn)
        specs, views = [], []
        for table in MARTS:
            spec = mart_suite(table)
            if not table_exists(conn, schema, table):
                report.outcomes.append(Outcome(
                    spec.name, "table_exists", config.severity(spec.name, "table_exists"),
                    False, f"no table {schema}.{table}", {"schema": schema, "table": table}))
                continue
            specs.append(spec)
            views.append(mart_batch(conn, table, schema, day, published, spec.batch_column))
        accounts = (expected_account_count if expected_account_count is not None
                    else expected_accounts(conn, day))
        if specs:
            with batch_schema(conn, views) as batch:
                context = open_context(url=url, schema=batch)
                sync_context(context, tuple(specs))
                for spec in specs:
                    outcomes, ids = run_suite(context, spec, config, run_id, None,
                                              {EXPECTED_ACCOUNTS: accounts})
                    report.outcomes.extend(outcomes)
                    report.validation_ids.extend(ids)
        store(conn, report)
    return report
