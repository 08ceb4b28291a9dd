"""HTML pages (Jinja2, autoescaped) and the CSV of a team's portfolio."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from customer_health import settings
from customer_health.reporting import charts, csp, formatting
from customer_health.reporting.glossary import COMPONENT_COUNT, Glossary
from customer_health.reporting.model import TeamView, evidence_note
from customer_health.reporting.quality_page import QualityRun

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: The CSV's columns: the portfolio table, in raw values for spreadsheets.
CSV_COLUMNS = (
    "account_id", "account_name", "owner_email", "segment", "region", "health_score",
    "health_band", "score_change_7d", "engagement_score", "support_score", "sentiment_score",
    "billing_score", "top_risk_driver", "mrr", "renewal_date", "days_to_renewal",
    "days_since_last_touch", "inactivity_tier", "recommended_action", "scored_components",
    "missing_components",
)
_TEXT_COLUMNS = {"account_id", "account_name", "owner_email", "segment", "region",
                 "top_risk_driver", "recommended_action", "health_band", "inactivity_tier",
                 "missing_components"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for name in ("money", "score", "change", "percent", "days", "long_date", "short_date",
                 "band_label", "band_class"):
        env.filters[name] = getattr(formatting, name)
    env.globals["content_security_policy"] = csp.REPORT_POLICY
    env.globals["evidence_note"] = evidence_note
    env.globals["component_count"] = COMPONENT_COUNT
    return env


ENV = _environment()


def render_team_page(view: TeamView, *, as_of_date: date, currency: str, stem: str,
                     generated_at: datetime, index_href: str = "../index.html",
                     glossary_href: str = "../glossary.html") -> str:
    """One team's page; charts are inline SVG, so the file stands alone."""
    prefix = f"c-{stem}"
    return ENV.get_template("team.html").render(
        v=view,
        h=view.headline,
        as_of_date=as_of_date,
        currency=currency,
        generated_at=generated_at,
        csv_href=f"{stem}.csv",
        index_href=index_href,
        glossary_href=glossary_href,
        bands_svg=Markup(charts.bands_chart(view.headline.bands, f"{prefix}-bands")),  # noqa: S704
        trend_svg=Markup(charts.trend_chart(view.trend, f"{prefix}-trend")),  # noqa: S704
        backtest=view.backtest,
        backtest_svgs=_backtest_svgs(view.backtest, prefix),
        backtest_min_churned=settings.backtest_team_min_churned(),
    )


def _backtest_svgs(panel: Any, prefix: str) -> dict[str, Markup] | None:
    """The back-test panel's two charts as inline SVG (charts.py escapes their labels)."""
    if panel is None:
        return None
    return {"bands": Markup(charts.churn_by_band_chart(panel, f"{prefix}-churn")),  # noqa: S704
            "calibration": Markup(charts.calibration_chart(panel, f"{prefix}-calib"))}  # noqa: S704


def render_index(*, as_of_date: date, currency: str, teams: list[dict[str, Any]],
                 quality: dict[str, Any] | None, quality_href: str | None,
                 earlier_nights: list[str], generated_at: datetime,
                 marts_docs_href: str | None = None, backtest: Any = None) -> str:
    return ENV.get_template("index.html").render(
        backtest=backtest,
        backtest_svgs=_backtest_svgs(backtest, "c-index"),
        as_of_date=as_of_date,
        currency=currency,
        teams=teams,
        totals=_totals(teams),
        quality=quality,
        quality_href=quality_href,
        marts_docs_href=marts_docs_href,
        earlier_nights=earlier_nights,
        generated_at=generated_at,
    )


def render_glossary(glossary: Glossary, as_of_date: date) -> str:
    return ENV.get_template("glossary.html").render(g=glossary, as_of_date=as_of_date)


def render_quality(run: QualityRun) -> str:
    """The night's data-quality page: every check of its run, observed values as text."""
    return ENV.get_template("quality.html").render(run=run, as_of_date=run.as_of_date)


def _totals(teams: list[dict[str, Any]]) -> dict[str, Any]:
    accounts = sum(t["h"].accounts for t in teams)
    scored = [(t["h"].avg_health, sum(n for b, n in t["h"].bands.items() if b)) for t in teams
              if t["h"].avg_health is not None]
    weight = sum(n for _, n in scored)
    return {
        "accounts": accounts,
        "arr": sum(t["h"].arr for t in teams),
        "arr_at_risk": sum(t["h"].arr_at_risk for t in teams),
        "avg_health": sum(a * n for a, n in scored) / weight if weight else None,
        "renewals_90d_at_risk": sum(t["h"].renewals_90d_at_risk for t in teams),
        "connect_count": sum(t["h"].connect_count for t in teams),
    }


def _csv_cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column in _TEXT_COLUMNS:
        text = str(value)
        # a cell starting like a formula would run in a spreadsheet: make it plain text
        return "'" + text if text.startswith(_FORMULA_START) else text
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return value


def write_team_csv(view: TeamView, path: Path) -> None:
    """The team's portfolio table, one row per account, same order as the page."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in view.portfolio:
            writer.writerow([_csv_cell(c, row.get(c)) for c in CSV_COLUMNS])
