"""`chw run` and `chw backfill` on a real, running Airflow 3 deployment (CHW_AIRFLOW_API_URL).

The module starts a deployment of its own as child processes: `airflow api-server`,
`airflow scheduler` (LocalExecutor) and `airflow dag-processor`, with their metadata in a
scratch database of the session's PostgreSQL and the project's DAG folder; the nights'
tasks work on another scratch database, the warehouse. The CLI itself is given a
warehouse it cannot reach: everything it does goes through the REST API.

The deployment's schedule starts at the first test night D1, and D1..D3 are the three
latest nights that are already due, so the scheduler catches up exactly D1, D2 and D3
by itself (with the landing area's exports, CHW_LANDING), one at a time
(max_active_runs=1), while the tests run: `chw run` then waits for the scheduler's run
of a night under way, clears and re-runs a finished one, or triggers one the scheduler
has not created (D4, not yet due). Each path ends in the same checks: the run's state as
the API reports it, and the marts and reports the deployment published. D0, before the
schedule's start, gets a run without tasks, which the CLI must not call a success.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dag_runs import chw, marts_snapshot
from processes import RestartAlways, stop_groups
from psycopg.conninfo import conninfo_to_dict

from customer_health.generate import generate_landing

pytestmark = pytest.mark.dag_run

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "customer_health_nightly"
#: Where the nights live, as the CLI must never reach it: the deployment's tasks do the work.
UNREACHABLE_WAREHOUSE = "postgresql://chw_cli_must_not_connect@127.0.0.1:9/nowhere"
READY_TIMEOUT = 300  # seconds for the api-server to answer and the DAG to be parsed


def _due_nights() -> tuple[date, date, date, date]:
    """D1..D3: the three latest nights whose data interval (D 02:00 -> D+1 02:00 UTC) has
    ended, so the scheduler catches them up; D4: the next night, not due yet."""
    last_due = (datetime.now(UTC) - timedelta(hours=26)).date()
    d1 = last_due - timedelta(days=2)
    return d1, d1 + timedelta(days=1), last_due, last_due + timedelta(days=1)


D1, D2, D3, D4 = _due_nights()
D0 = D1 - timedelta(days=1)  # before the deployment's CHW_SCHEDULE_START


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sqlalchemy_url(conninfo: str) -> str:
    """A libpq conninfo (key=value or URI) as Airflow's SQLAlchemy URL, psycopg 3 driver."""
    from sqlalchemy.engine import URL

    params = conninfo_to_dict(conninfo)
    host = params.pop("host", None)
    port = params.pop("port", None)
    query = {}
    if host and host.startswith("/"):  # a Unix socket folder
        query["host"], host = host, None
    url = URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=host,
        port=int(port) if port else None,
        database=params.pop("dbname", None),
        query={**query, **{k: str(v) for k, v in params.items()}},
    )
    return url.render_as_string(hide_password=False)


@dataclass
class Deployment:
    api_url: str
    home: Path  # the deployment's CHW_HOME (its reports are published there)
    warehouse_url: str
    landing: Path
    logs: dict[str, Path]
    token: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def get(self, path: str, **query: str) -> dict:
        url = self.api_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=30) as response:
            return json.loads(response.read())

    def run_of(self, night: date) -> dict:
        """The deployment's one DAG run of a night, as its API reports it."""
        stamp = datetime.combine(night, datetime.min.time(), UTC).replace(hour=2).isoformat()
        runs = self.get(f"/api/v2/dags/{DAG_ID}/dagRuns",
                        logical_date_gte=stamp, logical_date_lte=stamp)["dag_runs"]
        assert len(runs) == 1, runs
        return runs[0]

    def task_instances(self, run_id: str) -> dict[str, dict]:
        found = self.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
                         "/taskInstances", limit="1000")
        return {ti["task_id"]: ti for ti in found["task_instances"]}

    def tail(self, lines: int = 40) -> str:
        """The end of each component's log, for a failure's message."""
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"--- {name} ({path}) ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)


