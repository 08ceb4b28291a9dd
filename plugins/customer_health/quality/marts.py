"""The marts gate: one suite per mart, run on the schema a build wrote (which need not be
`marts`: a night is built in a shadow schema, validated, then swapped in)."""

from __future__ import annotations

from datetime import date

import psycopg

from customer_health.modelling.dbt_facts import current_versions_sql
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


def validate_marts(url: str, schema: str, as_of_date: date | str, run_id: str,
                   expected_account_count: int | None = None) -> QualityReport:
    """Validate the marts in `schema` for `as_of_date` (dated marts: that date's rows;
    monthly marts: all rows); store one row per expectation in `audit.quality_results`
    and return the report. A mart table missing from the schema is a blocking failure.
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
            views.append(BatchView(table, schema, table, spec.batch_column, day))
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
