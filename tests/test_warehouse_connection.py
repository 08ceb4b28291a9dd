"""One owner for the warehouse connection (customer_health.warehouse_connection): the
Airflow connection `chw_warehouse`, from any source Airflow reads, wins over
`CHW_WAREHOUSE_URL`; psycopg, GX's SQLAlchemy engine and dbt reach the same server with
every extra of the connection; nothing leaves `os.environ` changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from psycopg.conninfo import conninfo_to_dict

from customer_health import warehouse, warehouse_connection
from customer_health.warehouse_connection import (
    UnusableConnection,
    WarehouseNotConfigured,
    as_connection_json,
    conninfo_from_connection,
    dbt_env,
)

EXTRAS = {"sslmode": "disable", "connect_timeout": "7", "application_name": "chw-test"}
#: Where CHW_WAREHOUSE_URL points while a connection is defined: nothing listens there.
ELSEWHERE = "postgresql://nobody@127.0.0.1:1/none"

#: Run in a child (Airflow reads its configuration, secrets backend included, once per
#: process): resolve the warehouse, then ask the server, through each client, which
#: application_name and SSL state the session has, and whether os.environ changed.
PROBE = r"""
import json, os, sys
import airflow.sdk, dbt.cli.main, psycopg, psycopg.conninfo, sqlalchemy
from customer_health import warehouse_connection
from customer_health.modelling import transform
from customer_health.quality.context import open_context
from customer_health.quality.suites import RAW_DATASOURCE

SESSION = ("select a.application_name, s.ssl from pg_stat_activity a join pg_stat_ssl s"
           " using (pid) where a.pid = pg_backend_pid()")
before = dict(os.environ)
out = {}
target = warehouse_connection.configured()
out["source"] = target.source
out["params"] = psycopg.conninfo.conninfo_to_dict(target.conninfo)

def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:
        out[name] = "error: " + str(exc)

def by_psycopg():
    with psycopg.connect(target.conninfo) as conn:
        timeout = conn.info.get_parameters().get("connect_timeout")
        return [*conn.execute(SESSION).fetchone(), timeout]

def by_gx():
    engine = open_context(url=target.conninfo, schema="public").data_sources.get(
        RAW_DATASOURCE).get_engine()
    try:
        with engine.connect() as conn:
            return list(conn.execute(sqlalchemy.text(SESSION)).fetchone())
    finally:
        engine.dispose()

def by_dbt():
    result = transform.run_dbt(["show", "--inline", "select current_setting('application_name')"
                                " as app, (select ssl from pg_stat_ssl where pid ="
                                " pg_backend_pid()) as ssl"], target.conninfo)
    return [list(row) for row in result.raw.results[0].agate_table.rows][0]

attempt("psycopg", by_psycopg)
attempt("gx", by_gx)
if sys.argv[1] == "dbt":
    attempt("dbt", by_dbt)
after = dict(os.environ)
out["environ_changed"] = sorted(k for k in before.keys() | after.keys()
                                if before.get(k) != after.get(k))
