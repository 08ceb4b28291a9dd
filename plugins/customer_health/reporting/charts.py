"""Charts drawn with matplotlib: static SVG for the web pages, PNG for e-mail.

Figures are built with `matplotlib.figure.Figure` (no pyplot: no global state, no GUI
backend). The SVG keeps its text as text (smaller, and it takes the page's font), and
its ids get a per-chart prefix so several charts can share one HTML document; its
`data-chart` attribute names the chart, so the e-mail can put the same chart's PNG in
its place (Outlook shows no inline SVG, Gmail only some): `chart_png` draws that PNG
from the same data, at twice the SVG's size in pixels for sharp high-DPI screens.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import matplotlib
from matplotlib.dates import num2date
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from customer_health.modelling import dbt_facts

BAND_COLOURS = {
    "healthy": "#2f9e62",
    "at_risk": "#e3a32b",
    "critical": "#d64545",
    None: "#94a3b8",
}
BAND_FILL = {"healthy": "#dcfce7", "at_risk": "#fef3c7", "critical": "#fee2e2"}
INK = "#1e293b"
MUTED = "#64748b"
GRID = "#e2e8f0"
LINE = "#2563eb"

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "chw-reports",
    "font.size": 10,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
}

_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')
_FONT = re.compile(r"font-family:[^;\"]*")


#: the charts' names (an SVG's data-chart; `chart_png`'s first argument)
BANDS, TREND = "bands", "trend"
CHURN_BY_BAND, CALIBRATION = "churn", "calib"  # short: they go into e-mail Content-IDs
#: pixels per inch of the PNGs: twice the SVG's 100 CSS pixels per inch
PNG_DPI = 200
_CSS_PX_PER_INCH = 100


@dataclass(frozen=True)
class ChartImage:
    """One chart as PNG, with its text alternative and its size in CSS pixels."""

    name: str
    png: bytes
    label: str
    width: int
    height: int


def _svg(fig: Figure, prefix: str, label: str, name: str) -> str:
    """The figure as an inline <svg> element with unique ids and a fluid width."""
    label = html.escape(label)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    text = _FONT.sub("font-family: inherit", text)
    text = re.sub(
        r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
        lambda m: (f'<svg {m.group(1)}class="chart" role="img" data-chart="{name}" '
                   f'aria-label="{label}"'),
        text,
        count=1,
    )
    return text.replace(">", f"><title>{label}</title>", 1)


def _day_month(value: float, _pos: int | None = None) -> str:
    day = num2date(value)
    return f"{day.day} {day:%b}"


def _png(fig: Figure, name: str, label: str) -> ChartImage:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    width, height = fig.get_size_inches()
    return ChartImage(name=name, png=buf.getvalue(), label=label,
                      width=round(width * _CSS_PX_PER_INCH),
                      height=round(height * _CSS_PX_PER_INCH))


def bands_chart(counts: dict[str | None, int], prefix: str) -> str:
    """Horizontal bars: accounts per health band, as inline SVG."""
    with matplotlib.rc_context(_RC):
        fig, label = _bands_figure(counts)
        return _svg(fig, prefix, label, BANDS)


def trend_chart(series: list[tuple[date, float]], prefix: str) -> str:
    """The team's average health over the last nights, as inline SVG."""
    with matplotlib.rc_context(_RC):
        fig, label = _trend_figure(series)
        return _svg(fig, prefix, label, TREND)


def churn_by_band_chart(panel: Any, prefix: str) -> str:
    """The back-test's churn rate per band (a reporting.backtest.BacktestPanel), as SVG."""
    with matplotlib.rc_context(_RC):
        fig, label = _churn_by_band_figure(panel)
        return _svg(fig, prefix, label, CHURN_BY_BAND)


def calibration_chart(panel: Any, prefix: str) -> str:
    """The back-test's churn rate per score decile, as SVG."""
    with matplotlib.rc_context(_RC):
        fig, label = _calibration_figure(panel)
        return _svg(fig, prefix, label, CALIBRATION)


def chart_png(name: str, data: Any) -> ChartImage:
    """The chart `name` as PNG, from the data its SVG was drawn from ("bands": accounts
    per band; "trend": (night, average health) pairs). KeyError for an unknown name."""
    draw = _FIGURES[name]
    with matplotlib.rc_context(_RC):
        fig, label = draw(data)
        return _png(fig, name, label)


