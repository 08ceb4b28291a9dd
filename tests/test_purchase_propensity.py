"""BG/NBD P(alive) of customers without a contract (modelling/purchase_propensity.py)."""

from __future__ import annotations

import importlib.resources
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from customer_health.modelling import purchase_propensity as pp

#: Fader, Hardie & Lee (2005), "Counting your customers the easy way", table 1: the BG/NBD
#: fit of CDNOW's 2,357 customers over a 39-week calibration period.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def test_the_cdnow_fit_matches_the_published_parameters() -> None:
    # lifetimes ships the data; its datasets module needs pkg_resources, so read the file
    path = importlib.resources.files("lifetimes") / "datasets" / "cdnow_customers_summary.csv"
    with importlib.resources.as_file(path) as csv:
        summary = pd.read_csv(csv)
    assert len(summary) == 2357
    fitted = pp.parameters(pp.fit(summary))
    for name, published in PUBLISHED.items():
        assert getattr(fitted, name) == pytest.approx(published, rel=0.02), name


def test_the_summary_counts_purchase_days_up_to_the_date() -> None:
    d0 = date(2026, 1, 1)
    purchases = [("a", d0), ("a", d0 + timedelta(10)), ("a", d0 + timedelta(10)),
                 ("a", d0 + timedelta(30)), ("a", d0 + timedelta(50)),  # after as_of
                 ("b", d0 + timedelta(20))]
    summary = pp.purchase_summary(purchases, as_of=d0 + timedelta(40))
    assert summary.loc["a", ["frequency", "recency", "T"]].tolist() == [2, 30.0, 40.0]
    assert summary.loc["b", ["frequency", "recency", "T"]].tolist() == [0, 0.0, 20.0]
    assert summary.loc["a", "last_purchase"] == d0 + timedelta(30)


def _simulated_buyers(n: int, days: int, seed: int) -> tuple[list[tuple[str, date]], set[str]]:
    """Buyers as BG/NBD says they behave: a purchase rate each, and after every purchase a
    chance to leave for good. Returns the purchases and the buyers still alive at the end."""
    rng = np.random.default_rng(seed)
    start = date(2025, 1, 1)
    purchases, alive = [], set()
    for i in range(n):
        rate = rng.gamma(shape=0.8, scale=1 / 20)  # purchases per day: one every ~25 days
        leave = rng.beta(1.0, 4.0)
        account, day, living = f"A{i}", 0.0, True
        purchases.append((account, start))
        while living:
            day += rng.exponential(1 / rate)
            if day > days:
                break
            purchases.append((account, start + timedelta(int(day))))
            living = rng.random() >= leave
        if living:
            alive.add(account)
    return purchases, alive


def test_buyers_who_really_left_get_a_lower_p_alive() -> None:
    purchases, alive = _simulated_buyers(2000, days=365, seed=7)
    summary = pp.purchase_summary(purchases, as_of=date(2025, 1, 1) + timedelta(365))
    scored = pp.score(summary, pp.fit(summary))
    truly_alive = scored.index.isin(sorted(alive))
    assert 0.2 < truly_alive.mean() < 0.8  # both kinds are there
    gap = scored["p_alive"][truly_alive].mean() - scored["p_alive"][~truly_alive].mean()
    assert gap > 0.2
    assert (scored["expected_purchases"] >= 0).all()
    # shuffled truth: no gap (the test above could fail)
    shuffled = np.random.default_rng(1).permutation(truly_alive)
    assert abs(scored["p_alive"][shuffled].mean() - scored["p_alive"][~shuffled].mean()) < 0.05
