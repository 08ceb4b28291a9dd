"""dbt_build's retry on another worker, with real dbt runs: a night's build that failed
part-way for a transient reason (a lock held on one mart outlasted the lock timeout) is
finished by the next try on a worker with an empty target folder, which reruns only the
failed and skipped nodes, from the run results the first try stored in the warehouse."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from marts_helpers import E0, E1, SCENARIO, load_export_via_loader
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_health.failures import PermanentFailure
from customer_health.modelling.dbt_cosmos import build_marts
from customer_health.modelling.transform import DbtRunError


def _worker(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Another host: its own CHW_HOME, so its own (empty) dbt target folder."""
    monkeypatch.setenv("CHW_HOME", str(home))


def test_a_retry_on_another_worker_reruns_only_what_failed(
        fresh_database: Callable[[], str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = fresh_database()
    load_export_via_loader(url, tmp_path / "landing", E0, SCENARIO[E0])
    load_export_via_loader(url, tmp_path / "landing", E1, SCENARIO[E1])
    # the warehouse as the tasks get it, with a lock timeout among its extras (libpq options)
    tasks_url = make_conninfo(**{**conninfo_to_dict(url), "options": "-c lock_timeout=2000"})
    monkeypatch.delenv("AIRFLOW_CONN_CHW_WAREHOUSE", raising=False)
    monkeypatch.setenv("CHW_WAREHOUSE_URL", tasks_url)

    _worker(monkeypatch, tmp_path / "worker-a")
    assert "dbt build for" in build_marts(E0, 1, "run-e0")

    with psycopg.connect(url) as holder:  # someone holds a mart of the shadow
        holder.execute("lock table marts_shadow.nps_monthly in access exclusive mode")
        with pytest.raises(DbtRunError) as caught:
            build_marts(E1, 1, "run-e1")
        holder.rollback()
    assert not isinstance(caught.value, PermanentFailure)  # transient: Airflow retries it
    assert "lock timeout" in str(caught.value) and "nps_monthly" in str(caught.value)

    _worker(monkeypatch, tmp_path / "worker-b")
    outcome = build_marts(E1, 2, "run-e1")
    assert outcome.startswith(f"dbt retry of the failed nodes for {E1}"), outcome

    with psycopg.connect(url) as conn:
        runs = conn.execute(
            "select dag_run_id, try_number, command, success, run_results"
            " from audit.dbt_runs order by dag_run_id, try_number").fetchall()
        nps = conn.execute("select count(*) from marts_shadow.nps_monthly"
                           " where as_of_date = %s", (E1,)).fetchone()[0]
    assert [(r[0], r[1], r[2], r[3]) for r in runs] == [
        ("run-e0", 1, "build", True), ("run-e1", 1, "build", False),
        ("run-e1", 2, "retry", True)]
    first, retried = (_nodes(r[4]) for r in runs[1:])
    assert "model.chw.nps_monthly" in retried and first[
        "model.chw.nps_monthly"] == "error"
    # only what failed or was skipped ran again: every node that succeeded is left alone
    assert set(retried) == {n for n, status in first.items() if status in ("error", "skipped")}
    assert len(retried) < len(first) / 10
    assert nps > 0


def _nodes(run_results: dict | str) -> dict[str, str]:
    """The status of each model and test (the project's hooks run with every invocation)."""
    data = json.loads(run_results) if isinstance(run_results, str) else run_results
    return {r["unique_id"]: r["status"] for r in data["results"]
            if not r["unique_id"].startswith("operation.")}
