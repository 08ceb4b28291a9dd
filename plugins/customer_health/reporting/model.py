"""What each page shows, computed from one team's rows (never from another team's).

`team_view` gets the rows of one team only, so a team page cannot show an account of
another team whatever the template does; the index gets each team's headline figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from customer_health import settings
from customer_health.reporting.data import COMPONENTS, Row
from customer_health.reporting.glossary import (
    COMPONENT_COUNT,
    CONNECT_AFTER_DAYS,
    DETRACTOR_BELOW,
    LIST_LIMIT,
    MOVERS_SHOWN,
    RENEWAL_WINDOW_DAYS,
    THIN_EVIDENCE_BELOW,
)

AT_RISK_BANDS = ("at_risk", "critical")


@dataclass
class Headline:
    accounts: int
    mrr: float
    arr: float
    arr_at_risk: float
    avg_health: float | None
    avg_change_7d: float | None
    nrr: float | None
    nrr_12m: float | None
    nps_90d: float | None
    renewals_90d: int
    renewals_90d_at_risk: int
    renewals_90d_at_risk_arr: float
    connect_count: int
    bands: dict[str | None, int]
    #: accounts without a score yet (no component has data; bands[None] counts the same)
    not_scored: int = 0
    #: accounts scored on fewer than THIN_EVIDENCE_BELOW components
    thin_evidence: int = 0


@dataclass
class Listing:
    """A list of accounts shown on the page, cut at a limit (`more` were left out)."""

    rows: list[Row]
    more: int = 0


@dataclass
class TeamView:
    team: str
    headline: Headline
    trend: list[tuple[date, float]]
    movers: Listing
    renewals: Listing
    connect: Listing
    detractors: Listing
    win_back: Listing
    portfolio: list[Row] = field(default_factory=list)
    #: invoice-only accounts whose P(alive) is below CHW_LAPSED_P_ALIVE, least alive first
    lapsed: Listing = field(default_factory=lambda: Listing([]))
    lapsed_below: float = 0.3
    #: the team's own back-test (reporting.backtest), when enough of its accounts churned
    backtest: Any = None


def evidence_note(score: float | None, scored: int | None) -> str | None:
    """The mark of a score that rests on fewer than THIN_EVIDENCE_BELOW components
    (e.g. billing alone), or None; an account without a score is "not scored yet" instead."""
    if score is None or scored is None or scored >= THIN_EVIDENCE_BELOW:
        return None
    return f"thin evidence: scored on {scored} of {COMPONENT_COUNT} components"


def is_thin_evidence(row: Row) -> bool:
    return evidence_note(row.get("health_score"), row.get("scored_components")) is not None


def mover_driver(row: Row) -> tuple[str | None, float | None, str | None]:
    """(component, its 7-day change, detail) of the component that fell most."""
    worst: tuple[str | None, float | None] = (None, None)
    for component in COMPONENTS:
        now, before = row.get(f"{component}_score"), row.get(f"prev_{component}_score")
        if now is None or before is None:
            continue
        delta = now - before
        if delta < 0 and (worst[1] is None or delta < worst[1]):
            worst = (component, delta)
    component, delta = worst
    # top_risk_driver's sentence is shown only when it speaks of that component
    # (customer_health.top_risk_component names it)
    detail = row.get("top_risk_driver")
    if component is not None and row.get("top_risk_component") != component:
        detail = None
    return component, delta, detail


def _cut(rows: list[Row], limit: int = LIST_LIMIT) -> Listing:
    return Listing(rows[:limit], max(0, len(rows) - limit))


def _avg(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _change_7d(trend: list[tuple[date, float]], as_of_date: date,
               avg_now: float | None) -> float | None:
    by_day = dict(trend)
    before = by_day.get(as_of_date - timedelta(days=7))
    now = by_day.get(as_of_date, None if avg_now is None else round(avg_now, 1))
    return None if before is None or now is None else now - before


def _sort_key_score(row: Row) -> tuple[Any, ...]:
    score = row["health_score"]
    return (score is None, score if score is not None else 0.0, -(row["mrr"] or 0),
            row["account_name"] or "")


def team_view(team: str, rows: list[Row], as_of_date: date, trend: list[tuple[date, float]],
              nrr: float | None, nrr_12m: float | None, nps_90d: float | None,
              lapsed_below: float | None = None) -> TeamView:
    """Everything a team page shows, from that team's rows only. `lapsed_below`: the
    P(alive) under which an invoice-only account is "probably lapsed" (default:
    CHW_LAPSED_P_ALIVE)."""
    if lapsed_below is None:
        lapsed_below = settings.lapsed_p_alive()
    if any(r["account_team"] != team for r in rows):
        raise ValueError(f"rows of another team passed to the page of team {team!r}")
    mrr = sum(r["mrr"] or 0 for r in rows)
    bands: dict[str | None, int] = {"healthy": 0, "at_risk": 0, "critical": 0, None: 0}
    for r in rows:
        bands[r["health_band"] if r["health_band"] in bands else None] += 1
    avg_now = _avg([r["health_score"] for r in rows if r["health_score"] is not None])

    in_window = [r for r in rows if r["days_to_renewal"] is not None
                 and 0 <= r["days_to_renewal"] <= RENEWAL_WINDOW_DAYS]
    renewals = sorted((r for r in in_window if r["health_band"] in AT_RISK_BANDS),
                      key=lambda r: (r["days_to_renewal"], -(r["mrr"] or 0)))

    movers = sorted((r for r in rows if (r["score_change_7d"] or 0) < 0),
                    key=lambda r: (r["score_change_7d"], r["account_name"] or ""))
    mover_rows = []
    for r in movers[:MOVERS_SHOWN]:
        component, delta, detail = mover_driver(r)
        mover_rows.append({**r, "driver_component": component, "driver_change": delta,
                           "driver_detail": detail})

    connect = sorted(
        (r for r in rows if not r["is_churned"] and (
            r["days_since_last_touch"] is None
            or r["days_since_last_touch"] >= CONNECT_AFTER_DAYS)),
        key=lambda r: (r["days_since_last_touch"] is not None,
                       -(r["days_since_last_touch"] or 0), -(r["mrr"] or 0)),
    )
    detractors = sorted(
        (r for r in rows if r["sentiment_score"] is not None
         and r["sentiment_score"] < DETRACTOR_BELOW),
        key=lambda r: (r["sentiment_score"], -(r["mrr"] or 0)),
    )
    win_back = sorted((r for r in rows if r["win_back_candidate"]),
                      key=lambda r: -(r["lifetime_revenue"] or 0))
    lapsed = sorted((r for r in rows if r.get("p_alive") is not None
                     and r["p_alive"] < lapsed_below),
                    key=lambda r: (r["p_alive"], -(r.get("days_since_last_purchase") or 0)))

    headline = Headline(
        accounts=len(rows),
        mrr=mrr,
        arr=12 * mrr,
        arr_at_risk=12 * sum(r["mrr"] or 0 for r in rows if r["health_band"] in AT_RISK_BANDS),
        avg_health=avg_now,
        avg_change_7d=_change_7d(trend, as_of_date, avg_now),
        nrr=nrr,
        nrr_12m=nrr_12m,
        nps_90d=nps_90d,
        renewals_90d=len(in_window),
        renewals_90d_at_risk=len(renewals),
        renewals_90d_at_risk_arr=12 * sum(r["mrr"] or 0 for r in renewals),
        connect_count=len(connect),
        bands=bands,
        not_scored=sum(1 for r in rows if r["health_score"] is None),
        thin_evidence=sum(1 for r in rows if is_thin_evidence(r)),
    )
    return TeamView(
        team=team,
        headline=headline,
        trend=trend,
        movers=Listing(mover_rows, max(0, len(movers) - MOVERS_SHOWN)),
        renewals=_cut(renewals),
        connect=_cut(connect),
        detractors=_cut(detractors),
        win_back=_cut(win_back),
        portfolio=sorted(rows, key=_sort_key_score),
        lapsed=_cut(lapsed),
        lapsed_below=lapsed_below,
    )
