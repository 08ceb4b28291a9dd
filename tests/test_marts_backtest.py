"""The back-test of the health score (marts.health_score_backtest*) and `chw weights fit`,
on generated exports.

The simulator drives churn from each account's hidden health (customer_health.generate), so
a score that measures health must rank the accounts that later churned below those that
stayed: the back-test's AUC is well above 0.5, and the same computation on shuffled scores
finds about 0.5. Point-in-time scores equal the published nightly ones on the dates a night
was run for, and a version exported or stamped after an evaluation date changes nothing on
it. (Hand-worked AUC, lift, precision and recall: dbt unit tests in models/marts/_unit_tests.yml.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner
from loading_helpers import edit_export
from marts_helpers import load_night

from customer_health import cli, settings
from customer_health.generate import generate_landing
from customer_health.modelling import transform, weights_fit

START = date(2026, 10, 29)  # the full export (540 days of history), then two nightly deltas
NIGHTS = [START + timedelta(days=i) for i in range(3)]
LATE = START + timedelta(days=3)  # an export loaded after the nights, for the leakage test
BACKTEST = ["run", "--full-refresh", "--select", "int_backtest_dates+"]
SCORE_COLUMNS = ("segment", "account_team", "mrr", "engagement_score", "support_score",
                 "sentiment_score", "billing_score", "health_score", "health_band")


@dataclass
class History:
    url: str
    landing: Path


def _backtest_on(url: str, dates: list[date]) -> None:
    """The back-test models for the given evaluation dates with a horizon of 0 days (so
    that the nights' own dates are back-tested), recomputed (a full refresh: incremental,
    the scores of dates already computed would stay)."""
    transform.run_dbt(BACKTEST, url, NIGHTS[-1], extra_vars={
        "backtest_evaluation_dates": ",".join(d.isoformat() for d in dates),
        "backtest_horizon_days": "0"})


def _scores(url: str, where: str = "true") -> dict[tuple[date, str], tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"select evaluation_date, account_id, {', '.join(SCORE_COLUMNS)}"  # noqa: S608
            f" from intermediate.int_backtest_scores where {where}").fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


@pytest.fixture(scope="module")
def history(fresh_database_factory: Callable[[], str],
            tmp_path_factory: pytest.TempPathFactory) -> History:
    landing = tmp_path_factory.mktemp("landing")
    generate_landing(landing, accounts=150, start=START, days=len(NIGHTS) + 1, seed=7,
                     history_days=540)
    url = fresh_database_factory()
    # `run`, not `build`: the models' own tests run in the modules that build (test_marts)
    transform.run_dbt(["seed"], url, NIGHTS[0])
    for night in NIGHTS:
        load_night(url, landing, night)
        transform.run_dbt(["run"], url, night)
    return History(url, landing)


def _auc_rows(url: str) -> list[tuple[date, int, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select evaluation_date, accounts_churned, auc from marts.health_score_backtest"
            " where segment = 'all' and auc is not null order by evaluation_date").fetchall()


def _churn_weighted_auc(rows: list[tuple[date, int, float]]) -> float:
    return sum(n * float(a) for _, n, a in rows) / sum(n for _, n, _ in rows)


def test_weights_fit_writes_a_candidate_and_leaves_the_seed_alone(
        history: History, tmp_path: Path) -> None:
    seed = settings.dbt_project_dir() / "seeds" / "health_score_weights.csv"
    before = seed.read_bytes()
    current = weights_fit.read_weights(seed)
    rows = weights_fit.load_rows(history.url)
    with psycopg.connect(history.url) as conn:
        version, scores = conn.execute(
            "select max(weights_version), array_agg(health_score::float8 order by"
            " evaluation_date, account_id) from marts.health_score_backtest_accounts"
            " where health_score is not null").fetchone()
    # the Python score (for judging candidates) is the marts' score, and so is the version
    python_scores = np.concatenate([
        weights_fit.weighted_score(rows.components[i:i + 1],
                                   weights_fit.weights_of(current, rows.segments[i]))
        for i in range(len(rows.churned))])
    # (the marts round to 0.1, half away from zero)
    assert np.allclose(python_scores, scores, rtol=0, atol=0.0501)
    assert weights_fit.weights_version(current) == version

    out = tmp_path / "candidate.csv"
    result = CliRunner().invoke(cli.main, ["weights", "fit", "--out", str(out)],
                                env={"CHW_WAREHOUSE_URL": history.url})
    assert result.exit_code == 0, result.output
    assert "AUC now" in result.output and "candidate weights" in result.output
    candidate = weights_fit.read_weights(out)
    assert seed.read_bytes() == before  # the weights in use are untouched
    assert candidate["default"] == current["default"]
    for weights in candidate.values():
        assert sorted(weights) == sorted(weights_fit.COMPONENTS)
        assert all(w >= 0 for w in weights.values()) and sum(weights.values()) == 1
    assert weights_fit.weights_version(candidate) in result.output

    fit = weights_fit.fit_weights(rows, current, ("enterprise", "mid_market", "smb"),
                                  min_churned=3)
    assert max(fit.train_dates) < min(fit.test_dates)  # judged on later dates only
    fitted = [s for s in fit.segments if not s.note]
    assert fitted, [s.note for s in fit.segments]
    assert fit.all_candidate_auc is not None and fit.all_current_auc is not None


def test_backtest_finds_the_score_predicts_churn_and_a_shuffled_score_does_not(
        history: History) -> None:
    # the nightly build back-tested the first of each month whose 90 days have passed
    rows = _auc_rows(history.url)
    assert len(rows) >= 10 and sum(n for _, n, _ in rows) >= 30, rows
    real = _churn_weighted_auc(rows)
    print(f'churn-weighted AUC over {len(rows)} dates: {real:.3f}')
    assert real > 0.65, rows

    # the same computation (the mart's model) on scores shuffled within each date
    with psycopg.connect(history.url) as conn:
        conn.execute(
            "with s as (select evaluation_date, account_id, health_score,"
            "  row_number() over (partition by evaluation_date order by account_id) as i,"
            "  row_number() over (partition by evaluation_date order by md5(account_id)) as j"
            "  from intermediate.int_backtest_accounts)"
            " update intermediate.int_backtest_accounts as t"
            " set health_score = donor.health_score"
            " from s as slot join s as donor"
            "  on donor.evaluation_date = slot.evaluation_date and donor.j = slot.i"
            " where t.evaluation_date = slot.evaluation_date and t.account_id = slot.account_id")
    transform.run_dbt(["run", "--full-refresh", "--select", "int_backtest_auc",
                       "health_score_backtest"], history.url, NIGHTS[-1])
    shuffled = _churn_weighted_auc(_auc_rows(history.url))
    print(f'shuffled: {shuffled:.3f}')
    assert 0.38 < shuffled < 0.62, (real, shuffled)


def test_point_in_time_scores_equal_the_published_nightly_ones(history: History) -> None:
    _backtest_on(history.url, NIGHTS)
    backtest = _scores(history.url)
    with psycopg.connect(history.url) as conn:
        published = conn.execute(
            f"select as_of_date, account_id, {', '.join(SCORE_COLUMNS)}"  # noqa: S608
            " from marts.customer_health where mrr > 0").fetchall()
    published_by_key = {(r[0], r[1]): tuple(r[2:]) for r in published}
    assert {d for d, _ in published_by_key} == set(NIGHTS)
    assert len(published_by_key) > 150
    assert backtest == published_by_key


def test_a_version_exported_or_stamped_after_the_evaluation_date_changes_nothing(
        history: History) -> None:
    _backtest_on(history.url, NIGHTS)
    before = _scores(history.url)
    # a late export: its own night's versions (stamped on the last night), a late correction
    # that cancels a live subscription as of the middle night, and a segment change stamped
    # after it was taken
    last = NIGHTS[-1]
    account, subscription = _live_subscription(history.url, last)
    cancel_at = f"{NIGHTS[1].isoformat()}T10:00:00Z"
    edit_export(history.landing, "billing", LATE, "subscriptions", lambda rows: [*rows, {
        **subscription, "status": "canceled", "canceled_at": cancel_at, "updated_at": cancel_at}])
    crm_row = _raw_row(history.url, "crm_accounts", "account_id", account)
    edit_export(history.landing, "crm", LATE, "accounts", lambda rows: [*rows, {
        **crm_row, "segment": "enterprise" if crm_row["segment"] != "enterprise" else "smb",
        "updated_at": f"{LATE.isoformat()}T12:00:00Z"}])
    load_night(history.url, history.landing, LATE)

    _backtest_on(history.url, [*NIGHTS, LATE])
    after = _scores(history.url)
    assert {k: v for k, v in after.items() if k[0] <= last} == before
    assert (last, account) in before
    assert (LATE, account) not in after  # the correction counts from its export on


def _live_subscription(url: str, day: date) -> tuple[str, dict[str, str]]:
    """An account live on `day` with one paying subscription, and that subscription's raw
    row (text, as exported)."""
    with psycopg.connect(url) as conn:
        account, subscription_id = conn.execute(
            "select s.account_id, min(s.subscription_id)"
            " from intermediate.int_subscription_intervals as s"
            " join intermediate.int_backtest_scores as b"
            "  on b.account_id = s.account_id and b.evaluation_date = %s"
            " where s.valid_to is null and s.status = 'active' and s.canceled_at is null"
            " group by s.account_id having count(*) = 1 order by 1 limit 1", (day,)).fetchone()
    return account, _raw_row(url, "billing_subscriptions", "subscription_id", subscription_id)


def _raw_row(url: str, table: str, key: str, value: str) -> dict[str, str]:
    """The latest raw version of a record, as CSV text (without the loader's columns)."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            f"select * from raw.{table} where {key} = %s"  # noqa: S608 (test constants)
            " order by updated_at desc, _export_date desc limit 1", (value,))
        names = [c.name for c in cur.description]
        row = cur.fetchone()
    out = {}
    for name, v in zip(names, row, strict=True):
        if name.startswith("_"):
            continue
        if v is None:
            out[name] = ""
        elif isinstance(v, bool):
            out[name] = "true" if v else "false"
        elif hasattr(v, "isoformat"):
            out[name] = v.isoformat().replace("+00:00", "Z")
        else:
            out[name] = str(v)
    return out


