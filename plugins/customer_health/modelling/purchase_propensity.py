"""P(alive) of customers without a contract: the BG/NBD model (Fader, Hardie & Lee 2005).

An account that pays invoice by invoice with no subscription never churns visibly: it just
stops buying. BG/NBD reads each such account's repeat purchases (`frequency`), the age of
its last purchase when it was made (`recency`) and its own age (`T`), all in days since its
first purchase, and fits four parameters over all of them: a purchase rate per account
(gamma: r, alpha) and a chance to drop out after each purchase (beta: a, b). From those,
each account's probability to be still alive and its expected purchases in the next days.

Here: the summary of purchases, the fit (the `lifetimes` package's BetaGeoFitter) and the
scores. The nightly mart takes its summary from dbt (customer_purchase_propensity) and its
fit and scores from here (`propensity_mart`); `purchase_summary` states the same summary in
Python, for the tests and for data outside the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd
from lifetimes import BetaGeoFitter

#: Days ahead for which expected purchases are given.
HORIZON_DAYS = 90


@dataclass(frozen=True)
class BgNbdParameters:
    r: float
    alpha: float
    a: float
    b: float


def purchase_summary(purchases: Iterable[tuple[str, date]], as_of: date) -> pd.DataFrame:
    """Per account from (account_id, purchase date) pairs up to `as_of`: `frequency` (days
    with a purchase after the first), `recency` (days from the first to the last purchase)
    and `T` (days from the first purchase to `as_of`). Several purchases on one day count
    once, as in the model's definition of a repeat purchase."""
    frame = pd.DataFrame(list(purchases), columns=["account_id", "day"])
    frame["day"] = pd.to_datetime(frame["day"])
    frame = frame[frame["day"] <= pd.Timestamp(as_of)].drop_duplicates()
    grouped = frame.groupby("account_id")["day"]
    first, last, days = grouped.min(), grouped.max(), grouped.nunique()
    return pd.DataFrame({
        "frequency": days - 1,
        "recency": (last - first).dt.days.astype(float),
        "T": (pd.Timestamp(as_of) - first).dt.days.astype(float),
        "last_purchase": last.dt.date,
    }).sort_index()


def fit(summary: pd.DataFrame, penalizer: float = 0.0) -> BetaGeoFitter:
    """Maximum-likelihood BG/NBD fit over every account of the summary."""
    fitter = BetaGeoFitter(penalizer_coef=penalizer)
    fitter.fit(summary["frequency"], summary["recency"], summary["T"])
    return fitter


def parameters(fitter: BetaGeoFitter) -> BgNbdParameters:
    p = fitter.params_
    return BgNbdParameters(float(p["r"]), float(p["alpha"]), float(p["a"]), float(p["b"]))


def score(summary: pd.DataFrame, fitter: BetaGeoFitter,
          horizon_days: int = HORIZON_DAYS) -> pd.DataFrame:
    """`p_alive` and `expected_purchases` in the next `horizon_days` for each account."""
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    return summary.assign(
        p_alive=fitter.conditional_probability_alive(f, r, t),
        expected_purchases=fitter.conditional_expected_number_of_purchases_up_to_time(
            horizon_days, f, r, t),
    )
