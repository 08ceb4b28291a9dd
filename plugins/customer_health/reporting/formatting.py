"""Number formats of the pages and the CSV (plain functions, also Jinja filters)."""

from __future__ import annotations

import math
from datetime import date

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CHF": "CHF "}
MINUS = "\u2212"  # a real minus sign: lines up with + in tabular figures


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: float | None, currency: str = "USD", compact: bool = False) -> str:
    """`$1,234` or, compact, `$1.2M` / `$12.3k`; an en dash when unknown."""
    if _missing(value):
        return "–"
    symbol = SYMBOLS.get(currency, f"{currency} ")
    sign = MINUS if value < 0 else ""
    amount = abs(value)
    if compact:
        for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if amount >= limit:
                scaled = amount / limit
                digits = 0 if scaled >= 100 else 1
                return f"{sign}{symbol}{scaled:,.{digits}f}{suffix}"
    return f"{sign}{symbol}{amount:,.0f}"


def score(value: float | None) -> str:
    return "–" if _missing(value) else f"{value:.0f}"


def change(value: float | None, digits: int = 1) -> str:
    """A signed change: `+3.2`, `−18.0`, `±0.0`."""
    if _missing(value):
        return "–"
    if round(value, digits) == 0:
        return f"±{0:.{digits}f}"
    return f"+{value:.{digits}f}" if value > 0 else f"{MINUS}{abs(value):.{digits}f}"


def percent(value: float | None, digits: int = 0) -> str:
    return "–" if _missing(value) else f"{100 * value:.{digits}f}%"


def days(value: int | None) -> str:
    return "–" if value is None else f"{value:,d}"


def long_date(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def short_date(value: date | None) -> str:
    return "–" if value is None else f"{value.day} {value:%b %Y}"


#: No band: no component has data yet (a new account), see the glossary.
BAND_LABELS = {"healthy": "Healthy", "at_risk": "At risk", "critical": "Critical",
               None: "Not scored yet"}


def band_label(band: str | None) -> str:
    return BAND_LABELS.get(band, str(band))


def band_class(band: str | None) -> str:
    return band if band in ("healthy", "at_risk", "critical") else "none"
