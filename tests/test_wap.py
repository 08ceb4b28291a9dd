"""Write, audit, publish: the shadow schema, its sync and the atomic swap
(customer_health.publishing.wap), on small hand-made marts in a real PostgreSQL."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from customer_health import settings
from customer_health.modelling import dbt_facts
from customer_health.publishing import wap
from customer_health.publishing.analyst_role import grant_analyst
from customer_health.quality import suites

pytestmark = pytest.mark.cluster_roles  # chw_analyst is cluster-wide: tests/conftest.py

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def _build_night(url: str, day: date, score: int, month_mrr: int) -> None:
    """What a dbt build of `day` does to the shadow: replace the day's rows of a dated mart
    and rewrite the month of a monthly one."""
    wap.prepare_shadow(url)
    wap.mark_building(url, day)
    with psycopg.connect(url) as conn:
        for ddl in (
            "create table if not exists marts_shadow.customer_health"
            " (as_of_date date, account_id text, health_score int)",
            "create table if not exists marts_shadow.revenue_movements"
            " (month date, as_of_date date, account_id text, mrr int)",
        ):
            conn.execute(ddl)
        conn.execute("delete from marts_shadow.customer_health where as_of_date = %s", (day,))
        conn.execute("insert into marts_shadow.customer_health values (%s, 'acc-1', %s),"
                     " (%s, 'acc-2', %s)", (day, score, day, score + 1))
        month = day.replace(day=1)
        conn.execute("delete from marts_shadow.revenue_movements where month = %s", (month,))
        conn.execute("insert into marts_shadow.revenue_movements values (%s, %s, 'acc-1', %s)",
                     (month, day, month_mrr))


def _rows(url: str, schema: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        query = sql.SQL("select * from {} order by 1, 2, 3").format(sql.Identifier(schema, table))
        return conn.execute(query).fetchall()


def test_first_night_is_renamed_in_and_the_next_night_starts_from_it(fresh_database) -> None:
    url = fresh_database()
    _build_night(url, D1, 50, 100)
    wap.swap_in(url)
    assert _rows(url, "marts", "customer_health") == [(D1, "acc-1", 50), (D1, "acc-2", 51)]
    # the second night: the shadow is created again, as a full copy of the marts
    result = wap.prepare_shadow(url)
    assert sorted(result.cloned_tables) == ["customer_health", "revenue_movements"]
    assert _rows(url, "marts_shadow", "customer_health") == _rows(url, "marts", "customer_health")


def test_a_copied_shadow_table_keeps_the_marts_comments(fresh_database) -> None:
    """dbt's persist_docs writes the descriptions as comments; a table the next night's
    shadow copies from marts keeps them (the table's own and its columns')."""
    url = fresh_database()
    _build_night(url, D1, 50, 100)
    with psycopg.connect(url) as conn:
        conn.execute("comment on table marts_shadow.customer_health is 'One row per account'")
        conn.execute("comment on column marts_shadow.customer_health.health_score is '0-100'")
    wap.swap_in(url)
    assert sorted(wap.prepare_shadow(url).cloned_tables) == [
        "customer_health", "revenue_movements"]
    with psycopg.connect(url) as conn:
        for schema in ("marts", "marts_shadow"):
            table = f"{schema}.customer_health"
            assert conn.execute(
                "select obj_description(%s::regclass, 'pg_class'),"
                " col_description(%s::regclass, 3)", (table, table)).fetchone() == (
                "One row per account", "0-100"), schema


def test_shadow_catches_up_with_the_night_published_from_the_other_schema(
        fresh_database) -> None:
    url = fresh_database()
    for day, score in ((D1, 50), (D2, 60), (D3, 70)):
        _build_night(url, day, score, score * 10)
        wap.swap_in(url)
    # marts has all three nights although each schema built only some of them
    assert [r[0] for r in _rows(url, "marts", "customer_health")] == [D1, D1, D2, D2, D3, D3]
    assert _rows(url, "marts", "revenue_movements") == [(date(2026, 11, 1), D3, "acc-1", 700)]
    result = wap.prepare_shadow(url)
    assert result.synced_dates == [D3] and not result.cloned_tables
    for table in ("customer_health", "revenue_movements"):
        assert _rows(url, "marts_shadow", table) == _rows(url, "marts", table)
    assert wap.prepare_shadow(url).synced_dates == []  # nothing left to copy


def test_a_night_that_is_never_published_is_undone_in_the_shadow(fresh_database) -> None:
    url = fresh_database()
    for day, score in ((D1, 50), (D2, 60)):
        _build_night(url, day, score, score * 10)
        wap.swap_in(url)
    published = {t: _rows(url, "marts", t) for t in ("customer_health", "revenue_movements")}
    _build_night(url, D3, 5, 1)  # built, then its gate fails: no swap
    assert _rows(url, "marts", "customer_health") == published["customer_health"]
    wap.prepare_shadow(url)
    for table, rows in published.items():
        assert _rows(url, "marts_shadow", table) == rows  # D3's rows are gone, November restored


def test_swap_keeps_the_analyst_grants_and_re_points_views(fresh_database) -> None:
    url = fresh_database()
    grant_analyst(url)
    _build_night(url, D1, 50, 100)
    wap.swap_in(url)
    grant_analyst(url)  # grants on marts, as `chw warehouse grant-analyst` does
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists analytics")
        conn.execute("create view analytics.latest_scores as select as_of_date, account_id,"
                     " health_score from marts.customer_health")
        conn.execute("create view analytics.latest_max as"
                     " select max(as_of_date) as as_of_date from analytics.latest_scores")
        conn.execute("grant usage on schema analytics to chw_analyst;"
                     " grant select on analytics.latest_scores, analytics.latest_max"
                     " to chw_analyst")
    _build_night(url, D2, 60, 200)
    with psycopg.connect(url) as conn:  # a mart published for the first time tonight
        conn.execute("create table marts_shadow.health_score_backtest (auc numeric);"
                     " insert into marts_shadow.health_score_backtest values (0.7)")
    result = wap.swap_in(url)
    assert result.views == ["analytics.latest_scores"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role chw_analyst")
        # the view reads the new marts, and so does the view built on it
        assert conn.execute("select max(as_of_date) from analytics.latest_scores"
                            ).fetchone()[0] == D2
        assert conn.execute("select as_of_date from analytics.latest_max").fetchone()[0] == D2
        # the analyst reads the new marts' tables directly
        assert conn.execute("select count(*) from marts.customer_health").fetchone()[0] == 4
        assert conn.execute("select count(*) from marts.revenue_movements").fetchone()[0] == 1
        assert conn.execute("select count(*) from marts.health_score_backtest").fetchone()[0] == 1
        # and cannot read the shadow, which holds the previous night
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from marts_shadow.customer_health")
    with psycopg.connect(url) as conn:
        # a table dbt creates later in marts is readable through the default privileges
        conn.execute("create table marts_shadow.new_mart (as_of_date date)")
        privileges = conn.execute(
            "select has_table_privilege('chw_analyst', 'marts_shadow.new_mart', 'select')"
        ).fetchone()[0]
        conn.rollback()
    assert privileges is False  # not in the shadow: its default privileges were revoked
    with psycopg.connect(url) as conn:
        conn.execute("create table marts.new_mart (as_of_date date)")
        assert conn.execute(
            "select has_table_privilege('chw_analyst', 'marts.new_mart', 'select')"
        ).fetchone()[0] is True
        conn.rollback()


def test_a_swap_that_fails_changes_nothing(fresh_database) -> None:
    url = fresh_database()
    _build_night(url, D1, 50, 100)
    wap.swap_in(url)
    _build_night(url, D2, 60, 200)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists analytics")
        # a view the swap cannot re-create: it needs a column the new marts do not have
        conn.execute("alter table marts.customer_health add column legacy int")
        conn.execute("create view analytics.legacy as select legacy from marts.customer_health")
    before = _rows(url, "marts", "customer_health")
    with pytest.raises(psycopg.Error, match="legacy"):
        wap.swap_in(url)
    assert _rows(url, "marts", "customer_health") == before
    with psycopg.connect(url) as conn:
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}
    assert {"marts", "marts_shadow"} <= schemas and "marts__swapping" not in schemas


def test_monthly_marts_are_the_manifests_month_keyed_marts() -> None:
    """wap and the GX suites know the monthly marts from the dbt manifest: the models'
    unique_key, stated once in each model's config."""
    models = Path(settings.dbt_project_dir()) / "models" / "marts"
    keys = {}
    for path in models.glob("**/*.sql"):
        text = path.read_text()
        found = re.search(r"unique_key\s*=\s*'(\w+)'", text)
        # the back-test marts have no as_of_date: a table, or a copy that catches up
        assert found or "materialized='table'" in text or "catch_up_replace" in text, \
            f"{path.name} has no unique_key"
        keys[path.stem] = found.group(1) if found else None
    assert dbt_facts.mart_unique_keys() == keys
    monthly = {name for name, key in keys.items() if key == "month"}
    assert monthly == dbt_facts.monthly_marts() == {
        "nps_monthly", "revenue_movements", "revenue_retention"}
    whole = {name for name, key in keys.items() if key is None}
    assert whole == dbt_facts.whole_marts() == {
        "health_score_backtest_accounts", "health_score_backtest"}
    assert {t for t in suites.MARTS if suites.batch_column(t) is None} == monthly | whole
    assert set(suites.MARTS) == set(keys)


def test_publishing_the_same_build_twice_swaps_nothing_back(fresh_database) -> None:
    url = fresh_database()
    _build_night(url, D1, 50, 100)
    wap.swap_in(url, D1)
    _build_night(url, D2, 60, 200)
    assert not wap.swap_in(url, D2).already
    assert wap.swap_in(url, D2).already  # a retried publish step
    assert [r[0] for r in _rows(url, "marts", "customer_health")] == [D1, D1, D2, D2]
