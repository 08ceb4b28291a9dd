"""Hand-made mart tables for the report tests (and the report benchmark's DDL).

The tables carry the columns of shared/spec/marts.md (plus account_team_summary as
dbt_project builds it). The scenario, as of 20 November 2026, 90 nights of history:

* team `north` (owners ann@, bob@north.example): N1 healthy; N2 named
  `<script>alert(1)</script>`, billing fell 60 points (failed payments), renews in 40
  days; N3 `Bolt & Nut "Ltd"` silent for 75 days, a detractor, renews in 75 days; N4
  churned, a win-back candidate; N5 never touched, scored on billing alone (thin evidence);
  N6 new: in the CRM, no data of any component yet (not scored yet).
* team `south` (carol@south.example): S1 healthy; S2 engagement fell 30 points, silent
  for 45 days, renews in 20 days; S3 a detractor; S4 churned, a win-back candidate.
* team `../../etc/<b>x</b> & Co` (a hostile name): H1 named like a spreadsheet formula.

The back-test (BACKTEST): on 1 August 2026 (horizon 90 days) north had 14 accounts, 10 of
which churned (critical 5 of 5, at risk 3 of 4, healthy 2 of 5): enough for its own panel
(CHW_BACKTEST_TEAM_MIN_CHURNED, 10); south 1 of 3, the hostile team 0 of 1. All teams:
critical 6 of 6, at risk 3 of 5, healthy 2 of 7; AUC 0.81 (0.62 to 0.95); 1 July is older
(4 churned, AUC 0.5): over both dates the AUC averages (11 x 0.81 + 4 x 0.5) / 15 = 0.73.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg
from psycopg import sql

from customer_health.modelling import dbt_facts

AS_OF = date(2026, 11, 20)
NIGHTS = 90
HOSTILE_TEAM = "../../etc/<b>x</b> & Co"
WEIGHTS = {"engagement": 0.30, "support": 0.20, "sentiment": 0.20, "billing": 0.30}
COMPONENTS = tuple(WEIGHTS)

MARTS_DDL = """
create schema if not exists {schema};
create table {schema}.customer_health (
    as_of_date date not null, account_id text not null, account_name text,
    account_team text not null, owner_email text, segment text, region text,
    mrr numeric(14, 2) not null, renewal_date date, days_to_renewal integer,
    engagement_score numeric(5, 1), support_score numeric(5, 1),
    sentiment_score numeric(5, 1), billing_score numeric(5, 1),
    health_score numeric(5, 1), health_band text,
    score_change_7d numeric(5, 1), score_change_30d numeric(5, 1),
    top_risk_driver text, top_risk_component text, missing_components text, weights_version text,
    scored_components integer
);
create table {schema}.customer_inactivity (
    as_of_date date not null, account_id text not null, account_name text,
    account_team text, owner_email text, last_touch_at timestamptz, last_touch_type text,
    days_since_last_touch integer, days_since_last_outbound integer,
    days_since_last_inbound integer, days_since_last_payment integer,
    inactivity_tier text not null, is_churned boolean not null,
    win_back_candidate boolean not null, recommended_action text not null
);
create table {schema}.revenue_movements (
    month date not null, account_id text not null, account_team text not null, segment text,
    mrr numeric(14, 2) not null, previous_mrr numeric(14, 2) not null,
    mrr_change numeric(14, 2), movement text not null, as_of_date date
);
create table {schema}.revenue_retention (
    month date not null, segment text not null, starting_mrr numeric, new_mrr numeric,
    expansion_mrr numeric, reactivation_mrr numeric, contraction_mrr numeric,
    churned_mrr numeric, ending_mrr numeric, grr numeric, nrr numeric, nrr_12m numeric,
    logos_start integer, logos_new integer, logos_churned integer, logo_retention numeric,
    as_of_date date
);
create table {schema}.customer_lifetime_value (
    as_of_date date not null, account_id text not null, account_team text, segment text,
    first_paid_at timestamptz, tenure_months integer, lifetime_revenue numeric(14, 2),
    avg_monthly_revenue numeric(14, 2), current_mrr numeric(14, 2),
    predicted_clv numeric(14, 2), expected_lifetime_months numeric
);
create table {schema}.nps_monthly (
    month date not null, account_team text not null, responses integer, promoters integer,
    passives integer, detractors integer, nps numeric(5, 1), as_of_date date
);
create table {schema}.account_team_summary (
    as_of_date date not null, account_team text not null, accounts integer,
    mrr numeric(14, 2), arr numeric(14, 2), accounts_healthy integer,
    accounts_at_risk integer, accounts_critical integer, arr_at_risk numeric(14, 2),
    renewals_next_90d integer, renewals_next_90d_at_risk integer, inactive_accounts integer,
    nps_responses_90d integer, nps_90d numeric(5, 1), avg_health_score numeric(5, 1),
    avg_health_change_7d numeric(5, 1)
);
create table {schema}.health_score_backtest_accounts (
    evaluation_date date not null, horizon_days integer not null, account_id text not null,
    segment text, account_team text, health_score numeric, health_band text,
    engagement_score numeric, support_score numeric, sentiment_score numeric,
    billing_score bigint, mrr numeric, churned_within_horizon boolean not null,
    weights_version text);
