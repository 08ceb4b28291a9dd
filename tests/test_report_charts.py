"""The trend chart's date axis: whole days, each labelled once, within the nights shown."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from customer_health.reporting.charts import trend_chart

LAST = date(2026, 11, 30)
_LABEL = re.compile(r">(\d{1,2} [A-Z][a-z]{2})<")


def _series(nights: int) -> list[tuple[date, float]]:
    return [(LAST - timedelta(days=nights - 1 - i), 60.0 + (i % 5)) for i in range(nights)]


def _date_labels(svg: str) -> list[str]:
    return _LABEL.findall(svg)


@pytest.mark.parametrize("nights", [2, 3, 5, 14, 30, 90])
def test_trend_axis_labels_each_day_once(nights: int) -> None:
    labels = _date_labels(trend_chart(_series(nights), "t"))
    assert len(labels) >= 2, labels
    assert len(labels) == len(set(labels)), f"repeated dates on the axis: {labels}"
    assert len(labels) <= 7, labels
    first = LAST - timedelta(days=nights)  # the axis may start half a day early
    shown = {f"{d.day} {d:%b}" for d in (first + timedelta(days=i) for i in range(nights + 2))}
    assert set(labels) <= shown, labels


def test_trend_axis_of_one_night_names_it() -> None:
    labels = _date_labels(trend_chart(_series(1), "t"))
    assert f"{LAST.day} {LAST:%b}" in labels
    assert len(labels) == len(set(labels))