def _airflow_env(root: Path, port: int, metadata_url: str, warehouse_url: str,
                 landing: Path) -> dict[str, str]:
    """The deployment's environment: Airflow's (names checked against Airflow 3.3's
    config.yml) and the project's (customer_health.settings.ENV_VARS)."""
    from cryptography.fernet import Fernet

    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CHW_"))}
    venv_bin = str(Path(sys.executable).parent)
    return {
        **inherited,
        "PATH": venv_bin + os.pathsep + inherited.get("PATH", ""),
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor forks this many workers up front: enough for the widest step (loads)
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # Shared by the components: the scheduler signs the tasks' JWTs, the api-server checks.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        # The tasks' calls to the execution API (default 5 s): its first answers on a busy
        # 2-core machine can take longer, and a timed-out, retried `run` call fails the task.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "airflow" / "logs"),
        # the scheduler's log server (LocalExecutor): not 8793, which another may hold
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parsed once is enough
        "CHW_PROJECT_ROOT": str(ROOT),  # the checkout whose dags/ and plugins/ it runs
        "CHW_HOME": str(root / "chw-home"),
        "CHW_WAREHOUSE_URL": warehouse_url,
        "CHW_LANDING": str(landing),
        "CHW_SCHEDULE_START": D1.isoformat(),
        "CHW_TASK_RETRIES": "0",
        "CHW_EXPORT_WAIT_TIMEOUT": "5",
        "CHW_EXPORT_POKE_INTERVAL": "2",
    }


def _wait_until_ready(deployment: Deployment) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    stage = "the api-server's health endpoint"
    while True:
        for name, proc in deployment.processes.items():
            if proc.poll() is not None:
                pytest.fail(f"airflow {name} exited with {proc.returncode} while waiting for "
                            f"{stage}\n{deployment.tail()}")
        try:
            if not deployment.token:
                health = deployment.get("/api/v2/monitor/health")
                if health.get("metadatabase", {}).get("status") == "healthy":
                    with urllib.request.urlopen(deployment.api_url + "/auth/token",
                                                timeout=30) as response:
                        deployment.token = json.loads(response.read())["access_token"]
                    stage = f"the DAG {DAG_ID} to be parsed"
            if deployment.token:
                deployment.get("/execution/health")  # the tasks' API, warmed up
                errors = deployment.get("/api/v2/importErrors")["import_errors"]
                if errors:
                    pytest.fail(f"the deployment cannot import its DAGs: {errors}")
                dag = deployment.get(f"/api/v2/dags/{DAG_ID}")
                assert dag["is_paused"] is False, dag  # DAGS_ARE_PAUSED_AT_CREATION=False
                return
        except (urllib.error.URLError, OSError):
            pass  # not up, or the DAG not parsed yet (404)
        if time.monotonic() > deadline:
            pytest.fail(f"the deployment was not ready after {READY_TIMEOUT}s: still waiting "
                        f"for {stage}\n{deployment.tail()}")
        time.sleep(2)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory,
               fresh_database_factory) -> Iterator[Deployment]:
    """A running Airflow 3 deployment of the project (api-server, scheduler,
    dag-processor), its DAG parsed and unpaused; stopped at the end of the module."""
    root = tmp_path_factory.mktemp("deployment")
    landing = root / "landing"
    generate_landing(landing, accounts=24, start=D1, days=3, seed=11, history_days=60)
    port = _free_port()
    warehouse_url = fresh_database_factory()
    env = _airflow_env(root, port, _sqlalchemy_url(fresh_database_factory()), warehouse_url,
                       landing)
    (root / "airflow").mkdir()
    airflow = str(Path(sys.executable).parent / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-5000:]

    log_dir = root / "component-logs"
    log_dir.mkdir()
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
    }
    deployment = Deployment(f"http://127.0.0.1:{port}", root / "chw-home", warehouse_url,
                            landing, {name: log_dir / f"{name}.log" for name in commands})

    def start(name: str) -> subprocess.Popen:
        with deployment.logs[name].open("ab") as log:
            return subprocess.Popen([airflow, *commands[name]], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)

    supervisor = None
    try:
        for name in commands:
            deployment.processes[name] = start(name)
        supervisor = RestartAlways(deployment.processes, start)  # as docker-compose.yml
        _wait_until_ready(deployment)
        yield deployment
    finally:
        if supervisor is not None:
            supervisor.stop()
        stop_groups(deployment.processes.values())


