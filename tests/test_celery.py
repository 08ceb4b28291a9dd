"""The production layout for real: a CeleryExecutor deployment whose two workers share
nothing but the warehouse and an object store.

The module starts, as separate processes: `airflow api-server`, `scheduler`,
`dag-processor`, `triggerer` and two `airflow celery worker`s; Redis at 127.0.0.1:6379
(a database of its own, DB 7) is the broker, the session's PostgreSQL holds Airflow's
metadata, the Celery result backend and the warehouse (scratch databases, dropped after);
moto's S3 server on 127.0.0.1 holds the landing area, the published reports and the
task logs (remote logging), as one bucket would in production (docker-compose.yml).

Each worker is a host of its own: its own working folder, CHW_HOME, AIRFLOW_HOME, log
folder and a copy of the project (dags/, plugins/, dbt_project/, expectations/, pointed
at by CHW_PROJECT_ROOT and the DAGS/PLUGINS folders), and its own host name in the task
instances ([core] hostname_callable). The `customer_health` package itself is imported
from the editable install (this checkout's plugins/): the same code as the copy, so no
behaviour differs; what a worker reads at run time (the DAG file, dbt project, suites)
comes from its copy, and nothing a task writes on one worker is read on the other.

The nights, driven by `chw run` through the REST API: D1 (catchup), then D2 while the
worker running its `dbt_build` is killed with SIGKILL (the task is retried on the
other), then D1 again (cleared and rebuilt, not skipped).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dag_runs import chw
from processes import kill_group, stop_groups
from s3_server import S3Server, s3_server
from test_airflow_api import (
    DAG_ID,
    UNREACHABLE_WAREHOUSE,
    Deployment,
    _airflow_env,
    _free_port,
    _sqlalchemy_url,
    _wait_until_ready,
)

from customer_health.generate import generate_landing

pytestmark = pytest.mark.celery

ROOT = Path(__file__).resolve().parents[1]
REDIS = ("127.0.0.1", 6379)
REDIS_DB = 7
BUCKET = "chw"
WORKERS = ("worker-a", "worker-b")
PROJECT_PARTS = ("dags", "plugins", "dbt_project", "expectations")
#: How fast a killed worker's task is given up and its message redelivered here; the
#: production values are in docker-compose.yml and docs/deployment.md.
HEARTBEAT_TIMEOUT = 30
VISIBILITY_TIMEOUT = 60
NIGHT_TIMEOUT = 900


def _redis(*command: str) -> str:
    """One RESP command to Redis; its simple reply."""
    parts = [f"*{len(command)}\r\n".encode()]
    for arg in command:
        parts.append(f"${len(arg.encode())}\r\n{arg}\r\n".encode())
    with socket.create_connection(REDIS, timeout=3) as sock:
        sock.sendall(b"".join(parts))
        return sock.recv(1024).decode(errors="replace").strip()


def _redis_reachable() -> str | None:
    try:
        reply = _redis("PING")
    except OSError as exc:
        return f"Redis at {REDIS[0]}:{REDIS[1]} is unreachable ({exc})"
    return None if reply == "+PONG" else f"Redis at {REDIS[0]}:{REDIS[1]} answered {reply!r}"


def _due_nights() -> tuple[date, date]:
    """D1, D2: the two latest nights already due, so the scheduler catches them up."""
    last_due = (datetime.now(UTC) - timedelta(hours=26)).date()
    return last_due - timedelta(days=1), last_due


D1, D2 = _due_nights()


def _copy_project(dest: Path) -> None:
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", ".user.yml")
    for part in PROJECT_PARTS:
        shutil.copytree(ROOT / part, dest / part, ignore=ignore)


class CeleryDeployment(Deployment):
    s3: S3Server
    commands: dict[str, tuple[list[str], dict[str, str]]]  # component -> (argv, env)

    def start(self, name: str) -> None:
        args, env = self.commands[name]
        with self.logs[name].open("ab") as log:
            self.processes[name] = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, worker: str) -> None:
        """SIGKILL a worker's process group and every process it started."""
        kill_group(self.processes[worker])


