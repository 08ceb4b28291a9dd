"""`chw weights fit`: candidate health-score weights learnt from the back-test.

Per segment, a regularised (L2) logistic regression of "stayed within the horizon" on the
four component scores of marts.health_score_backtest_accounts, fitted on the earlier
evaluation dates and judged on the later ones (a time split: the candidate is judged on
dates it never saw). The seed accepts non-negative weights that sum to one, and the score
is a weighted mean, so the fitted coefficients (on components scaled to 0-1; a component an
account lacks is filled with the training mean, i.e. it says nothing) are clipped at 0 and
renormalised to sum to 1, rounded to 0.01. Clipping drops a component whose higher score
went with more churn: the weighted mean cannot use it the other way round. A segment with
too few churned accounts in the training dates, or whose coefficients are all <= 0, keeps
its current weights.

The candidate is written as a file in the seed's format with its version (the md5 that
int_health_weights stores as weights_version); the weights in use
(dbt_project/seeds/health_score_weights.csv) are never touched. Customer-success operations
adopt a candidate by committing it over the seed (docs/operations.md).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

COMPONENTS = ("engagement", "support", "sentiment", "billing")
DEFAULT = "default"
#: a segment needs this many churned accounts in its training dates to be fitted
MIN_CHURNED = 5

Weights = dict[str, dict[str, Decimal]]  # segment -> component -> weight


def read_weights(path: Path) -> Weights:
    """The seed health_score_weights.csv (segment, component, weight)."""
    weights: Weights = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            segment = row["segment"].strip().lower()
            weights.setdefault(segment, {})[row["component"].strip().lower()] = Decimal(
                row["weight"].strip())
    return weights


def weights_version(weights: Weights) -> str:
    """md5 of the whole seed as int_health_weights computes it (weight as numeric(6,4))."""
    text = ";".join(f"{s}|{c}|{weights[s][c]:.4f}"
                    for s in sorted(weights) for c in sorted(weights[s]))
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def write_weights(weights: Weights, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["segment", "component", "weight"])
        for segment in sorted(weights, key=lambda s: (s != DEFAULT, s)):
            for component in COMPONENTS:
                out.writerow([segment, component, f"{weights[segment][component]:.2f}"])


def weights_of(weights: Weights, segment: str) -> dict[str, Decimal]:
    """A segment's own weights, else `default` (int_health_weights' rule)."""
    return weights.get(segment) or weights[DEFAULT]


def weighted_score(components: np.ndarray, w: dict[str, Decimal]) -> np.ndarray:
    """The health score of rows of component scores (NaN = no data): the weighted mean of
    the components present (macro health_score; a test checks they agree)."""
    vector = np.array([float(w[c]) for c in COMPONENTS])
    present = ~np.isnan(components)
    total = np.where(present, components, 0.0) @ vector
    share = present.astype(float) @ vector
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(share > 0, total / share, np.nan)


@dataclass
class Rows:
    dates: np.ndarray  # evaluation_date per row
    segments: np.ndarray
    components: np.ndarray  # rows x 4, NaN where missing
    churned: np.ndarray  # bool


def load_rows(url: str, schema: str = "marts", horizon_days: int | None = None) -> Rows:
    """The back-test rows of one horizon: `horizon_days`, or the longest the mart holds
    (the most churn to learn from)."""
    table = sql.Identifier(schema, "health_score_backtest_accounts")
    query = sql.SQL(
        "select evaluation_date, segment, {cols}, churned_within_horizon"
        " from {t} where health_score is not null"
        " and horizon_days = coalesce(%s, (select max(horizon_days) from {t}))"
        " order by evaluation_date, account_id"
    ).format(cols=sql.SQL(", ").join(sql.SQL(f"{c}_score::float8") for c in COMPONENTS),
             t=table)
    with psycopg.connect(url) as conn:
        conn.read_only = True
        rows = conn.execute(query, (horizon_days,)).fetchall()
    if not rows:
        raise ValueError("marts.health_score_backtest_accounts holds no row: no evaluation"
                         " date has passed its horizon yet")
    return Rows(
        dates=np.array([r[0] for r in rows]),
        segments=np.array([r[1] for r in rows]),
        components=np.array([[np.nan if v is None else v for v in r[2:6]] for r in rows],
                            dtype=float),
        churned=np.array([r[6] for r in rows], dtype=bool),
    )


def _auc(stayed: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    keep = ~np.isnan(score)
    if len(set(stayed[keep])) < 2:
        return None
    return float(roc_auc_score(stayed[keep], score[keep]))  # ties count half


def _normalised(coefficients: np.ndarray) -> dict[str, Decimal] | None:
    clipped = np.clip(coefficients, 0, None)
    if clipped.sum() <= 0:
        return None
    shares = [Decimal(str(v / clipped.sum())).quantize(Decimal("0.01"), ROUND_HALF_UP)
              for v in clipped]
    # rounding may leave the sum off by a cent: the largest weight takes the difference
    shares[int(np.argmax(clipped))] += Decimal("1.00") - sum(shares)
    return dict(zip(COMPONENTS, shares, strict=True))


def fit_segment(train: Rows, c: float = 1.0) -> dict[str, Decimal] | None:
    """Weights from a logistic regression of staying on the components (0-1), or None."""
    from sklearn.linear_model import LogisticRegression

    x = train.components / 100.0
    means = np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    x = np.where(np.isnan(x), means, x)
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(x, ~train.churned)
    return _normalised(model.coef_[0])


@dataclass
class SegmentResult:
    segment: str
    train_churned: int
    test_rows: int
    test_churned: int
    current_auc: float | None
    candidate_auc: float | None
    current: dict[str, Decimal]
    candidate: dict[str, Decimal]
    note: str = ""


@dataclass
class FitResult:
    train_dates: list[date]
    test_dates: list[date]
    segments: list[SegmentResult] = field(default_factory=list)
    weights: Weights = field(default_factory=dict)
    all_current_auc: float | None = None
    all_candidate_auc: float | None = None

    @property
    def version(self) -> str:
        return weights_version(self.weights)


def _subset(rows: Rows, mask: np.ndarray) -> Rows:
    return Rows(rows.dates[mask], rows.segments[mask], rows.components[mask], rows.churned[mask])


def fit_weights(rows: Rows, current: Weights, segments: tuple[str, ...],
                test_share: float = 1 / 3, c: float = 1.0,
                min_churned: int = MIN_CHURNED) -> FitResult:
    """Fit each segment on the earlier evaluation dates and compare current and candidate
    AUC on the later `test_share` of them (at least one)."""
    dates = sorted(set(rows.dates))
    if len(dates) < 2:
        raise ValueError(f"{len(dates)} evaluation date(s): a time split needs two or more")
    n_test = min(len(dates) - 1, max(1, round(len(dates) * test_share)))
    train_dates, test_dates = dates[:-n_test], dates[-n_test:]
    is_test = np.isin(rows.dates, test_dates)
    result = FitResult(train_dates, test_dates,
                       weights={s: dict(w) for s, w in current.items()})
    current_scores = np.full(len(rows.churned), np.nan)
    candidate_scores = np.full(len(rows.churned), np.nan)
    for segment in segments:
        mine = rows.segments == segment
        train, test = _subset(rows, mine & ~is_test), _subset(rows, mine & is_test)
        now = weights_of(current, segment)
        candidate, note = None, ""
        if train.churned.sum() < min_churned:
            note = f"kept: {int(train.churned.sum())} churned in training (< {min_churned})"
        else:
            candidate = fit_segment(train, c)
            if candidate is None:
                note = "kept: no component predicted staying"
        chosen = candidate or dict(now)
        if segment in current or chosen != now:  # a segment on `default` stays on it
            result.weights[segment] = chosen
        now_score = weighted_score(test.components, now)
        new_score = weighted_score(test.components, chosen)
        current_scores[mine & is_test] = now_score
        candidate_scores[mine & is_test] = new_score
        result.segments.append(SegmentResult(
            segment, int(train.churned.sum()), len(test.churned), int(test.churned.sum()),
            _auc(~test.churned, now_score), _auc(~test.churned, new_score), dict(now), chosen,
            note))
    result.all_current_auc = _auc(~rows.churned[is_test], current_scores[is_test])
    result.all_candidate_auc = _auc(~rows.churned[is_test], candidate_scores[is_test])
    return result


def describe(result: FitResult) -> list[str]:
    """The fit as lines for the terminal."""
    def auc(v: float | None) -> str:
        return "  n/a" if v is None else f"{v:.3f}"

    def ws(w: dict[str, Decimal]) -> str:
        return " ".join(f"{c[:4]} {w[c]:.2f}" for c in COMPONENTS)

    lines = [f"fitted on {len(result.train_dates)} evaluation date(s)"
             f" {result.train_dates[0]}..{result.train_dates[-1]}, judged on"
             f" {len(result.test_dates)} later: {result.test_dates[0]}..{result.test_dates[-1]}",
             f"{'segment':<12} {'held-out':>8} {'churned':>7}  {'AUC now':>7} {'AUC cand':>8}"
             "  weights now -> candidate"]
    for s in result.segments:
        lines.append(f"{s.segment:<12} {s.test_rows:>8} {s.test_churned:>7}  "
                     f"{auc(s.current_auc):>7} {auc(s.candidate_auc):>8}  {ws(s.current)}"
                     f" -> {ws(s.candidate)}{'  (' + s.note + ')' if s.note else ''}")
    lines.append(f"{'all':<12} {'':>8} {'':>7}  {auc(result.all_current_auc):>7}"
                 f" {auc(result.all_candidate_auc):>8}")
    return lines


__all__ = ["FitResult", "Rows", "describe", "fit_weights", "load_rows", "read_weights",
           "weighted_score", "weights_version", "write_weights"]