def _backtest_rows(url: str) -> dict[tuple[date, int, str], tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select evaluation_date, horizon_days, account_id, health_score,"
            " churned_within_horizon from marts.health_score_backtest_accounts").fetchall()
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def test_several_horizons_each_get_the_rows_one_horizon_alone_gets(history: History) -> None:
    """var backtest_horizon_days "30,90": the 90-day rows equal those of a 90-day run alone,
    the 30-day rows carry the same scores, and an account churned within 30 days churned
    within 90 too."""
    dates = ",".join(d.isoformat() for d in (date(2026, 3, 1), date(2026, 5, 1),
                                             date(2026, 7, 1)))

    def run(horizons: str) -> None:
        transform.run_dbt(BACKTEST, history.url, NIGHTS[-1], extra_vars={
            "backtest_evaluation_dates": dates, "backtest_horizon_days": horizons})

    run("90")
    alone = _backtest_rows(history.url)
    run("30, 90")
    both = _backtest_rows(history.url)
    assert {k: v for k, v in both.items() if k[1] == 90} == alone
    short = {(d, a): v for (d, h, a), v in both.items() if h == 30}
    long = {(d, a): v for (d, h, a), v in both.items() if h == 90}
    assert short.keys() == long.keys() and len(short) > 150
    assert all(short[k][0] == long[k][0] for k in short)  # one score, several outcomes
    assert all(long[k][1] for k in short if short[k][1])
    assert sum(v[1] for v in long.values()) > sum(v[1] for v in short.values()) > 0
    with psycopg.connect(history.url) as conn:
        per_horizon = dict(conn.execute(
            "select horizon_days, sum(accounts_churned) from marts.health_score_backtest"
            " where segment = 'all' group by 1").fetchall())
    assert per_horizon == {h: sum(v[1] for v in rows.values())
                           for h, rows in ((30, short), (90, long))}