def _bands_figure(counts: dict[str | None, int]) -> tuple[Figure, str]:
    """Horizontal bars: accounts per health band (critical on top: it matters most)."""
    order = ["critical", "at_risk", "healthy"] + ([None] if counts.get(None) else [])
    labels = {"healthy": "Healthy", "at_risk": "At risk", "critical": "Critical",
              None: "Not scored yet"}
    values = [counts.get(b, 0) for b in order]
    total = sum(values) or 1
    fig = Figure(figsize=(4.6, 2.6))
    ax = fig.add_subplot()
    y = list(range(len(order)))[::-1]
    ax.barh(y, values, color=[BAND_COLOURS[b] for b in order], height=0.56)
    ax.set_yticks(y, [labels[b] for b in order])
    ax.tick_params(axis="y", length=0, labelsize=11, labelcolor=INK)
    ax.tick_params(axis="x", length=0, labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    top = max(values) or 1
    ax.set_xlim(0, top * 1.32)
    for yi, value in zip(y, values, strict=True):
        count = f"{value:,}"
        ax.annotate(count, (value, yi), xytext=(5, 0), textcoords="offset points",
                    va="center", fontsize=11, color=INK, fontweight="bold")
        ax.annotate(f"{100 * value / total:.0f}%", (value, yi),
                    xytext=(10 + 7 * len(count), 0), textcoords="offset points",
                    va="center", fontsize=10, color=MUTED)
    ax.set_ylim(-0.6, len(order) - 0.4)
    fig.subplots_adjust(left=0.27 if None in order else 0.19, right=0.97, top=0.97,
                        bottom=0.03)
    label = "Accounts by health band: " + ", ".join(
        f"{labels[b]} {counts.get(b, 0)}" for b in order
    )
    return fig, label


def _trend_figure(series: list[tuple[date, float]]) -> tuple[Figure, str]:
    """The team's average health over the last nights, on the bands' coloured ground."""
    fig = Figure(figsize=(6.4, 2.6))
    ax = fig.add_subplot()
    days = [d for d, _ in series]
    values = [v for _, v in series]
    low = max(0.0, min(values) - 8) if values else 0.0
    high = min(100.0, max(values) + 8) if values else 100.0
    if high - low < 20:
        mid = (high + low) / 2
        low, high = max(0.0, mid - 10), min(100.0, mid + 10)
    healthy, at_risk = dbt_facts.band_thresholds()
    for band, (a, b) in (("critical", (0, at_risk)), ("at_risk", (at_risk, healthy)),
                         ("healthy", (healthy, 100))):
        ax.axhspan(a, b, color=BAND_FILL[band], zorder=0, linewidth=0)
    for threshold in (at_risk, healthy):
        if low < threshold < high:
            ax.axhline(threshold, color="#cbd5e1", linewidth=0.8, linestyle=(0, (3, 3)))
    if values:
        ax.plot(days, values, color=LINE, linewidth=2, solid_capstyle="round", zorder=3)
        ax.scatter([days[-1]], [values[-1]], color=LINE, s=28, zorder=4)
        ax.annotate(f"{values[-1]:.1f}", (days[-1], values[-1]), textcoords="offset points",
                    xytext=(-6, 9), ha="right", fontsize=10, color=INK, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none",
                          "alpha": 0.9}, zorder=5)
        if len(days) == 1:
            ax.set_xlim(days[0].toordinal() - 1, days[0].toordinal() + 1)
    else:
        ax.text(0.5, 0.5, "No history yet", transform=ax.transAxes, ha="center",
                color=MUTED)
    ax.set_ylim(low, high)
    ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
    # ticks on whole days only (a date's number is its midnight): a few nights'
    # automatic locator would tick every few hours, and each label repeat the day
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=1))
    ax.xaxis.set_major_formatter(FuncFormatter(_day_month))
    ax.margins(x=0.01)
    ax.tick_params(length=0, labelsize=10)
    ax.grid(axis="y", color="#ffffff", linewidth=0.8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.12)
    if values:
        label = (f"Average health over {len(values)} nights, from {values[0]:.1f} "
                 f"to {values[-1]:.1f}")
    else:
        label = "Average health: no history yet"
    return fig, label


def _churn_by_band_figure(panel: Any) -> tuple[Figure, str]:
    """Vertical bars: the share of each band's accounts that churned, with "n of m"."""
    order = ["healthy", "at_risk", "critical"]
    labels = {"healthy": "Healthy", "at_risk": "At risk", "critical": "Critical"}
    rates = [panel.by_band[b].rate or 0.0 for b in order]
    fig = Figure(figsize=(4.6, 2.6))
    ax = fig.add_subplot()
    x = list(range(len(order)))
    ax.bar(x, [100 * r for r in rates], color=[BAND_COLOURS[b] for b in order], width=0.56)
    ax.set_xticks(x, [labels[b] for b in order])
    top = max([100 * r for r in rates] + [1.0])
    ax.set_ylim(0, top * 1.35)
    for xi, b in zip(x, order, strict=True):
        r = panel.by_band[b]
        ax.annotate(f"{100 * (r.rate or 0):.0f}%  ({r.churned} of {r.accounts})",
                    (xi, 100 * (r.rate or 0)), xytext=(0, 4), textcoords="offset points",
                    ha="center", fontsize=9, color=INK)
    _churn_rate_axes(ax)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.95, bottom=0.12)
    label = "Churned within the horizon, by band: " + ", ".join(
        f"{labels[b]} {panel.by_band[b].churned} of {panel.by_band[b].accounts}" for b in order)
    return fig, label


def _churn_rate_axes(ax: Any) -> None:
    """The back-test charts' y axis: churn rates in percent on a light grid, no frame."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
    ax.tick_params(length=0)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _calibration_figure(panel: Any) -> tuple[Figure, str]:
    """Churn rate per score decile (lowest scores left): a score that predicts churn falls
    from left to right."""
    fig = Figure(figsize=(6.4, 2.6))
    ax = fig.add_subplot()
    deciles = panel.deciles
    x = list(range(1, len(deciles) + 1))
    rates = [100 * (r.rate or 0) for _, _, r in deciles]
    ax.bar(x, rates, color=LINE, width=0.7)
    ax.set_xticks(x, [f"{lo:.0f}-{hi:.0f}" for lo, hi, _ in deciles], fontsize=8)
    ax.set_xlabel("health score decile (score range)")
    ax.set_ylim(0, max(rates + [1.0]) * 1.25)
    _churn_rate_axes(ax)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.2)
    label = "Churned within the horizon, by score decile (lowest first): " + ", ".join(
        f"{r.churned} of {r.accounts}" for _, _, r in deciles)
    return fig, label


#: chart name (the SVG's data-chart) -> the function drawing its figure from its data
_FIGURES: dict[str, Any] = {BANDS: _bands_figure, TREND: _trend_figure,
                            CHURN_BY_BAND: _churn_by_band_figure,
                            CALIBRATION: _calibration_figure}
