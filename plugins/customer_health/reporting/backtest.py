"""The report's "Does the score predict churn?" panel, read from the back-test marts.

The index shows one evaluation date of marts.health_score_backtest_accounts (all accounts):
the latest on which CHW_BACKTEST_TEAM_MIN_CHURNED accounts churned, else the one with the
most churned, and the AUC over every evaluation date (each weighted by its churned). It shows how
many were scored and churned within the horizon, the churn rate by band and by score decile
(calibration), and the AUC with its interval from marts.health_score_backtest. A team page
shows the same for the team's own accounts, only when at least CHW_BACKTEST_TEAM_MIN_CHURNED
of them churned: with fewer, a rate says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg
from psycopg import sql

from customer_health import settings

BANDS = ("healthy", "at_risk", "critical")
BAND_WORDS = {"healthy": "healthy", "at_risk": "at risk", "critical": "critical"}
DECILES = 10


@dataclass
class Rate:
    """`churned` of `accounts` churned."""

    accounts: int
    churned: int

    @property
    def rate(self) -> float | None:
        return self.churned / self.accounts if self.accounts else None


@dataclass
class BacktestPanel:
    evaluation_date: date
    horizon_days: int
    scored: int
    churned: int
    by_band: dict[str, Rate]
    #: (lowest score, highest score, accounts and churned) per score decile, lowest first
    deciles: list[tuple[float, float, Rate]] = field(default_factory=list)
    auc: float | None = None
    auc_ci: tuple[float, float] | None = None
    #: evaluation dates back-tested (all accounts), the AUC over all of them (each date's
    #: weighted by its churned accounts) and how many churned in all
    dates_tested: int = 0
    pooled_auc: float | None = None
    churned_all_dates: int = 0

    @property
    def churned_by(self) -> date:
        return self.evaluation_date + timedelta(days=self.horizon_days)

    def reading(self) -> str:
        """The panel in plain words, e.g. "Of the accounts marked critical on 1 August 2026,
        31% (9 of 29) had churned by 30 October 2026; of those at risk, 8%; of the healthy,
        2%." Bands nobody was in are said so."""
        parts, empty = [], []
        for band in ("critical", "at_risk", "healthy"):
            r = self.by_band[band]
            if not r.accounts:
                empty.append(BAND_WORDS[band])
            elif not parts:
                parts.append(f"Of the accounts marked {BAND_WORDS[band]} on "
                             f"{_day(self.evaluation_date)}, {100 * r.rate:.0f}% ({r.churned} "
                             f"of {r.accounts}) had churned by {_day(self.churned_by)}")
            else:
                who = "those at risk" if band == "at_risk" else f"the {BAND_WORDS[band]}"
                parts.append(f"of {who}, {100 * r.rate:.0f}%")
        text = "; ".join(parts) + "." if parts else ""
        if empty:
            text += f" No account was marked {' or '.join(empty)}."
        return text.strip()


def _day(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


_ACCOUNTS = """
select health_band, health_score::float8, churned_within_horizon
from {s}.health_score_backtest_accounts
where evaluation_date = %(e)s and horizon_days = %(h)s and health_score is not null {team}
"""


def mann_whitney_auc(stayed: list[float], churned: list[float]) -> float | None:
    """P(a random stayer scores higher than a random churner), ties half: the AUC of
    marts.health_score_backtest, for a team's own accounts."""
    if not stayed or not churned:
        return None
    ordered = sorted([(v, 0) for v in stayed] + [(v, 1) for v in churned])
    rank_sum, i = 0.0, 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        mid = (i + 1 + j) / 2  # the tied values' mean rank
        rank_sum += mid * sum(1 for k in range(i, j) if ordered[k][1] == 0)
        i = j
    n_s, n_c = len(stayed), len(churned)
    return (rank_sum - n_s * (n_s + 1) / 2) / (n_s * n_c)


def _panel(rows: list[tuple[str, float, bool]], evaluation_date: date,
           horizon: int) -> BacktestPanel:
    by_band = {b: Rate(0, 0) for b in BANDS}
    for band, _, churned in rows:
        if band in by_band:
            by_band[band].accounts += 1
            by_band[band].churned += int(churned)
    ordered = sorted(rows, key=lambda r: r[1])
    deciles = []
    for d in range(DECILES):
        part = ordered[d * len(ordered) // DECILES:(d + 1) * len(ordered) // DECILES]
        if part:
            deciles.append((part[0][1], part[-1][1],
                            Rate(len(part), sum(int(r[2]) for r in part))))
    return BacktestPanel(evaluation_date, horizon, len(rows), sum(int(r[2]) for r in rows),
                         by_band, deciles)


def load_backtest(conn: psycopg.Connection, schema: str, teams: list[str]
                  ) -> tuple[BacktestPanel | None, dict[str, BacktestPanel]]:
    """The index's panel (None without back-test data) and, per team with at least
    CHW_BACKTEST_TEAM_MIN_CHURNED churned accounts, the team's own."""
    s = sql.Identifier(schema)
    exists = conn.execute(
        "select count(*) = 2 from information_schema.tables where table_schema = %s"
        " and table_name in ('health_score_backtest', 'health_score_backtest_accounts')",
        (schema,)).fetchone()[0]
    if not exists:
        return None, {}
    minimum = settings.backtest_team_min_churned()
    latest = conn.execute(sql.SQL(
        "select evaluation_date, horizon_days, auc::float8, auc_ci_low::float8,"
        " auc_ci_high::float8, count(*) over h,"
        " (sum(auc * accounts_churned) over h / nullif(sum(accounts_churned)"
        "  filter (where auc is not null) over h, 0))::float8,"
        " sum(accounts_churned) over h"
        " from {s}.health_score_backtest where segment = 'all'"
        " window h as (partition by horizon_days)"
        # the latest date on which enough accounts churned to say something (the teams'
        # threshold), else the one with the most churned, the latest of those
        " order by least(accounts_churned, %(min)s) desc, evaluation_date desc, horizon_days"
        " limit 1"
    ).format(s=s), {"min": minimum}).fetchone()
    if latest is None:
        return None, {}
    evaluation_date, horizon, auc, low, high, dates, pooled, churned_all = latest
    rows = conn.execute(sql.SQL(_ACCOUNTS).format(s=s, team=sql.SQL("")),
                        {"e": evaluation_date, "h": horizon}).fetchall()
    panel = _panel(rows, evaluation_date, horizon)
    panel.auc = auc
    panel.auc_ci = (low, high) if low is not None else None
    panel.dates_tested = dates
    panel.pooled_auc, panel.churned_all_dates = pooled, int(churned_all or 0)
    by_team = {}
    for team in teams:
        rows = conn.execute(
            sql.SQL(_ACCOUNTS).format(s=s, team=sql.SQL("and account_team = %(t)s")),
            {"e": evaluation_date, "h": horizon, "t": team}).fetchall()
        if sum(int(r[2]) for r in rows) < minimum:
            continue
        team_panel = _panel(rows, evaluation_date, horizon)
        team_panel.auc = mann_whitney_auc([r[1] for r in rows if not r[2]],
                                          [r[1] for r in rows if r[2]])
        by_team[team] = team_panel
    return panel, by_team


__all__ = ["BacktestPanel", "Rate", "load_backtest", "mann_whitney_auc"]