def _env(root: Path, port: int, metadata: str, backend: str, warehouse: str,
         s3: S3Server) -> dict[str, str]:
    env = _airflow_env(root, port, metadata, warehouse, root / "unused-landing")
    env.update(s3.env)
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # a killed worker: its task is failed (and retried) after the heartbeat timeout,
        # its unacknowledged message redelivered after the visibility timeout
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        # task logs to the same object store, read back by the api-server
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/logs",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
        # as in docker-compose.yml: credentials and endpoint from the AWS_* variables
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
        "CHW_LANDING": f"s3://{BUCKET}/landing",
        "CHW_REPORTS_DIR": f"s3://{BUCKET}/reports",
        "CHW_SCHEDULE_START": D1.isoformat(),
        "CHW_TASK_RETRIES": "1",
        "CHW_RETRY_DELAY": "2",
    })
    return env


def _worker_env(base: dict[str, str], root: Path, name: str) -> dict[str, str]:
    """A worker as a host of its own: folders, project copy and host name."""
    home = root / name
    project = home / "project"
    _copy_project(project)
    hostmod = home / "hostname"
    hostmod.mkdir()
    module = f"chw_host_{name.replace('-', '_')}"
    (hostmod / f"{module}.py").write_text(f"def hostname() -> str:\n    return {name!r}\n")
    (home / "airflow" / "logs").mkdir(parents=True)
    return {
        **base,
        "PYTHONPATH": str(hostmod),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{module}.hostname",
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "airflow" / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        "CHW_PROJECT_ROOT": str(project),
        "CHW_HOME": str(home / "chw-home"),
    }


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory,
               fresh_database_factory) -> Iterator[CeleryDeployment]:
    reason = _redis_reachable()
    if reason and os.environ.get("CHW_TEST_REQUIRE_REDIS"):
        pytest.fail(f"{reason}, and CHW_TEST_REQUIRE_REDIS is set (.ci/run)")
    if reason:
        pytest.skip(f"{reason}: the CeleryExecutor test needs it as its broker")
    root = tmp_path_factory.mktemp("celery")
    log_dir = root / "component-logs"
    log_dir.mkdir()
    with s3_server(log_dir) as s3:
        s3.make_bucket(BUCKET)
        landing = root / "landing"
        generate_landing(landing, accounts=24, start=D1, days=2, seed=11, history_days=60)
        s3.fs().put(str(landing) + "/", f"{BUCKET}/landing/", recursive=True)
        port = _free_port()
        warehouse = fresh_database_factory()
        env = _env(root, port, _sqlalchemy_url(fresh_database_factory()),
                   _sqlalchemy_url(fresh_database_factory()), warehouse, s3)
        (root / "airflow").mkdir()
        airflow = str(Path(sys.executable).parent / "airflow")
        _flush_broker()
        migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True,
                                 text=True, timeout=600)
        assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-5000:]
        commands = {
            "api-server": (["api-server", "--host", "127.0.0.1", "--port", str(port)], env),
            "scheduler": (["scheduler"], env),
            "dag-processor": (["dag-processor"], env),
            "triggerer": (["triggerer"], env),
        }
        for name in WORKERS:
            commands[name] = (["celery", "worker", "--celery-hostname", f"{name}@%h",
                               "--concurrency", "2", "--skip-serve-logs"],
                              _worker_env(env, root, name))
        deployment = CeleryDeployment(f"http://127.0.0.1:{port}", root, warehouse,
                                      landing, {n: log_dir / f"{n}.log" for n in commands})
        deployment.s3 = s3
        deployment.commands = {n: ([airflow, *a], e) for n, (a, e) in commands.items()}
        try:
            for name in commands:
                deployment.start(name)
            _wait_until_ready(deployment)
            yield deployment
        finally:
            stop_groups(deployment.processes.values())
            _flush_broker()


