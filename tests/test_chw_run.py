"""`chw run` drives the nightly DAG through Airflow's dag.test(): exit 0 only when the
run succeeded; otherwise the failed task and its error are printed. (Good nights and the
gates' failures: test_nightly_dag.py.)"""

from __future__ import annotations

import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_health.generate import generate_landing

pytestmark = pytest.mark.dag_run

START = date(2026, 11, 1)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    generate_landing(out, accounts=12, start=START, days=2, seed=5, history_days=60)
    return out


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CHW_HOME": str(home),
        "CHW_WAREHOUSE_URL": url,
        "CHW_TASK_RETRIES": "0",
        **extra,
    }
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        del env[key]  # each chw run configures its own Airflow home under CHW_HOME
    return env


def _chw(args: list[str], home: Path, url: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "customer_health.cli", *args],
        env=_env(home, url, **extra), capture_output=True, text=True, timeout=600,
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


@pytest.mark.parametrize(("command", "sig"), [
    (["run", "--date", "2026-11-02"], signal.SIGTERM),
    (["backfill", "--start", "2026-11-02", "--end", "2026-11-03"], signal.SIGINT),
])
def test_a_signal_stops_a_waiting_night_and_leaves_no_process(
    landing: Path, fresh_database, tmp_path: Path, command: list[str], sig: signal.Signals
) -> None:
    broken = tmp_path / "landing"
    subprocess.run(["cp", "-r", str(landing), str(broken)], check=True)
    for name in ("contacts.csv", "_manifest.json"):  # the export is not there yet
        (broken / "crm" / "2026-11-02" / name).unlink()
    url = fresh_database()
    proc = subprocess.Popen(
        [sys.executable, "-m", "customer_health.cli", *command, "--landing", str(broken)],
        # dag.test() starts the run at its logical date: a wait long enough to still be on
        env=_env(tmp_path, url, CHW_EXPORT_WAIT_TIMEOUT="1000000000",
                 CHW_EXPORT_POKE_INTERVAL="1"),
        stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    waiting = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "wait_for_crm_export ..." in line and len(
                    [ln for ln in lines if "wait_for_crm_export ..." in ln]) > 1:
                waiting.set()  # started a second time: it is waiting (rescheduled)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert waiting.wait(timeout=400), "".join(lines)
        night = psutil.Process(proc.pid).children(recursive=True)
        assert night  # the run's own process (and whatever it started)
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=30)
    stderr = "".join(lines)
    assert code == 128 + sig, stderr
    assert f"STOPPED by {sig.name}" in stderr
    log = next((tmp_path / "logs" / "runs").glob("*.log")).read_text()
    assert ("export folder crm/2026-11-02 incomplete, waiting: missing"
            " crm/2026-11-02/contacts.csv") in log  # it was stopped while waiting
    assert "Traceback" not in stderr
    if command[0] == "backfill":
        assert "backfill stopped at 2026-11-02; nights after it were not run" in stderr
    assert not [p for p in night if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    with psycopg.connect(url) as conn:  # nothing published, nothing loaded
        assert conn.execute("select to_regnamespace('marts')").fetchone()[0] is None
        assert conn.execute("select count(*) from audit.load_ledger where system = 'crm'"
                            ).fetchone()[0] == 0
    reports = tmp_path / "reports"
    assert not reports.exists() or not any(reports.iterdir())
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as meta:
        assert meta.execute("select state from dag_run").fetchall() == [("failed",)]
        states = meta.execute("select task_id, state, try_number from task_instance"
                              " where state is not null").fetchall()
        assert ("wait_for_crm_export", "failed") in [s[:2] for s in states], (
            states, stderr, log[-4000:])


def _one_connection_proxy(upstream_host: str, upstream_port: int) -> int:
    """A port that relays the first connection to the warehouse and refuses every later
    one: `chw run`'s check passes, then the warehouse is gone for the night's tasks."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def relay() -> None:
        client, _ = listener.accept()
        listener.close()  # from now on: connection refused
        server = socket.create_connection((upstream_host, upstream_port))
        with client, server:
            while True:
                ready, _, _ = select.select([client, server], [], [], 30)
                if not ready:
                    return
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (server if src is client else client).sendall(data)

    threading.Thread(target=relay, daemon=True).start()
    return listener.getsockname()[1]


def test_a_warehouse_outage_during_a_night_names_its_cause(
    landing: Path, fresh_database, tmp_path: Path
) -> None:
    url = fresh_database()
    params = conninfo_to_dict(url)
    port = _one_connection_proxy(params.get("host") or "127.0.0.1", int(params.get("port") or 5432))
    params.update(host="127.0.0.1", port=str(port))
    proc = _chw(["run", "--date", "2026-11-01", "--landing", str(landing)], tmp_path,
                make_conninfo(**params))
    assert proc.returncode == 1, proc.stderr
    assert "failed task: prepare_warehouse" in proc.stderr
    # the driver's own line with host, port and cause, then its hint: not the hint alone
    assert f'connection to server at "127.0.0.1", port {port} failed: Connection refused' \
        in proc.stderr
    assert "Is the server running on that host" in proc.stderr
    assert "Traceback" not in proc.stderr