def _chw_remote(args: list[str], deployment: Deployment, home: Path
                ) -> subprocess.CompletedProcess:
    """The CLI, on the deployment; its own CHW_HOME and a warehouse it cannot reach."""
    return chw(args, home, UNREACHABLE_WAREHOUSE, CHW_AIRFLOW_API_URL=deployment.api_url,
               CHW_AIRFLOW_API_POLL="1", CHW_AIRFLOW_API_TOKEN="", CHW_AIRFLOW_API_USER="")


def _as_of_dates(url: str) -> list[date]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "select distinct as_of_date from marts.customer_health order by 1").fetchall()]


def _printed_run_id(output: str) -> str:
    found = re.findall(r"^  dag run (\S+)$", output, re.MULTILINE)
    assert len(found) == 1, output
    return found[0]


def test_chw_run_drives_a_night_on_the_deployment(deployment: Deployment,
                                                  tmp_path: Path) -> None:
    proc = _chw_remote(["run", "--date", str(D1), "--landing", str(deployment.landing)],
                       deployment, tmp_path)
    err = proc.stderr
    assert proc.returncode == 0, f"{err[-3000:]}\n{deployment.tail()}"
    assert f"nightly run for {D1} on {deployment.api_url}" in err
    ui = f"{deployment.api_url}/dags/{DAG_ID}/runs/"
    assert f"nightly run for {D1}: success (20 tasks); {ui}" in err
    for task in ("prepare_warehouse", "load_crm.load_activities", "validate_raw", "dbt_build",
                 "publish_marts", "publish_reports"):
        assert f"  {task}: success" in err, err  # progress names each task and its state
    run = deployment.run_of(D1)  # the run the CLI followed is the deployment's run of D1
    assert run["dag_run_id"] == _printed_run_id(err) and run["state"] == "success"
    tis = deployment.task_instances(run["dag_run_id"])
    assert len(tis) == 20 and {ti["state"] for ti in tis.values()} == {"success"}
    # the deployment's tasks did the work: its warehouse and its reports, not the CLI's
    assert _as_of_dates(deployment.warehouse_url)[:1] == [D1]
    assert (deployment.reports_dir / D1.isoformat() / "index.html").is_file()
    assert not (tmp_path / "logs").exists() and not (tmp_path / "airflow").exists()


def test_chw_backfill_drives_each_night_on_the_deployment(deployment: Deployment,
                                                          tmp_path: Path) -> None:
    proc = _chw_remote(["backfill", "--start", str(D2), "--end", str(D3), "--landing",
                        str(deployment.landing)], deployment, tmp_path)
    err = proc.stderr
    assert proc.returncode == 0, f"{err[-3000:]}\n{deployment.tail()}"
    for night in (D2, D3):
        assert f"nightly run for {night}: success (20 tasks)" in err
        assert deployment.run_of(night)["state"] == "success"
    assert f"backfill {D2}..{D3}: 2 nights succeeded" in err
    assert _as_of_dates(deployment.warehouse_url) == [D1, D2, D3]
    for night in (D2, D3):
        assert (deployment.reports_dir / night.isoformat() / "index.html").is_file()
    assert (deployment.reports_dir / "latest").resolve().name == D3.isoformat()