print("PROBE " + json.dumps(out))
"""


def _probe(env: dict[str, str], home: Path, with_dbt: bool = True) -> dict:
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__SECRETS__"))}
    child_env.update(CHW_HOME=str(home), **env)
    done = subprocess.run([sys.executable, "-c", PROBE, "dbt" if with_dbt else "no-dbt"],
                          env=child_env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("PROBE "))


def _uri(params: dict[str, str], extras: dict[str, str]) -> str:
    from urllib.parse import quote, urlencode

    auth = quote(params["user"], safe="")
    if params.get("password"):
        auth += ":" + quote(params["password"], safe="")
    return (f"postgres://{auth}@{params['host']}:{params['port']}/{params['dbname']}?"
            + urlencode(extras))


def _fields(params: dict[str, str], extras: dict[str, str]) -> dict:
    fields = {"conn_type": "postgres", "host": params["host"], "port": int(params["port"]),
              "login": params["user"], "schema": params["dbname"], "extra": extras}
    if params.get("password"):
        fields["password"] = params["password"]
    return fields


def _definitions(url: str, tmp: Path) -> dict[str, dict[str, str]]:
    """The connection with EXTRAS, defined three ways."""
    params = conninfo_to_dict(url)
    connections_file = tmp / "connections.json"
    connections_file.write_text(json.dumps({"chw_warehouse": _fields(params, EXTRAS)}))
    return {
        "uri": {"AIRFLOW_CONN_CHW_WAREHOUSE": _uri(params, EXTRAS)},
        "json": {"AIRFLOW_CONN_CHW_WAREHOUSE": json.dumps(_fields(params, EXTRAS))},
        "secrets backend": {
            "AIRFLOW__SECRETS__BACKEND":
                "airflow.secrets.local_filesystem.LocalFilesystemBackend",
            "AIRFLOW__SECRETS__BACKEND_KWARGS":
                json.dumps({"connections_file_path": str(connections_file)}),
        },
    }


@pytest.mark.parametrize("how", ["uri", "json", "secrets backend"])
def test_the_connection_with_its_extras_reaches_psycopg_gx_and_dbt(
        how: str, fresh_database: Callable[[], str], tmp_path: Path, chw_home: Path) -> None:
    url = fresh_database()
    definition = _definitions(url, tmp_path)[how]
    out = _probe({**definition, "CHW_WAREHOUSE_URL": ELSEWHERE}, chw_home)
    assert out["source"] == "the Airflow connection 'chw_warehouse'"  # not CHW_WAREHOUSE_URL
    expected = {k: v for k, v in conninfo_to_dict(url).items() if k != "password"}
    assert {k: v for k, v in out["params"].items() if k != "password"} == {**expected, **EXTRAS}
    # the server's own view of each client's session: the name and sslmode=disable arrived
    assert out["psycopg"] == ["chw-test", False, "7"]
    assert out["gx"] == ["chw-test", False]
    assert out["dbt"] == ["chw-test", False]
    assert out["environ_changed"] == []


def test_sslmode_require_reaches_every_client(
        fresh_database: Callable[[], str], chw_home: Path) -> None:
    """On a server without SSL (the machine's service, the embedded one) each client
    fails naming SSL; on one with SSL each session is encrypted. Either way the extra
    arrived: without it libpq would have settled for a plain session (sslmode=prefer)."""
    url = fresh_database()
    params = conninfo_to_dict(url)
    extras = {"sslmode": "require", "application_name": "chw-test"}
    out = _probe({"AIRFLOW_CONN_CHW_WAREHOUSE": _uri(params, extras)}, chw_home)
    for client in ("psycopg", "gx", "dbt"):
        seen = out[client]
        if isinstance(seen, str):
            assert seen.startswith("error: ") and "SSL" in seen, (client, seen)
        else:
            assert seen[:2] == ["chw-test", True], (client, seen)
    assert out["environ_changed"] == []


def test_chw_warehouse_url_is_used_when_no_connection_is_defined(
        warehouse_url: str, chw_home: Path) -> None:
    out = _probe({"CHW_WAREHOUSE_URL": warehouse_url + " application_name=from-url"},
                 chw_home, with_dbt=False)
    assert out["source"] == "CHW_WAREHOUSE_URL"
    assert (out["psycopg"][0], out["gx"][0]) == ("from-url", "from-url"), out


def test_a_task_without_either_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHW_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_CHW_WAREHOUSE", raising=False)
    assert warehouse_connection.configured() is None
    with pytest.raises(WarehouseNotConfigured, match="chw_warehouse.*CHW_WAREHOUSE_URL"):
        warehouse_connection.task_conninfo()


def test_chw_hands_its_warehouse_to_its_tasks_as_the_connection(
        warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`chw run` checks a warehouse and starts the night's tasks: for the duration, the
    one it checked is the connection the tasks find first (os.environ is restored)."""
    monkeypatch.delenv("AIRFLOW_CONN_CHW_WAREHOUSE", raising=False)
    monkeypatch.setenv("CHW_WAREHOUSE_URL", warehouse_url + " connect_timeout=9")
    before = dict(os.environ)
    with warehouse.warehouse_session() as conninfo:
        handed = os.environ["AIRFLOW_CONN_CHW_WAREHOUSE"]
        assert warehouse_connection.configured().is_connection
    assert dict(os.environ) == before
    from airflow.models.connection import Connection

    conn = Connection.from_json(handed, conn_id="chw_warehouse")
    assert conninfo_to_dict(conninfo_from_connection(conn)) == conninfo_to_dict(conninfo)
    assert conninfo_to_dict(conninfo)["connect_timeout"] == "9"


def test_conninfo_and_connection_json_are_inverse() -> None:
    from airflow.models.connection import Connection

    conninfo = ("host='/tmp/pg sock' port=5433 user=chw password=s@cret:x dbname=wh "
                "sslmode=verify-full sslrootcert=/certs/ca.pem options='-c statement_timeout=5s'")
    conn = Connection.from_json(as_connection_json(conninfo), conn_id="chw_warehouse")
    assert conninfo_to_dict(conninfo_from_connection(conn)) == conninfo_to_dict(conninfo)


def test_an_extra_libpq_does_not_know_is_refused_not_dropped() -> None:
    from airflow.models.connection import Connection

    conn = Connection(conn_id="chw_warehouse",
                      uri="postgres://u:p@h:5432/d?sslmode=require&sslrootcrt=%2Fca.pem")
    with pytest.raises(UnusableConnection, match="sslrootcrt"):
        conninfo_from_connection(conn)
    # the postgres hook's own options are not libpq's, and are left out as the hook does
    hooked = Connection(conn_id="chw_warehouse",
                        uri="postgres://u:p@h:5432/d?cursor=dictcursor&sslmode=require")
    assert conninfo_to_dict(conninfo_from_connection(hooked))["sslmode"] == "require"


def test_dbt_gets_every_parameter_through_its_profile_or_libpq() -> None:
    env = dbt_env("host=h port=1 user=u password=p dbname=d sslmode=verify-full "
                  "sslrootcert=/ca.pem sslcert=/c.pem sslkey=/k.pem connect_timeout=7 "
                  "keepalives_idle=30 application_name=a options='-c work_mem=64MB' "
                  "target_session_attrs=read-write")
    assert {k: v for k, v in env.items() if k.startswith("CHW_DBT_")} == {
        "CHW_DBT_HOST": "h", "CHW_DBT_PORT": "1", "CHW_DBT_USER": "u",
        "CHW_DBT_PASSWORD": "p", "CHW_DBT_DBNAME": "d", "CHW_DBT_SSLMODE": "verify-full",
        "CHW_DBT_SSLROOTCERT": "/ca.pem", "CHW_DBT_SSLCERT": "/c.pem",
        "CHW_DBT_SSLKEY": "/k.pem", "CHW_DBT_CONNECT_TIMEOUT": "7",
        "CHW_DBT_KEEPALIVES_IDLE": "30", "CHW_DBT_APPLICATION_NAME": "a"}
    assert env["PGOPTIONS"] == "-c work_mem=64MB"
    assert env["PGTARGETSESSIONATTRS"] == "read-write"
    with pytest.raises(UnusableConnection, match="keepalives_count"):
        dbt_env("host=h dbname=d keepalives_count=3")


def test_the_profile_reads_every_variable_dbt_env_sets() -> None:
    from customer_health import settings
    from customer_health.warehouse_connection import DBT_PROFILE_ENV

    profile = (settings.dbt_project_dir() / "profiles.yml").read_text()
    for variable in DBT_PROFILE_ENV.values():
        assert f"env_var('{variable}'" in profile, variable


def test_cosmos_tasks_get_the_warehouse_in_their_env_and_leave_os_environ_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode's interceptor: the profile's variables go into the operator's env, and
    what Cosmos writes into os.environ during the run (its OpenLineage step copies the
    whole env there) is undone, also when dbt fails."""
    from customer_health.modelling.dbt_cosmos import point_at_warehouse

    monkeypatch.delenv("CHW_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_CHW_WAREHOUSE", json.dumps(
        {"conn_type": "postgres", "host": "db.example", "login": "chw", "schema": "chw",
         "extra": {"sslmode": "verify-full", "sslrootcert": "/certs/ca.pem"}}))

    def run_command(cmd, env, context):
        os.environ.update(env)  # as Cosmos' OpenLineage step does
        os.environ["PATH"] = "/changed"
        raise RuntimeError("dbt failed")

    operator = SimpleNamespace(env={"KEEP": "1"}, run_command=run_command)
    before = dict(os.environ)
    point_at_warehouse({}, operator)
    assert operator.env["KEEP"] == "1"
    assert operator.env["CHW_DBT_HOST"] == "db.example"
    assert operator.env["CHW_DBT_SSLROOTCERT"] == "/certs/ca.pem"
    with pytest.raises(RuntimeError, match="dbt failed"):
        operator.run_command(["run"], operator.env, {})
    assert dict(os.environ) == before


def test_the_local_mode_dag_points_each_dbt_task_at_the_warehouse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from customer_health import settings
    from customer_health.modelling.dbt_cosmos import point_at_warehouse

    monkeypatch.setenv("CHW_DBT_EXECUTION_MODE", "local")
    bag = DagBag(dag_folder=str(settings.dags_folder()))
    dbt_tasks = [t for t in bag.dags["customer_health_nightly"].tasks
                 if t.task_id.startswith("transform.")]
    assert dbt_tasks
    assert all(t.interceptors == [point_at_warehouse] for t in dbt_tasks)
    assert all(t._pre_execute_hook is None for t in dbt_tasks)  # nothing sets os.environ


def test_chw_warehouse_url_prints_the_connection_before_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from customer_health.cli import main

    monkeypatch.setenv("CHW_WAREHOUSE_URL", ELSEWHERE)
    monkeypatch.setenv("AIRFLOW_CONN_CHW_WAREHOUSE",
                       "postgres://chw@db.example:6543/wh?sslmode=verify-full&connect_timeout=7")
    result = CliRunner().invoke(main, ["warehouse", "url"])
    assert result.exit_code == 0, result.output
    assert conninfo_to_dict(result.stdout.strip().splitlines()[-1]) == {
        "host": "db.example", "port": "6543", "user": "chw", "dbname": "wh",
        "sslmode": "verify-full", "connect_timeout": "7"}
    start = CliRunner().invoke(main, ["warehouse", "start"])
    assert start.exit_code == 1
    assert "the Airflow connection 'chw_warehouse'" in start.output
