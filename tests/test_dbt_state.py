"""dbt_build's retry decision, from audit.dbt_runs in a real warehouse (any worker's view)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest

from customer_health.modelling import dbt_state
from customer_health.modelling.dbt_state import BuildTry

NIGHT = date(2026, 11, 20)
RUN = "scheduled__2026-11-20T02:00:00+00:00"


def _results(which: str = "build", night: date = NIGHT, status: str = "error") -> dict:
    return {"args": {"which": which, "vars": {"as_of_date": night.isoformat()}},
            "results": [{"unique_id": "model.chw.a", "status": "success"},
                        {"unique_id": "model.chw.b", "status": status}]}


def _record(url: str, key: BuildTry, tmp_path: Path, success: bool, results: dict | None,
            command: str = "build") -> None:
    target = tmp_path / f"target-{key.clear_number}-{key.try_number}"
    target.mkdir()
    if results is not None:
        (target / dbt_state.RUN_RESULTS).write_text(json.dumps(results))
    dbt_state.record(url, key, NIGHT, command, success, target, "worker-a")


@pytest.fixture
def url(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


def test_a_retry_of_the_same_run_after_a_failed_build_retries(url: str, tmp_path: Path) -> None:
    _record(url, BuildTry(RUN, 0, 1), tmp_path, False, _results())
    found = dbt_state.previous_failed_build(url, BuildTry(RUN, 0, 2), NIGHT)
    assert found == _results()
    # written back for dbt retry into a target folder of this worker
    path = dbt_state.restore(found, tmp_path / "here")
    assert json.loads(path.read_text()) == _results()
    with psycopg.connect(url) as conn:
        assert conn.execute("select hostname, success from audit.dbt_runs").fetchall() == [
            ("worker-a", False)]


@pytest.mark.parametrize("why", ["cleared", "new run", "succeeded", "no results",
                                 "other night", "was a retry"])
def test_anything_else_builds_everything(url: str, tmp_path: Path, why: str) -> None:
    first = BuildTry(RUN, 0, 1)
    nxt = BuildTry(RUN, 0, 2)
    if why == "cleared":
        _record(url, first, tmp_path, False, _results())
        nxt = BuildTry(RUN, 1, 2)  # the run was cleared: Airflow's clear number moved on
    elif why == "new run":
        _record(url, first, tmp_path, False, _results())
        nxt = BuildTry("manual__2026-11-21T09:00:00+00:00", 0, 2)
    elif why == "succeeded":
        _record(url, first, tmp_path, True, _results(status="success"))
    elif why == "no results":
        _record(url, first, tmp_path, False, None)  # killed or crashed before dbt wrote
    elif why == "other night":
        _record(url, first, tmp_path, False, _results(night=date(2026, 11, 19)))
    elif why == "was a retry":
        _record(url, first, tmp_path, False, _results(which="retry"), command="retry")
    assert dbt_state.previous_failed_build(url, nxt, NIGHT) is None


def test_the_newest_earlier_try_decides(url: str, tmp_path: Path) -> None:
    _record(url, BuildTry(RUN, 0, 1), tmp_path, False, _results())
    _record(url, BuildTry(RUN, 0, 2), tmp_path, True, _results(which="retry"), "retry")
    assert dbt_state.previous_failed_build(url, BuildTry(RUN, 0, 3), NIGHT) is None
