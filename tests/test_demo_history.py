"""`chw demo`'s earlier nights: loaded night by night, their marts built by dbt without
tests or gates and published at once, in the write-audit-publish bookkeeping the DAG's
nights continue from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from customer_health.generate import generate_landing
from customer_health.orchestration.demo_history import HistoryError, build_history, dbt_history_args
from customer_health.publishing import wap

FIRST = date(2026, 10, 1)
DAYS = 9
LAST = FIRST + timedelta(days=DAYS - 1)
BUILT_FROM = LAST - timedelta(days=7)  # 8 nights: the last one has its 7-day changes


@pytest.fixture(scope="module")
def history(fresh_database_factory: Callable[[], str],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, object]:
    url = fresh_database_factory()
    landing = tmp_path_factory.mktemp("landing")
    generate_landing(landing, accounts=12, start=FIRST, days=DAYS, seed=11)
    seen: list[int] = []
    result = build_history(url, str(landing), FIRST, BUILT_FROM, LAST,
                           progress=lambda done, _total: seen.append(done))
    assert seen == list(range(1, DAYS + 1))
    return url, landing, result


def test_history_builds_models_and_seeds_only() -> None:
    args = dbt_history_args()
    assert args[0] == "build"
    kinds = [args[i + 1] for i, a in enumerate(args) if a == "--resource-type"]
    assert sorted(kinds) == ["model", "seed"]


def test_each_built_night_is_published_with_its_7_day_change(history) -> None:
    url, _landing, result = history
    assert result.loaded == [FIRST + timedelta(days=i) for i in range(DAYS)]
    assert result.built == [BUILT_FROM + timedelta(days=i) for i in range(8)]
    with psycopg.connect(url) as conn:
        nights = conn.execute(
            "select as_of_date, count(*), count(score_change_7d)"
            " from marts.customer_health group by 1 order by 1").fetchall()
        assert [n[0] for n in nights] == result.built
        assert all(n[1] > 0 for n in nights)
        assert nights[-1][2] > 0  # the last night's accounts have a 7-day change
        assert all(n[2] == 0 for n in nights[:-1])
        trend = conn.execute("select count(distinct as_of_date)"
                             " from marts.account_team_summary").fetchone()[0]
        assert trend == len(result.built)
        # published as the DAG publishes: each night's generation recorded for `marts`
        generations = conn.execute(
            "select g.as_of_date from audit.mart_generations as g"
            " join pg_namespace as n on n.oid = g.schema_oid"
            " where n.nspname = %s order by 1", (wap.PUBLISHED,)).fetchall()
        assert [g[0] for g in generations] == result.built
        assert conn.execute("select to_regnamespace(%s)", (wap.SHADOW,)).fetchone()[0] is None
        # honest about what it skipped: no quality gate ran for these nights
        checked = conn.execute(
            "select to_regclass('audit.quality_results') is not null").fetchone()[0]
        if checked:
            assert conn.execute("select count(*) from audit.quality_results").fetchone()[0] == 0
    assert "without tests or gates" in result.describe()


def test_a_rejected_export_stops_the_history(tmp_path: Path,
                                             fresh_database_factory: Callable[[], str]) -> None:
    url = fresh_database_factory()
    broken = tmp_path / "landing"
    generate_landing(broken, accounts=4, start=FIRST, days=2, seed=3)
    target = sorted((broken / "crm" / FIRST.isoformat()).glob("*.csv"))[0]
    target.write_text("not,a,contract\n1,2,3\n", encoding="utf-8")
    with pytest.raises(HistoryError, match="rejected"):
        build_history(url, str(broken), FIRST, FIRST + timedelta(days=1),
                      FIRST + timedelta(days=1))
