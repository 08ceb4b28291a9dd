"""Read one night of the marts (shared/spec/marts.md) for the reports.

Everything a page shows comes from schema `marts` (or the `schema` given): the night's
rows of customer_health joined with customer_inactivity and customer_lifetime_value,
the same accounts' rows 7 days earlier (for the movers' drivers), the teams' average
health over the last 90 nights and their NRR from revenue_movements, and the back-test of
the score (reporting.backtest).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from customer_health.reporting.backtest import BacktestPanel, load_backtest

COMPONENTS = ("engagement", "support", "sentiment", "billing")
REQUIRED_TABLES = (
    "customer_health",
    "customer_inactivity",
    "customer_lifetime_value",
    "revenue_movements",
)
TREND_NIGHTS = 90

Row = dict[str, Any]


class MartsMissingError(RuntimeError):
    """The marts the reports need are not there (or hold no row for the night)."""


@dataclass
class NightData:
    """One night of the marts, split by account team."""

    as_of_date: date
    accounts_by_team: dict[str, list[Row]]
    #: team -> [(as_of_date, average health score)], oldest first, at most 90 nights
    trend: dict[str, list[tuple[date, float]]] = field(default_factory=dict)
    #: team -> NRR of the month of as_of_date (None when the team had no MRR the month before)
    nrr: dict[str, float | None] = field(default_factory=dict)
    #: team -> NRR over 12 months (the cohort paying 12 months earlier), None when none
    nrr_12m: dict[str, float | None] = field(default_factory=dict)
    #: team -> NPS of the last 90 days (account_team_summary.nps_90d), when present
    nps_90d: dict[str, float | None] = field(default_factory=dict)
    #: does the score predict churn? (the back-test marts; None when they hold nothing)
    backtest: BacktestPanel | None = None
    #: team -> its own back-test, for the teams with enough churned accounts
    backtest_by_team: dict[str, BacktestPanel] = field(default_factory=dict)


_NIGHT = """
select
    h.account_id, h.account_name, h.account_team, h.owner_email, h.segment, h.region,
    h.mrr::float8 as mrr, h.renewal_date, h.days_to_renewal,
    h.engagement_score::float8 as engagement_score,
    h.support_score::float8 as support_score,
    h.sentiment_score::float8 as sentiment_score,
    h.billing_score::float8 as billing_score,
    h.health_score::float8 as health_score, h.health_band,
    h.score_change_7d::float8 as score_change_7d, h.top_risk_driver,
    {top_component} as top_risk_component,
    {scored} as scored_components, h.missing_components,
    i.days_since_last_touch, i.last_touch_type, i.inactivity_tier, i.is_churned,
    i.win_back_candidate, i.recommended_action, i.days_since_last_payment,
    p.engagement_score::float8 as prev_engagement_score,
    p.support_score::float8 as prev_support_score,
    p.sentiment_score::float8 as prev_sentiment_score,
    p.billing_score::float8 as prev_billing_score,
    v.lifetime_revenue::float8 as lifetime_revenue
from {s}.customer_health as h
left join {s}.customer_inactivity as i
    on i.as_of_date = h.as_of_date and i.account_id = h.account_id
left join {s}.customer_health as p
    on p.as_of_date = h.as_of_date - 7 and p.account_id = h.account_id
left join {s}.customer_lifetime_value as v
    on v.as_of_date = h.as_of_date and v.account_id = h.account_id
where h.as_of_date = %(d)s
"""

#: Marts built before scored_components existed: count the components with data instead.
_SCORED_FALLBACK = " + ".join(f"(h.{c}_score is not null)::int" for c in COMPONENTS)

_TREND_FROM_SUMMARY = """
select account_team, as_of_date, avg_health_score::float8 as avg_health
from {s}.account_team_summary
where as_of_date between %(start)s and %(d)s and avg_health_score is not null
order by account_team, as_of_date
"""

_TREND_FROM_HEALTH = """
select account_team, as_of_date, round(avg(health_score), 1)::float8 as avg_health
from {s}.customer_health
where as_of_date between %(start)s and %(d)s and health_score is not null
group by account_team, as_of_date
order by account_team, as_of_date
"""

# NRR of the month: what last month's paying accounts pay now, over what they paid then.
_NRR = """
select account_team,
       (sum(mrr) filter (where previous_mrr > 0))::float8 as kept,
       sum(previous_mrr)::float8 as starting
