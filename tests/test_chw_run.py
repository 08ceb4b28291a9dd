"""`chw run` drives the nightly DAG through Airflow's dag.test(): exit 0 only when the
run succeeded; otherwise the failed task and its error are printed. (Good nights and the
gates' failures: test_nightly_dag.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from customer_health.generate import generate_landing

pytestmark = pytest.mark.dag_run

START = date(2026, 11, 1)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    generate_landing(out, accounts=12, start=START, days=2, seed=5, history_days=60)
    return out


def _chw(args: list[str], home: Path, url: str, **extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CHW_HOME": str(home),
        "CHW_WAREHOUSE_URL": url,
        "CHW_TASK_RETRIES": "0",
        **extra,
    }
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        del env[key]  # each chw run configures its own Airflow home under CHW_HOME
    return subprocess.run(
        [sys.executable, "-m", "customer_health.cli", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )


def test_a_night_with_a_missing_file_fails_and_names_task_and_file(
    landing: Path, fresh_database, tmp_path: Path
) -> None:
    broken = tmp_path / "landing"
    subprocess.run(["cp", "-r", str(landing), str(broken)], check=True)
    day = "2026-11-02"
    (broken / "crm" / day / "contacts.csv").unlink()
    (broken / "crm" / day / "_manifest.json").unlink()
    url = fresh_database()
    proc = _chw(["run", "--date", day, "--landing", str(broken)], tmp_path, url,
                CHW_EXPORT_WAIT_TIMEOUT="0")
    assert proc.returncode == 1
    assert f"nightly run for {day}: FAILED" in proc.stderr
    assert "failed task: wait_for_crm_export" in proc.stderr
    assert f"missing crm/{day}/contacts.csv" in proc.stderr
    assert "not run because of it: " in proc.stderr and "load_crm.load_contacts" in proc.stderr
    with psycopg.connect(url) as conn:
        loaded = conn.execute(
            "select count(*) from audit.load_ledger where system = 'crm'"
        ).fetchone()[0]
    assert loaded == 0  # nothing of the incomplete folder was loaded