def test_chw_run_of_a_finished_night_clears_and_reruns_it(deployment: Deployment,
                                                          tmp_path: Path) -> None:
    before = deployment.run_of(D1)
    assert before["state"] == "success"
    tries_before = {t: ti["try_number"]
                    for t, ti in deployment.task_instances(before["dag_run_id"]).items()}
    marts_before = marts_snapshot(deployment.warehouse_url)

    proc = _chw_remote(["run", "--date", str(D1), "--landing", str(deployment.landing)],
                       deployment, tmp_path)
    err = proc.stderr
    assert proc.returncode == 0, f"{err[-3000:]}\n{deployment.tail()}"
    assert f"nightly run for {D1}: success (20 tasks)" in err
    after = deployment.run_of(D1)
    # the same run, cleared and run again (not a second run of the night)
    assert after["dag_run_id"] == before["dag_run_id"] == _printed_run_id(err)
    assert after["state"] == "success" and after["end_date"] > before["end_date"]
    tis = deployment.task_instances(after["dag_run_id"])
    assert all(tis[t]["try_number"] > tries_before[t] and tis[t]["state"] == "success"
               for t in tries_before)
    assert marts_snapshot(deployment.warehouse_url) == marts_before  # row for row


def test_a_night_without_exports_fails_and_publishes_nothing(deployment: Deployment,
                                                             tmp_path: Path) -> None:
    """D4 is not due yet, so no run of it exists: the CLI triggers one, with its own
    landing area (empty), and reports the sensor's failure."""
    empty = tmp_path / "empty-landing"
    empty.mkdir()
    marts_before = marts_snapshot(deployment.warehouse_url)
    proc = _chw_remote(["run", "--date", str(D4), "--landing", str(empty)], deployment,
                       tmp_path / "home")
    err = proc.stderr
    assert proc.returncode == 1, f"{err[-3000:]}\n{deployment.tail()}"
    assert f"nightly run for {D4}: FAILED" in err
    assert re.search(r"failed task: wait_for_(crm|billing)_export", err), err
    not_run = err.split("not run because of it:")[1].splitlines()[0]
    assert "publish_marts" in not_run and "publish_reports" in not_run
    run = deployment.run_of(D4)
    assert run["dag_run_id"] == _printed_run_id(err) and run["state"] == "failed"
    if run["run_type"] == "manual":  # unless 02:00 UTC passed and the scheduler was first
        assert run["conf"] == {"landing": str(empty)}  # the CLI's landing reached the run
    assert marts_snapshot(deployment.warehouse_url) == marts_before
    assert (deployment.reports_dir / "latest").resolve().name == D3.isoformat()
    assert not (deployment.reports_dir / D4.isoformat()).exists()


def test_a_night_before_the_schedule_start_is_not_called_a_success(
        deployment: Deployment, tmp_path: Path) -> None:
    """Airflow creates no task for a logical date before the DAG's start date and ends
    such a run "success" at once: the CLI says nothing ran and exits 1 (as `chw run`
    without a deployment refuses the date). Without --landing the run gets no landing of
    the CLI's machine: the deployment's own applies."""
    proc = _chw_remote(["run", "--date", str(D0)], deployment, tmp_path)
    err = proc.stderr
    assert proc.returncode == 1, f"{err[-3000:]}\n{deployment.tail()}"
    assert f"nightly run for {D0}: NO TASK RAN: {D0} is before {DAG_ID}'s first night" in err
    run = deployment.run_of(D0)
    assert run["dag_run_id"] == _printed_run_id(err) and run["state"] == "success"
    assert deployment.task_instances(run["dag_run_id"]) == {}
    assert run["conf"] == {}


def test_a_run_the_scheduler_created_meanwhile_is_followed_not_refused(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of catchup: the scheduler creates a night's run between the client's look
    (none yet) and its trigger, which the API refuses (409); the client takes that run."""
    from customer_health.orchestration.airflow_api import AirflowApi
    from customer_health.orchestration.airflow_runner import nightly_logical_date

    api = AirflowApi(deployment.api_url)
    looks = []

    def find_run_too_early(dag_id: str, logical_date: datetime) -> dict | None:
        looks.append(logical_date)
        return None if len(looks) == 1 else AirflowApi.find_run(api, dag_id, logical_date)

    monkeypatch.setattr(api, "find_run", find_run_too_early)
    existing = deployment.run_of(D0)  # finished (the test before): cleared, not triggered
    assert api.start_night(DAG_ID, nightly_logical_date(D0), {}) == existing["dag_run_id"]
    assert len(looks) == 2
