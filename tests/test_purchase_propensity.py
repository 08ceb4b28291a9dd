"""BG/NBD P(alive) of customers without a contract (modelling/purchase_propensity.py)."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from customer_health.generate import Simulator
from customer_health.loading import load_export
from customer_health.modelling import propensity_mart, transform
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


# ----- the nightly mart: dbt writes the purchase history, score_night the scores ---------

NIGHT = date(2026, 11, 1)


@pytest.fixture(scope="module")
def generated_night(fresh_database_factory: Callable[[], str],
                    tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Simulator]:
    """A full export of 160 accounts, a third of them invoice-only, loaded and the mart's
    models built (dbt run of customer_purchase_propensity and what it reads)."""
    landing = tmp_path_factory.mktemp("landing")
    sim = Simulator(accounts=160, start=NIGHT, days=1, seed=11, history_days=540,
                    invoice_only_share=0.33)
    sim.run(landing)
    url = fresh_database_factory()
    assert all(r.ok for r in load_export(url, landing, NIGHT))
    transform.run_dbt(["run", "--select", "+customer_purchase_propensity"], url, NIGHT)
    return url, sim


def _mart(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select account_id, repeat_purchases, p_alive, expected_purchases_90d,"
            " fitted_accounts, model_r from marts.customer_purchase_propensity"
            " where as_of_date = %s", (NIGHT,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_the_mart_scores_the_invoice_only_accounts_and_those_who_left_score_lower(
        generated_night: tuple[str, Simulator]) -> None:
    url, sim = generated_night
    result = propensity_mart.score_night(url, NIGHT, "marts")
    assert result.not_scored_because is None, result.describe()
    mart = _mart(url)
    invoice_only = {sim.aid[a] for a in range(sim.N) if sim.invoice_only[a]}
    assert set(mart) <= invoice_only and len(mart) >= 0.8 * len(invoice_only)
    assert all(row[1] is not None and 0 <= row[1] <= 1 and row[2] >= 0 for row in mart.values())
    assert {row[3] for row in mart.values()} == {len(mart)} == {result.scored}
    # the simulator's truth: who still buys; repeat buyers only (BG/NBD gives a one-order
    # account P(alive) 1 whatever happened, as the model defines)
    repeat = [a for a in range(sim.N) if sim.aid[a] in mart and mart[sim.aid[a]][0] > 0]
    still = [mart[sim.aid[a]][1] for a in repeat if sim.buying[a]]
    left = [mart[sim.aid[a]][1] for a in repeat if not sim.buying[a]]
    assert len(still) >= 5 and len(left) >= 5, (len(still), len(left))
    assert sum(still) / len(still) - sum(left) / len(left) > 0.3


def test_too_few_invoice_only_accounts_leave_the_scores_empty_and_say_why(
        generated_night: tuple[str, Simulator], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = generated_night
    propensity_mart.score_night(url, NIGHT, "marts")
    monkeypatch.setenv("CHW_PROPENSITY_MIN_ACCOUNTS", "1000")
    result = propensity_mart.score_night(url, NIGHT, "marts")
    assert "fewer than CHW_PROPENSITY_MIN_ACCOUNTS=1000" in result.not_scored_because
    assert all(row[1:] == (None, None, None, None) for row in _mart(url).values())