from {s}.revenue_movements
where month = date_trunc('month', %(d)s::date)::date
group by account_team
"""

# 12-month NRR: the accounts paying 12 months earlier (with the team they had then).
_NRR_12M = """
select t.account_team,
       coalesce(sum(n.mrr), 0)::float8 as kept,
       sum(t.mrr)::float8 as starting
from {s}.revenue_movements as t
left join {s}.revenue_movements as n
    on n.account_id = t.account_id and n.month = date_trunc('month', %(d)s::date)::date
where t.month = (date_trunc('month', %(d)s::date) - interval '12 months')::date and t.mrr > 0
group by t.account_team
"""


def _existing(conn: psycopg.Connection, schema: str) -> dict[str, set[str]]:
    """table -> its columns, for the tables of `schema`."""
    rows = conn.execute(
        "select table_name, column_name from information_schema.columns where table_schema = %s",
        (schema,),
    ).fetchall()
    tables: dict[str, set[str]] = defaultdict(set)
    for table, column in rows:
        tables[table].add(column)
    return tables


def _ratio(kept: float | None, starting: float | None) -> float | None:
    if not starting:
        return None
    return (kept or 0.0) / starting


def load_night(url: str, as_of_date: date, schema: str = "marts") -> NightData:
    """Read everything the night's reports show; raise MartsMissingError when it is not there."""
    s = sql.Identifier(schema)
    params = {"d": as_of_date, "start": as_of_date - timedelta(days=TREND_NIGHTS - 1)}
    with psycopg.connect(url) as conn:
        conn.read_only = True
        tables = _existing(conn, schema)
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise MartsMissingError(
                f"schema {schema!r} lacks {', '.join(missing)}: build the marts first"
            )
        scored = (sql.SQL("h.scored_components")
                  if "scored_components" in tables["customer_health"]
                  else sql.SQL(_SCORED_FALLBACK))  # a constant expression, no input in it
        # marts built before top_risk_component existed: no component named (NULL)
        top_component = sql.SQL("h.top_risk_component"
                                if "top_risk_component" in tables["customer_health"]
                                else "null::text")
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.SQL(_NIGHT).format(s=s, scored=scored, top_component=top_component),
                        params)
            rows = cur.fetchall()
        if not rows:
            raise MartsMissingError(
                f"{schema}.customer_health has no row for as_of_date {as_of_date}: "
                "nothing to report"
            )
        by_team: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_team[row["account_team"]].append(row)
        night = NightData(as_of_date, dict(by_team))

        summary = tables.get("account_team_summary", set())
        use_summary = {"account_team", "as_of_date", "avg_health_score"} <= summary
        trend_sql = _TREND_FROM_SUMMARY if use_summary else _TREND_FROM_HEALTH
        for team, day, avg in conn.execute(sql.SQL(trend_sql).format(s=s), params):
            night.trend.setdefault(team, []).append((day, avg))
        if {"account_team", "as_of_date", "nps_90d"} <= summary:
            night.nps_90d = dict(
                conn.execute(
                    sql.SQL(
                        "select account_team, nps_90d::float8 from {s}.account_team_summary "
                        "where as_of_date = %(d)s"
                    ).format(s=s),
                    params,
                ).fetchall()
            )
        for target, query in ((night.nrr, _NRR), (night.nrr_12m, _NRR_12M)):
            for team, kept, starting in conn.execute(sql.SQL(query).format(s=s), params):
                target[team] = _ratio(kept, starting)
        night.backtest, night.backtest_by_team = load_backtest(conn, schema, list(by_team))
        if {"as_of_date", "account_id", "p_alive"} <= tables.get(
                "customer_purchase_propensity", set()):
            _add_purchase_propensity(conn, s, params, rows)
    return night


# P(alive) of the invoice-only accounts (BG/NBD), scored tonight
_PROPENSITY = """
select account_id, last_purchase_on, days_since_last_purchase, p_alive::float8 as p_alive,
       expected_purchases_90d::float8 as expected_purchases_90d
from {s}.customer_purchase_propensity
where as_of_date = %(d)s and p_alive is not null
"""


def _add_purchase_propensity(conn: psycopg.Connection, s: sql.Identifier,
                             params: dict, rows: list[Row]) -> None:
    """Give each account row its P(alive) figures (None for accounts with a subscription)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(_PROPENSITY).format(s=s), params)
        by_account = {r["account_id"]: r for r in cur.fetchall()}
    for row in rows:
        found = by_account.get(row["account_id"], {})
        for key in ("last_purchase_on", "days_since_last_purchase", "p_alive",
                    "expected_purchases_90d"):
            row[key] = found.get(key)