def test_a_new_horizon_is_added_incrementally_and_a_dropped_one_rebuilds(
        history: History) -> None:
    """A night that brings (evaluation date, horizon) pairs the back-test has no rows of yet
    computes just those pairs, without rebuilding int_backtest_accounts (issue 15: a new
    evaluation date once a month rebuilt it, a cost that grew with the history); a pair it
    holds that is no longer wanted rebuilds it. Either way the rows and the AUC table equal a
    full recomputation."""
    dates = ",".join(d.isoformat() for d in (date(2026, 3, 1), date(2026, 5, 1)))
    incremental = ["run", "--select", "int_backtest_dates+"]

    def run(command: list[str], horizons: str) -> tuple[dict, list[tuple]]:
        transform.run_dbt(command, history.url, NIGHTS[-1], extra_vars={
            "backtest_evaluation_dates": dates, "backtest_horizon_days": horizons})
        with psycopg.connect(history.url) as conn:
            auc = conn.execute("select * from marts.health_score_backtest"
                               " order by evaluation_date, segment, horizon_days").fetchall()
        return _backtest_rows(history.url), auc

    def rebuilt() -> bool:
        with psycopg.connect(history.url) as conn:
            return conn.execute(
                "select rebuilt_at = built_at from audit.dbt_incremental_state"
                " where model = 'intermediate.int_backtest_accounts'").fetchone()[0]

    only_90 = run(BACKTEST, "90")
    added = run(incremental, "30, 90")
    assert not rebuilt()
    assert {k[1] for k in added[0]} == {30, 90}
    assert added == run(BACKTEST, "30, 90")
    dropped = run(incremental, "90")
    assert rebuilt()
    assert dropped == only_90