create table {schema}.health_score_backtest (
    evaluation_date date not null, segment text not null, horizon_days integer not null,
    accounts_scored bigint, accounts_churned bigint, auc numeric, auc_ci_low numeric,
    auc_ci_high numeric);
"""

Scores = tuple[float | None, float | None, float | None, float | None]


@dataclass(frozen=True)
class Acct:
    account_id: str
    name: str
    team: str
    owner: str
    segment: str
    mrr: float
    now: Scores  # engagement, support, sentiment, billing (the last 3 nights)
    before: Scores  # from 4 nights back
    renewal_in: int | None = None
    days_since_touch: int | None = 5
    driver: str | None = None
    #: the component `driver` speaks of (customer_health.top_risk_component)
    driver_component: str | None = None
    churned: bool = False
    win_back: bool = False
    lifetime_revenue: float = 10_000.0
    action: str = "No action needed"


ACCOUNTS: tuple[Acct, ...] = (
    Acct("acc-n-001", "Acme Anvils", "north", "ann@north.example", "enterprise", 5000,
         (90, 80, 85, 95), (90, 80, 85, 95), renewal_in=200, days_since_touch=3),
    Acct("acc-n-002", "<script>alert(1)</script>", "north", "bob@north.example", "mid_market",
         1200, (70, 75, 60, 40), (72, 75, 60, 100), renewal_in=40, days_since_touch=12,
         driver="Failed payments (2 in the last 90 days)", driver_component="billing",
         action="Call about the failed payment"),
    Acct("acc-n-003", 'Bolt & Nut "Ltd"', "north", "ann@north.example", "smb", 300,
         (20, 50, 10, 80), (30, 50, 10, 80), renewal_in=75, days_since_touch=75,
         driver="No contact for 75 days", driver_component="engagement",
         action="Book a renewal conversation"),
    Acct("acc-n-004", "Northwind Traders", "north", "bob@north.example", "mid_market", 0,
         (10, None, None, 40), (10, None, None, 40), days_since_touch=120, churned=True,
         win_back=True, lifetime_revenue=48_000, driver="No contact for 120 days",
         driver_component="engagement",
         action="Plan a win-back offer"),
    Acct("acc-n-005", "Quiet Quarry", "north", "ann@north.example", "smb", 800,
         (None, None, None, 90), (None, None, None, 90), days_since_touch=None,
         action="Re-introduce yourself and book a call"),
    Acct("acc-n-006", "Newcomer Nets", "north", "bob@north.example", "smb", 0,
         (None, None, None, None), (None, None, None, None), days_since_touch=None,
         action="Re-introduce yourself and book a call"),
    Acct("acc-s-001", "Globex Global", "south", "carol@south.example", "enterprise", 8000,
         (85, 90, 80, 100), (85, 90, 80, 100), renewal_in=300, days_since_touch=2),
    Acct("acc-s-002", "Initech Industries", "south", "carol@south.example", "mid_market", 2000,
         (35, 60, 50, 70), (65, 60, 50, 70), renewal_in=20, days_since_touch=45,
         driver="No contact for 45 days", driver_component="engagement",
         action="Book a renewal conversation"),
    Acct("acc-s-003", "Umbrella Unlimited", "south", "carol@south.example", "smb", 400,
         (80, 70, 20, 90), (80, 70, 20, 90), renewal_in=150, days_since_touch=8,
         driver="Unhappy survey answers (NPS -60)", driver_component="sentiment"),
    Acct("acc-s-004", "Hooli Holdings", "south", "carol@south.example", "enterprise", 0,
         (5, None, None, 30), (5, None, None, 30), days_since_touch=200, churned=True,
         win_back=True, lifetime_revenue=90_000, action="Plan a win-back offer"),
    Acct("acc-h-001", '=HYPERLINK("http://evil.example")', HOSTILE_TEAM, "dave@odd.example",
         "smb", 100, (75, 75, 75, 75), (75, 75, 75, 75), renewal_in=120, days_since_touch=1),
)

#: (month, account_id, team, mrr, previous_mrr) of revenue_movements
BACKTEST_DATE = date(2026, 8, 1)
#: (team, health_score, band, churned) on BACKTEST_DATE
BACKTEST = (
    *(("north", score, "critical", True) for score in (10, 15, 20, 25, 30)),
    *(("north", score, "at_risk", True) for score in (45, 50, 55)),
    ("north", 60, "at_risk", False),
    *(("north", score, "healthy", True) for score in (80, 85)),
    *(("north", score, "healthy", False) for score in (75, 90, 95)),
    ("south", 35, "critical", True),
    ("south", 72, "healthy", False),
    ("south", 88, "healthy", False),
    (HOSTILE_TEAM, 50, "at_risk", False),
)
#: (evaluation_date, accounts churned, auc, low, high) of segment `all`
BACKTEST_SUMMARY = ((BACKTEST_DATE, 11, 0.81, 0.62, 0.95), (date(2026, 7, 1), 4, 0.5, 0.3, 0.7))

MOVEMENTS = (
    (date(2026, 11, 1), "acc-n-001", "north", 5000, 5000),
    (date(2026, 11, 1), "acc-n-002", "north", 1200, 1000),
    (date(2026, 11, 1), "acc-n-003", "north", 300, 300),
    (date(2026, 11, 1), "acc-n-005", "north", 800, 800),
    (date(2026, 11, 1), "acc-s-001", "south", 8000, 8000),
    (date(2026, 11, 1), "acc-s-002", "south", 2000, 2500),
    (date(2026, 11, 1), "acc-s-003", "south", 400, 400),
    (date(2026, 11, 1), "acc-h-001", HOSTILE_TEAM, 100, 0),
    (date(2025, 11, 1), "acc-n-001", "north", 4000, 4000),
    (date(2025, 11, 1), "acc-s-001", "south", 6000, 6000),
    (date(2025, 11, 1), "acc-s-004", "south", 3000, 3000),
)


def teams() -> list[str]:
    return sorted({a.team for a in ACCOUNTS})


def accounts_of(team: str) -> list[Acct]:
    return [a for a in ACCOUNTS if a.team == team]


def scores(acct: Acct, nights_back: int) -> Scores:
    """The components `nights_back` nights before AS_OF: `now` for the last 3 nights,
    `before` earlier, drifting a little further back (so the trend has a shape)."""
    if nights_back <= 2:
        return acct.now
    drift = ((nights_back // 10) % 4) * 1.5 - 2
    return tuple(None if s is None else max(0.0, min(100.0, s + drift))  # type: ignore[return-value]
                 for s in acct.before)


def health(components: Scores) -> float | None:
    present = [(WEIGHTS[c], s) for c, s in zip(COMPONENTS, components, strict=True)
               if s is not None]
    if not present:
        return None
    return round(sum(w * s for w, s in present) / sum(w for w, _ in present), 1)


def band(score: float | None) -> str | None:
    return dbt_facts.health_band(score)


def _components_present(components: Scores) -> tuple[int, str | None]:
    """(scored_components, missing_components) as customer_health has them."""
    missing = [c for c, s in zip(COMPONENTS, components, strict=True) if s is None]
    return len(COMPONENTS) - len(missing), ", ".join(missing) or None


def _tier(days: int | None) -> str:
    if days is None:
        return "never_touched"
    return ("active" if days <= 30 else "cooling" if days <= 60
            else "dormant" if days <= 90 else "lapsed")


def create_marts(conn: psycopg.Connection, schema: str = "marts") -> None:
    conn.execute(sql.SQL(MARTS_DDL).format(schema=sql.Identifier(schema)))


def fill_marts(url: str, as_of: date = AS_OF, nights: int = NIGHTS,
               schema: str = "marts") -> None:
    """Create schema `schema` with the mart tables and fill them with the scenario."""
    health_rows, inactivity_rows, clv_rows, summary_rows = [], [], [], []
    for back in range(nights):
        day = as_of - timedelta(days=back)
        per_team: dict[str, list[tuple[Acct, float | None]]] = {}
        for a in ACCOUNTS:
            comps = scores(a, back)
            score = health(comps)
            earlier = health(scores(a, back + 7)) if back + 7 < nights else None
            change = None if score is None or earlier is None else round(score - earlier, 1)
            renewal = None if a.renewal_in is None else as_of + timedelta(days=a.renewal_in)
            health_rows.append((
                day, a.account_id, a.name, a.team, a.owner, a.segment, "north", a.mrr,
                renewal, None if renewal is None else (renewal - day).days, *comps, score,
                band(score), change, a.driver, a.driver_component, *_components_present(comps),
            ))
            touch = a.days_since_touch
            touch_at = (None if touch is None else
                        datetime.combine(day - timedelta(days=touch), time(10), UTC))
            inactivity_rows.append((
                day, a.account_id, a.name, a.team, a.owner, touch_at,
                None if touch is None else "call", touch, 30 if a.churned else 9,
                _tier(touch), a.churned, a.win_back, a.action,
            ))
            clv_rows.append((day, a.account_id, a.team, a.segment, a.lifetime_revenue, a.mrr))
            per_team.setdefault(a.team, []).append((a, score))
        for team, members in per_team.items():
            scored = [sc for _, sc in members if sc is not None]
            mrr = sum(a.mrr for a, _ in members)
            summary_rows.append((
                day, team, len(members), mrr, 12 * mrr,
                round(sum(scored) / len(scored), 1) if scored else None,
                {"north": 20.0, "south": -10.0}.get(team),
            ))
    with psycopg.connect(url) as conn:
        create_marts(conn, schema)
        _insert(conn, schema, "customer_health", (
            "as_of_date account_id account_name account_team owner_email segment region mrr "
            "renewal_date days_to_renewal engagement_score support_score sentiment_score "
            "billing_score health_score health_band score_change_7d top_risk_driver "
            "top_risk_component "
            "scored_components missing_components"), health_rows)
        _insert(conn, schema, "customer_inactivity", (
            "as_of_date account_id account_name account_team owner_email last_touch_at "
            "last_touch_type days_since_last_touch days_since_last_payment inactivity_tier "
            "is_churned win_back_candidate recommended_action"), inactivity_rows)
        _insert(conn, schema, "customer_lifetime_value",
                "as_of_date account_id account_team segment lifetime_revenue current_mrr",
                clv_rows)
        _insert(conn, schema, "account_team_summary",
                "as_of_date account_team accounts mrr arr avg_health_score nps_90d",
                summary_rows)
        _insert(conn, schema, "revenue_movements",
                "month account_id account_team mrr previous_mrr mrr_change movement",
                [(m, a, t, mrr, prev, mrr - prev, "retained") for m, a, t, mrr, prev in MOVEMENTS])
        _insert(conn, schema, "health_score_backtest_accounts",
                "evaluation_date horizon_days account_id account_team health_score health_band"
                " churned_within_horizon",
                [(BACKTEST_DATE, 90, f"B{i}", team, score, b, churned)
                 for i, (team, score, b, churned) in enumerate(BACKTEST)])
        _insert(conn, schema, "health_score_backtest",
                "evaluation_date segment horizon_days accounts_churned auc auc_ci_low auc_ci_high",
                [(d, "all", 90, n, auc, low, high) for d, n, auc, low, high in BACKTEST_SUMMARY])


def _insert(conn: psycopg.Connection, schema: str, table: str, columns: str,
            rows: list[tuple]) -> None:
    names = columns.split()
    statement = sql.SQL("insert into {}.{} ({}) values ({})").format(
        sql.Identifier(schema), sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    with conn.cursor() as cur:
        cur.executemany(statement, rows)
