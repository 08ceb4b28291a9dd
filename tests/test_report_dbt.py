"""The reports on marts built by the real dbt project (scenario of tests/marts_helpers.py).

Guards the report's queries against the column names dbt_project/ actually produces.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from marts_helpers import E0, E1, SCENARIO, load_export_via_loader

from customer_health.modelling import transform
from customer_health.reporting import publish_reports

pytestmark = pytest.mark.slow


def test_reports_from_dbt_built_marts(fresh_database_factory: Callable[[], str],
                                      tmp_path: Path) -> None:
    url = fresh_database_factory()
    landing = tmp_path / "landing"
    for day in (E0, E1):
        load_export_via_loader(url, landing, day, SCENARIO[day])
        transform.run_dbt(["build"], url, day)
    result = publish_reports(url, E1, tmp_path / "reports",
                             quality={"status": "passed", "failures": [], "warnings": []})

    with psycopg.connect(url) as conn:
        owners = dict(conn.execute(
            "select account_id, account_team from marts.customer_health where as_of_date = %s",
            (E1,)).fetchall())
    assert {t.team for t in result.teams} == set(owners.values())
    for report in result.teams:
        rows = list(csv.DictReader(io.StringIO(report.csv_path.read_text())))
        assert sorted(r["account_id"] for r in rows) == sorted(
            a for a, team in owners.items() if team == report.team)
        page = report.html_path.read_text()
        for account, team in owners.items():
            if team != report.team:
                assert f'<span class="id">{account}' not in page
        assert page.count('class="chart" role="img"') == 2
    # A7 (team south) has a subscription and nothing else on 7 November: thin evidence
    south = result.team("south").html_path.read_text()
    (a7,) = [r for r in south.split("<tr>") if 'class="id">A7<' in r and "of 4<" in r]
    assert "thin evidence: scored on 1 of 4 components" in a7 and "1 of 4" in a7
    # on 31 October A7 was in the CRM only: published, not scored yet
    first = publish_reports(url, E0, tmp_path / "reports",
                            quality={"status": "passed", "failures": [], "warnings": []})
    south = first.team("south").html_path.read_text()
    (a7,) = [r for r in south.split("<tr>") if 'class="id">A7<' in r and "of 4<" in r]
    assert "Not scored yet" in a7 and "0 of 4" in a7 and "thin evidence" not in a7
