"""P(alive) in the mart `customer_purchase_propensity`, nightly.

dbt writes the mart's rows (models/marts/customer_purchase_propensity.sql): per invoice-only
account, its purchase history in BG/NBD's terms (repeat purchases, recency, age). This step,
the nightly task `score_purchase_propensity` between `dbt_build` and the marts gate, fits
BG/NBD over all of the night's rows (`purchase_propensity`) and fills in each row's
`p_alive`, `expected_purchases_90d`, `fitted_accounts` and the parameters, in the schema dbt
built the night in (the shadow): the gate then checks them with the other marts. dbt runs
no Python on PostgreSQL, hence a task of its own.

Too few invoice-only accounts (CHW_PROPENSITY_MIN_ACCOUNTS), none that bought on a second
day, or a fit that does not converge is not a failure of the night: the scores stay NULL
and the result (the task's log and return value) says why. A lost connection raises, so
the task retries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date

import pandas as pd
import psycopg
from psycopg import sql

from customer_health import settings
from customer_health.modelling import purchase_propensity as bgnbd

log = logging.getLogger(__name__)

MART = "customer_purchase_propensity"
#: Fits tried in turn: plain maximum likelihood, then with this L2 penalty on the parameters.
#: On a few dozen accounts the plain fit often does not converge (the drop-out parameters
#: a and b run off to infinity when few accounts fell silent); a small penalty keeps them
#: finite and barely moves a fit that converges anyway.
PENALIZERS = (0.0, 0.001)


@dataclass
class PropensityResult:
    as_of_date: date
    schema: str
    accounts: int = 0
    scored: int = 0
    parameters: bgnbd.BgNbdParameters | None = None
    not_scored_because: str | None = None

    def describe(self) -> str:
        where = f"{self.schema}.{MART} for {self.as_of_date}"
        if self.not_scored_because:
            return f"{where}: {self.accounts} account(s), not scored ({self.not_scored_because})"
        p = self.parameters
        return (f"{where}: {self.scored} account(s) scored; BG/NBD r={p.r:.4g} "
                f"alpha={p.alpha:.4g} a={p.a:.4g} b={p.b:.4g}")


def _summary(conn: psycopg.Connection, schema: str, as_of_date: date) -> pd.DataFrame:
    rows = conn.execute(sql.SQL(
        "select account_id, repeat_purchases, recency_days, age_days from {}"
        " where as_of_date = %s order by account_id").format(sql.Identifier(schema, MART)),
        (as_of_date,)).fetchall()
    frame = pd.DataFrame(rows, columns=["account_id", "frequency", "recency", "T"])
    return frame.set_index("account_id").astype(float)


def _not_scored_because(summary: pd.DataFrame, minimum: int) -> str | None:
    if len(summary) < minimum:
        return (f"{len(summary)} invoice-only account(s), fewer than "
                f"CHW_PROPENSITY_MIN_ACCOUNTS={minimum} to fit BG/NBD on")
    if not (summary["frequency"] > 0).any():
        return "no invoice-only account bought on a second day: BG/NBD cannot be fitted"
    return None


def _fit(summary: pd.DataFrame):
    for penalizer in PENALIZERS:
        try:
            return bgnbd.fit(summary, penalizer=penalizer), penalizer
        except ValueError as exc:  # lifetimes' ConvergenceError
            failure = exc
    raise failure


def _scores(summary: pd.DataFrame) -> tuple[bgnbd.BgNbdParameters, list[tuple]]:
    fitter, penalizer = _fit(summary)
    log.info("BG/NBD fitted on %d accounts with penalizer %s", len(summary), penalizer)
    scored = bgnbd.score(summary, fitter)
    rows = []
    for account_id, s in scored.iterrows():
        p_alive, expected = float(s["p_alive"]), float(s["expected_purchases"])
        if not (math.isfinite(p_alive) and math.isfinite(expected)):
            raise ArithmeticError(f"a non-finite score for {account_id}")
        rows.append((account_id, min(1.0, max(0.0, p_alive)), max(0.0, expected)))
    return bgnbd.parameters(fitter), rows


def _write_scores(conn: psycopg.Connection, table: sql.Identifier, as_of_date: date,
                  rows: list[tuple], fitted: int, p: bgnbd.BgNbdParameters) -> None:
    """One set-based UPDATE from the scores COPYed into a temporary table. (An UPDATE per
    account found its row among the night's by the as_of_date index: 60 s a night for
    20,000 invoice-only accounts, issue 15.)"""
    conn.execute("create temporary table chw_propensity_scores (account_id text primary key,"
                 " p_alive float8, expected float8) on commit drop")
    with conn.cursor().copy("copy chw_propensity_scores from stdin") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(sql.SQL(
        "update {} as m set p_alive = s.p_alive, expected_purchases_90d = s.expected,"
        " fitted_accounts = %s, model_r = %s, model_alpha = %s, model_a = %s, model_b = %s"
        " from chw_propensity_scores as s"
        " where m.as_of_date = %s and m.account_id = s.account_id").format(table),
        (fitted, p.r, p.alpha, p.a, p.b, as_of_date))


def score_night(url: str, as_of_date: date, schema: str) -> PropensityResult:
    """Fit BG/NBD over the night's rows of `schema`.customer_purchase_propensity and write
    each account's scores and the parameters into them."""
    result = PropensityResult(as_of_date, schema)
    table = sql.Identifier(schema, MART)
    with psycopg.connect(url) as conn:
        summary = _summary(conn, schema, as_of_date)
        result.accounts = len(summary)
        result.not_scored_because = _not_scored_because(
            summary, settings.propensity_min_accounts())
        rows: list[tuple] = []
        if result.not_scored_because is None:
            try:
                result.parameters, rows = _scores(summary)
            except (ValueError, ArithmeticError) as exc:  # lifetimes' ConvergenceError too
                first_line = str(exc).strip().splitlines()[0]
                result.not_scored_because = f"the BG/NBD fit failed: {first_line}"
        p = result.parameters
        conn.execute(sql.SQL(
            "update {} set p_alive = null, expected_purchases_90d = null,"
            " fitted_accounts = null, model_r = null, model_alpha = null, model_a = null,"
            " model_b = null where as_of_date = %s").format(table), (as_of_date,))
        if rows:
            _write_scores(conn, table, as_of_date, rows, len(summary), p)
        result.scored = len(rows)
    log.info("score_purchase_propensity: %s", result.describe())
    return result