def _flush_broker() -> None:
    with socket.create_connection(REDIS, timeout=3) as sock:
        sock.sendall(f"*2\r\n$6\r\nSELECT\r\n${len(str(REDIS_DB))}\r\n{REDIS_DB}\r\n"
                     "*1\r\n$7\r\nFLUSHDB\r\n".encode())
        time.sleep(0.2)
        sock.recv(1024)


def _chw_run(deployment: CeleryDeployment, night: date, home: Path
             ) -> subprocess.CompletedProcess:
    return chw(["run", "--date", str(night)], home, UNREACHABLE_WAREHOUSE,
               CHW_AIRFLOW_API_URL=deployment.api_url, CHW_AIRFLOW_API_POLL="1",
               CHW_AIRFLOW_API_TOKEN="", CHW_AIRFLOW_API_USER="")


def _keys(s3: S3Server, prefix: str) -> set[str]:
    base = f"{BUCKET}/{prefix}"
    return {k[len(base) + 1:] for k in s3.fs().find(base)}


def _cat(s3: S3Server, key: str) -> str:
    return s3.fs().cat(f"{BUCKET}/{key}").decode()


def _dbt_runs(url: str, run_id: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """select clear_number, try_number, command, success, hostname,
                      jsonb_array_length(run_results -> 'results')
               from audit.dbt_runs where dag_run_id = %s order by 1, 2""",
            (run_id,)).fetchall()


def _assert_published(s3: S3Server, night: date, teams: int) -> set[str]:
    keys = _keys(s3, f"reports/{night}")
    assert {"index.html", "glossary.html", "quality.html", "dbt-docs/index.html"} <= keys, keys
    assert len([k for k in keys if k.startswith("teams/") and k.endswith(".html")]) == teams
    quality = _cat(s3, f"reports/{night}/quality.html")
    assert "The checks of this night" in quality
    assert "raw.billing_customers" in quality and "marts.customer_health" in quality
    return keys


def test_a_night_runs_on_both_workers_and_publishes_to_the_bucket(
        deployment: CeleryDeployment, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = _chw_run(deployment, D1, tmp_path)
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\n{deployment.tail()}"
    assert f"nightly run for {D1}: success" in proc.stderr
    run = deployment.run_of(D1)
    tis = deployment.task_instances(run["dag_run_id"])
    hosts = {ti["task_id"]: ti["hostname"] for ti in tis.values()}
    assert {ti["state"] for ti in tis.values()} == {"success"}
    assert set(hosts.values()) == set(WORKERS), hosts  # both workers took tasks
    print(f"\nnight {D1} in {time.monotonic() - started:.0f}s; tasks by worker: "
          + json.dumps({w: sorted(t for t, h in hosts.items() if h == w) for w in WORKERS}))
    with psycopg.connect(deployment.warehouse_url) as conn:
        teams = conn.execute(
            "select count(distinct account_team) from marts.customer_health"
            " where as_of_date = %s", (D1,)).fetchone()[0]
    night = _assert_published(deployment.s3, D1, teams)
    assert _keys(deployment.s3, "reports/latest") == night
    assert _cat(deployment.s3, "reports/LATEST").strip() == D1.isoformat()
    assert not [k for k in deployment.s3.fs().ls(f"{BUCKET}/reports") if "/.tmp-" in k]
    # the task logs went to the bucket, and the api-server reads them from there
    assert _keys(deployment.s3, "logs")
    quoted = urllib.parse.quote(run["dag_run_id"], safe="")
    log = deployment.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/"
                         "publish_reports/logs/1", full_content="true")
    assert "team report(s) to s3://" in json.dumps(log), log


