"""Each fact of the marts lives once, in the dbt project, and everything else derives it;
the marts' descriptions reach PostgreSQL (persist_docs) and survive the shadow swap."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest
import yaml
from marts_helpers import E0, E1, SCENARIO, insert_export

from customer_health import contract, settings
from customer_health.modelling import dbt_facts, transform
from customer_health.publishing import wap
from customer_health.publishing.analyst_role import grant_analyst
from customer_health.quality import suites
from customer_health.quality.marts import expected_accounts
from customer_health.reporting import charts
from customer_health.reporting.glossary import load_glossary
from customer_health.reporting.render import render_glossary

pytestmark = pytest.mark.cluster_roles  # chw_analyst is cluster-wide: tests/conftest.py


@pytest.fixture
def changed_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A copy of the dbt project with some vars changed, made the project in use."""

    original = settings.dbt_project_dir()
    made: list[Path] = []

    def make(**changed: object) -> Path:
        root = tmp_path / f"project{len(made)}"
        made.append(root)
        shutil.copytree(original, root / "dbt_project",
                        ignore=shutil.ignore_patterns("target", "logs"))
        project_file = root / "dbt_project" / "dbt_project.yml"
        loaded = yaml.safe_load(project_file.read_text())
        loaded["vars"].update(changed)
        project_file.write_text(yaml.safe_dump(loaded, sort_keys=False))
        monkeypatch.setenv("CHW_PROJECT_ROOT", str(root))
        return root / "dbt_project"

    return make


def _band_query() -> str:
    [band] = [e for e in suites.MARTS["customer_health"]()
              if suites.expectation_name(e) == "band_matches_score"]
    return band.unexpected_rows_query


def test_the_band_cut_offs_are_the_dbt_vars_for_the_gate_and_the_report(
        changed_project: Callable[..., Path]) -> None:
    assert dbt_facts.band_thresholds() == (70, 40)
    assert ">= 70 then 'healthy'" in _band_query() and ">= 40 then 'at_risk'" in _band_query()
    project = changed_project(health_healthy_from=80, health_at_risk_from=55)
    # the marts gate's suite
    query = _band_query()
    assert ">= 80 then 'healthy'" in query and ">= 55 then 'at_risk'" in query
    assert "70" not in query and "40" not in query
    # the report: the glossary's words, its band function, the trend chart's band lines
    glossary = load_glossary(project)
    assert glossary.band_rules == {"healthy": "80 or more", "at_risk": "55 to under 80",
                                   "critical": "under 55"}
    page = render_glossary(glossary, date(2026, 11, 3))
    assert "80 or more" in page and "55 to under 80" in page and "70 or more" not in page
    assert [dbt_facts.health_band(s) for s in (80, 79.9, 55, 54.9, None)] == [
        "healthy", "at_risk", "at_risk", "critical", None]
    svg_now = charts.trend_chart([(date(2026, 11, 3), 60.0)], "t")
    changed_project(health_healthy_from=65, health_at_risk_from=55)
    assert charts.trend_chart([(date(2026, 11, 3), 60.0)], "t") != svg_now


def test_no_rule_is_stated_twice_in_the_dbt_project() -> None:
    """The segments, the NPS rule and the band cut-offs appear only as vars; the marts'
    shared configuration only in dbt_project.yml."""
    root = settings.dbt_project_dir()
    texts = {p: p.read_text() for folder in ("models", "macros", "seeds")
             for p in (root / folder).rglob("*") if p.suffix in (".sql", ".yml")}
    for path, text in texts.items():
        assert "mid_market" not in text, path  # segments: var segments
        assert not re.search(r"score\s*(>=\s*9|<=\s*6|between 7 and 8)", text), path
        assert not re.search(r"health_score\s*>=\s*\d", text), path
        if path.parent.name == "marts" and path.suffix == ".sql":
            for setting in ("materialized", "incremental_strategy", "on_schema_change"):
                assert setting not in text, (path, setting)
    assert contract.SEGMENTS == dbt_facts.segments() == ("enterprise", "mid_market", "smb")
    assert contract.entity("crm", "accounts").column("segment").choices == contract.SEGMENTS


def test_the_gate_counts_current_accounts_with_dbts_own_macro() -> None:
    rendered = dbt_facts.current_versions_sql("raw.crm_accounts", "account_id",
                                              date(2026, 11, 3))
    assert "r._export_date <= date '2026-11-03'" in rendered
    assert ("r.updated_at < (timestamp '2026-11-03' + interval '1 day') at time zone 'UTC'"
            in rendered)
    assert rendered.endswith(
        "order by r.account_id, r.updated_at desc, r._export_date desc, r._line_number desc")


@pytest.fixture(scope="module")
def two_nights(fresh_database_factory: Callable[[], str]) -> str:
    """Two nights built the nightly way: into the shadow, then swapped in."""
    url = fresh_database_factory()
    grant_analyst(url)
    for night in (E0, E1):
        insert_export(url, night, SCENARIO[night])
        wap.prepare_shadow(url)
        wap.mark_building(url, night)
        transform.run_dbt(["build"], url, night, extra_vars={"marts_schema": wap.SHADOW})
        wap.swap_in(url, night)
    return url


def _comments(url: str, schema: str) -> tuple[str | None, dict[str, str | None]]:
    with psycopg.connect(url) as conn:
        table = conn.execute("select obj_description(%s::regclass, 'pg_class')",
                             (f"{schema}.customer_health",)).fetchone()[0]
        columns = dict(conn.execute(
            "select attname, col_description(attrelid, attnum) from pg_attribute"
            " where attrelid = %s::regclass and attnum > 0 and not attisdropped",
            (f"{schema}.customer_health",)).fetchall())
    return table, columns


def test_descriptions_are_comments_after_a_night_and_survive_the_swap(two_nights: str) -> None:
    table, columns = _comments(two_nights, "marts")
    assert table is not None and table.startswith("One row per account (not deleted)")
    assert columns["top_risk_component"].startswith("The component top_risk_driver speaks of")
    assert columns["as_of_date"] == "The logical date of the nightly run that wrote the row."
    # the next night's shadow (the schema published the night before, or a copy) has them too
    wap.prepare_shadow(two_nights)
    assert _comments(two_nights, wap.SHADOW) == (table, columns)


def test_the_enforced_contract_gives_the_declared_types_and_the_component(
        two_nights: str) -> None:
    with psycopg.connect(two_nights) as conn:
        types = dict(conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'customer_health'").fetchall())
        components = conn.execute(
            "select as_of_date, count(*) filter (where top_risk_component is null"
            " <> (top_risk_driver is null)) from marts.customer_health group by 1 order by 1"
        ).fetchall()
    assert types["top_risk_component"] == "text" and types["health_score"] == "numeric"
    assert types["scored_components"] == "integer" and types["as_of_date"] == "date"
    assert components == [(E0, 0), (E1, 0)]


def test_the_gate_expects_as_many_accounts_as_dbt_built(two_nights: str) -> None:
    with psycopg.connect(two_nights) as conn:
        for night in (E0, E1):
            built = conn.execute("select count(*) from marts.customer_health"
                                 " where as_of_date = %s", (night,)).fetchone()[0]
            assert expected_accounts(conn, night) == built > 0
