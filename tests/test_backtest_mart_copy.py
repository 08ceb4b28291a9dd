"""marts.health_score_backtest_accounts catches up with int_backtest_accounts through the
write-audit-publish shadow (macros/catch_up_copy.sql): the shadow is the schema published
two nights ago, so its copy must catch up with two nights of writes; a night whose gate
failed (built, never published) leaves a copy the next night builds on; a rebuild of the
intermediate table (a horizon no longer wanted) empties the copy and copies it whole. After
every publish the mart is exactly the intermediate table's rows, `computed_at` being their
`_written_at`. Real dbt builds on generated exports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import psycopg
import pytest
from marts_helpers import compiled_code, load_night

from customer_health.generate import generate_landing
from customer_health.modelling import transform
from customer_health.publishing import wap

START = date(2026, 10, 29)  # the full export; the next night adds the pairs of August 1st
NIGHTS = [START + timedelta(days=i) for i in range(4)]
MART = "health_score_backtest_accounts"
COLUMNS = ("evaluation_date, horizon_days, account_id, segment, account_team, health_score,"
           " health_band, engagement_score, support_score, sentiment_score, billing_score, mrr,"
           " churned_within_horizon, weights_version")


def _build(url: str, day: date, horizons: str = "90") -> transform.DbtRunResult:
    """A night's build into the shadow, as the nightly DAG does it."""
    wap.prepare_shadow(url)
    wap.mark_building(url, day)
    return transform.run_dbt(["run"], url, day, extra_vars={
        "marts_schema": wap.SHADOW, "backtest_horizon_days": horizons})


def _rows(url: str, relation: str, stamp: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(
            f"select {COLUMNS}, {stamp} from {relation}").fetchall(),  # noqa: S608 (constants)
            key=repr)


def _assert_copy(url: str, schema: str) -> list[tuple]:
    source = _rows(url, "intermediate.int_backtest_accounts", "_written_at")
    assert source, "the back-test holds no rows: nothing was compared"
    assert _rows(url, f"{schema}.{MART}", "computed_at") == source
    return source


@pytest.fixture(scope="module")
def warehouse(fresh_database_factory: Callable[[], str],
              tmp_path_factory: pytest.TempPathFactory) -> str:
    landing = tmp_path_factory.mktemp("landing")
    generate_landing(landing, accounts=60, start=START, days=len(NIGHTS), seed=11,
                     history_days=150)
    url = fresh_database_factory()
    transform.run_dbt(["seed"], url, START)
    for night in NIGHTS:
        load_night(url, landing, night)
    return url


def test_the_copy_follows_the_back_test_through_the_shadow(warehouse: str) -> None:
    url = warehouse
    first, second, third, fourth = NIGHTS

    # the first night creates the mart whole; the second night's shadow is a clone of it
    _build(url, first)
    wap.swap_in(url, first)
    _assert_copy(url, "marts")
    before = len(_rows(url, f"marts.{MART}", "computed_at"))
    result = _build(url, second)
    assert "where _written_at > timestamptz" in compiled_code(result, MART)
    wap.swap_in(url, second)
    rows = _assert_copy(url, "marts")
    assert len(rows) > before  # the pairs of a new evaluation date were added

    # the third night's shadow is the schema published after the first night: it catches up
    # with the second night's rows too. Its gate fails (never published)
    _build(url, third)
    _assert_copy(url, wap.SHADOW)
    # the fourth night builds into the same shadow again, and is published
    result = _build(url, fourth)
    assert "where _written_at > timestamptz" in compiled_code(result, MART)
    wap.swap_in(url, fourth)
    _assert_copy(url, "marts")

    # a horizon added, then taken away: the back-test is rebuilt, and the copies (both
    # schemas in turn) drop the rows of the horizon no longer wanted
    _build(url, fourth, horizons="30,90")
    wap.swap_in(url, fourth)
    with_30 = _assert_copy(url, "marts")
    assert {r[1] for r in with_30} == {30, 90}
    for _ in range(2):
        result = _build(url, fourth, horizons="90")
        assert "where _written_at >" not in compiled_code(result, MART)
        wap.swap_in(url, fourth)
        assert {r[1] for r in _assert_copy(url, "marts")} == {90}