def test_a_killed_worker_s_task_finishes_on_the_other(
        deployment: CeleryDeployment, tmp_path: Path) -> None:
    started = time.monotonic()
    follower = subprocess.Popen(
        [sys.executable, "-m", "customer_health.cli", "run", "--date", str(D2)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
             "CHW_HOME": str(tmp_path), "CHW_WAREHOUSE_URL": UNREACHABLE_WAREHOUSE,
             "CHW_AIRFLOW_API_URL": deployment.api_url, "CHW_AIRFLOW_API_POLL": "1",
             "CHW_AIRFLOW_API_TOKEN": "", "CHW_AIRFLOW_API_USER": ""},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, killed_wall = None, datetime.now(UTC)
    deadline = time.monotonic() + NIGHT_TIMEOUT
    while killed is None and time.monotonic() < deadline and follower.poll() is None:
        with contextlib.suppress(AssertionError, urllib.error.URLError, OSError):
            run = deployment.run_of(D2)
            ti = deployment.task_instances(run["dag_run_id"]).get("dbt_build", {})
            if ti.get("state") == "running" and ti.get("hostname") in WORKERS:
                killed = ti["hostname"]
                deployment.kill(killed)
                killed_wall = datetime.now(UTC)
        time.sleep(1)
    assert killed, f"dbt_build of {D2} never ran\n{deployment.tail()}"
    killed_at = time.monotonic()
    out, err = follower.communicate(timeout=NIGHT_TIMEOUT)
    assert follower.returncode == 0, f"{err[-3000:]}\n{deployment.tail()}"
    run = deployment.run_of(D2)
    ti = deployment.task_instances(run["dag_run_id"])["dbt_build"]
    survivor = next(w for w in WORKERS if w != killed)
    assert ti["state"] == "success" and ti["try_number"] == 2 and ti["hostname"] == survivor
    # the killed try recorded nothing, so the retry built everything on the survivor
    runs = _dbt_runs(deployment.warehouse_url, run["dag_run_id"])
    assert [(r[1], r[2], r[3], r[4]) for r in runs] == [(2, "build", True, survivor)], runs
    assert runs[0][5] > 0
    retried_after = datetime.fromisoformat(ti["start_date"]) - killed_wall
    print(f"\nnight {D2}: {killed} killed during dbt_build; its retry started on {survivor} "
          f"{retried_after.total_seconds():.0f}s later, the night ended "
          f"{time.monotonic() - killed_at:.0f}s later ({time.monotonic() - started:.0f}s)")
    with psycopg.connect(deployment.warehouse_url) as conn:
        teams = conn.execute(
            "select count(distinct account_team) from marts.customer_health"
            " where as_of_date = %s", (D2,)).fetchone()[0]
    _assert_published(deployment.s3, D2, teams)
    assert _cat(deployment.s3, "reports/LATEST").strip() == D2.isoformat()
    assert _cat(deployment.s3, "reports/latest/index.html") == \
        _cat(deployment.s3, f"reports/{D2}/index.html")
    deployment.start(killed)  # as `restart: always` brings it back


def test_a_rerun_night_is_rebuilt_not_skipped(deployment: CeleryDeployment,
                                              tmp_path: Path) -> None:
    before = deployment.run_of(D1)
    started = time.monotonic()
    proc = _chw_run(deployment, D1, tmp_path)
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\n{deployment.tail()}"
    after = deployment.run_of(D1)
    assert after["dag_run_id"] == before["dag_run_id"] and after["state"] == "success"
    runs = _dbt_runs(deployment.warehouse_url, after["dag_run_id"])
    # the first run's build and, under the next clear number, a full build again
    assert [(r[0] > 0, r[2], r[3]) for r in runs] == [(False, "build", True),
                                                      (True, "build", True)], runs
    assert runs[0][5] == runs[1][5] > 0  # as many nodes rebuilt as built the first time
    hosts = {ti["hostname"] for ti in deployment.task_instances(after["dag_run_id"]).values()}
    assert hosts <= set(WORKERS), hosts
    print(f"\nnight {D1} re-run (cleared, rebuilt: {runs[1][5]} dbt nodes) in "
          f"{time.monotonic() - started:.0f}s")
    # an earlier night re-published does not move latest
    assert _cat(deployment.s3, "reports/LATEST").strip() == D2.isoformat()
