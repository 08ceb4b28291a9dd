"""Which warehouse the project works on, and how each client is pointed at it.

The warehouse is the first of:

1. the Airflow connection `chw_warehouse`, from wherever Airflow looks in this process:
   the configured secrets backend (`[secrets] backend`), `AIRFLOW_CONN_CHW_WAREHOUSE`
   (a URI or JSON) and, in a task, the metadata database through the API server;
2. `CHW_WAREHOUSE_URL` (a libpq URI or key=value string);
3. for the `chw` command only: the embedded PostgreSQL (`customer_health.warehouse`).
   A task with neither 1 nor 2 fails, naming both.

The target is one libpq conninfo that holds every parameter of the connection, its
extras included (sslmode, sslrootcert, connect_timeout, application_name, options...).
psycopg takes it as it is; `sqlalchemy_url` turns it into GX's SQLAlchemy URL and
`dbt_env` into the variables `dbt_project/profiles.yml` reads. No function here changes
`os.environ`.
"""

from __future__ import annotations

import configparser
import json
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_health import settings

WAREHOUSE_CONN_ID = "chw_warehouse"
CONN_ENV = "AIRFLOW_CONN_CHW_WAREHOUSE"
URL_ENV = "CHW_WAREHOUSE_URL"

#: libpq parameter -> the variable `dbt_project/profiles.yml` reads it from (the
#: dbt-postgres profile's own fields). Any other parameter reaches dbt's libpq through
#: libpq's own environment variable (PGOPTIONS, PGTARGETSESSIONATTRS, ...).
DBT_PROFILE_ENV = {
    "host": "CHW_DBT_HOST",
    "port": "CHW_DBT_PORT",
    "user": "CHW_DBT_USER",
    "password": "CHW_DBT_PASSWORD",
    "dbname": "CHW_DBT_DBNAME",
    "sslmode": "CHW_DBT_SSLMODE",
    "sslrootcert": "CHW_DBT_SSLROOTCERT",
    "sslcert": "CHW_DBT_SSLCERT",
    "sslkey": "CHW_DBT_SSLKEY",
    "connect_timeout": "CHW_DBT_CONNECT_TIMEOUT",
    "keepalives_idle": "CHW_DBT_KEEPALIVES_IDLE",
    "application_name": "CHW_DBT_APPLICATION_NAME",
}


class WarehouseNotConfigured(RuntimeError):
    """Neither the Airflow connection nor CHW_WAREHOUSE_URL names a warehouse."""


class UnusableConnection(ValueError):
    """The `chw_warehouse` connection holds something the project cannot hand on."""


@dataclass(frozen=True)
class Target:
    """The warehouse: a libpq conninfo with every parameter, and where it came from."""

    conninfo: str
    source: str
    #: True when it is the Airflow connection `chw_warehouse` itself.
    is_connection: bool = False


def configured() -> Target | None:
    """The configured warehouse (1 or 2 of the module's list), or None."""
    conn = airflow_connection()
    if conn is not None:
        return Target(conninfo_from_connection(conn),
                      f"the Airflow connection {WAREHOUSE_CONN_ID!r}", is_connection=True)
    url = settings.warehouse_url_setting()
    if url is not None:
        return Target(url, URL_ENV)
    return None


def task_conninfo() -> str:
    """The warehouse a task works on. Tasks never start the embedded server: `chw run`
    starts it and hands it down as the connection (customer_health.warehouse)."""
    target = configured()
    if target is None:
        raise WarehouseNotConfigured(
            f"no warehouse configured: define the Airflow connection {WAREHOUSE_CONN_ID!r} "
            f"({CONN_ENV} or a secrets backend) or set {URL_ENV}"
        )
    return target.conninfo


def airflow_connection() -> Any | None:
    """The `chw_warehouse` connection as Airflow finds it here, or None when undefined.

    A process that has not imported Airflow (the `chw` command) skips the lookup when no
    source outside the metadata database could hold the connection, which is all
    Airflow's lookup would consult there: importing Airflow takes seconds."""
    if "airflow" not in sys.modules and not _connection_may_be_defined():
        return None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        return None


def _connection_may_be_defined() -> bool:
    if os.environ.get(CONN_ENV):
        return True
    if any(os.environ.get(f"AIRFLOW__SECRETS__BACKEND{suffix}") for suffix in ("", "_CMD",
                                                                                 "_SECRET")):
        return True
    home = os.environ.get("AIRFLOW_HOME") or str(settings.airflow_home())
    cfg = Path(os.environ.get("AIRFLOW_CONFIG") or Path(home) / "airflow.cfg")
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(cfg, encoding="utf-8")
    except configparser.Error:
        return True  # let Airflow itself read (and complain about) its configuration
    return bool(parser.get("secrets", "backend", fallback="").strip())


def conninfo_from_connection(conn: Any) -> str:
    """An Airflow postgres connection as a libpq conninfo, its extras included, as the
    postgres provider's hook hands them to the driver (minus the hook's own options)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    if conn.conn_type not in ("postgres", "postgresql"):
        raise UnusableConnection(
            f"the Airflow connection {WAREHOUSE_CONN_ID!r} is of type {conn.conn_type!r},"
            " not postgres")
    extra = conn.extra_dejson
    if extra.get("iam"):
        raise UnusableConnection(
            f"the Airflow connection {WAREHOUSE_CONN_ID!r} asks for IAM authentication,"
            " which dbt and Great Expectations cannot use: give it a login and password")
    params: dict[str, Any] = {"host": conn.host, "port": conn.port, "user": conn.login,
                              "password": conn.password, "dbname": conn.schema}
    params.update({k: v for k, v in extra.items() if k not in PostgresHook.ignored_extra_options})
    unknown = sorted(set(params) - set(_libpq_env()))
    if unknown:
        raise UnusableConnection(
            f"the Airflow connection {WAREHOUSE_CONN_ID!r} has extras libpq does not know:"
            f" {', '.join(unknown)}")
    return make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})


def as_connection_json(conninfo: str) -> str:
    """A conninfo as an Airflow connection in JSON (for `AIRFLOW_CONN_CHW_WAREHOUSE`),
    the inverse of `conninfo_from_connection`."""
    params = conninfo_to_dict(conninfo)
    fields = {"conn_type": "postgres", "host": params.pop("host", None),
              "port": int(params.pop("port")) if params.get("port") else None,
              "login": params.pop("user", None), "password": params.pop("password", None),
              "schema": params.pop("dbname", None)}
    fields = {k: v for k, v in fields.items() if v is not None}
    if params:
        fields["extra"] = {k: str(v) for k, v in params.items()}
    return json.dumps(fields)


def sqlalchemy_url(conninfo: str, search_path: str | None = None) -> str:
    """The conninfo as an SQLAlchemy (psycopg 3) URL with every parameter; with
    `search_path`, its sessions read that schema first."""
    from sqlalchemy.engine import URL

    params = conninfo_to_dict(conninfo)
    if search_path:
        params["options"] = f"{params.get('options', '')} -csearch_path={search_path}".strip()
    host = params.pop("host", None)
    port = params.pop("port", None)
    query = {k: str(v) for k, v in params.items() if k not in ("user", "password", "dbname")}
    if host and host.startswith("/"):
        query["host"], host = host, None
    return URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        password=params.get("password"),
        host=host,
        port=int(port) if port else None,
        database=params.get("dbname"),
        query=query,
    ).render_as_string(hide_password=False)


def dbt_env(conninfo: str) -> dict[str, str]:
    """The environment of one dbt invocation on this warehouse: the `CHW_DBT_*`
    variables `profiles.yml` reads, and libpq's own variable for any other parameter.

    Raises UnusableConnection for a parameter dbt cannot be given either way."""
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}
    env = {
        "CHW_DBT_HOST": params.pop("host", "") or "127.0.0.1",
        "CHW_DBT_PORT": params.pop("port", "") or "5432",
        "CHW_DBT_USER": params.pop("user", "") or os.environ.get("PGUSER") or "postgres",
        "CHW_DBT_PASSWORD": params.pop("password", ""),
        "CHW_DBT_DBNAME": params.pop("dbname", "") or "chw",
        "CHW_REPORTING_CURRENCY": settings.reporting_currency(),
    }
    libpq_env = _libpq_env()
    lost = []
    for key, value in params.items():
        name = DBT_PROFILE_ENV.get(key) or libpq_env.get(key)
        if name is None:
            lost.append(key)
        else:
            env[name] = value
    if lost:
        raise UnusableConnection(
            f"dbt cannot be given the warehouse parameter(s) {', '.join(sorted(lost))}: "
            "dbt-postgres has no profile field for them and libpq no environment variable")
    return env


@cache
def _libpq_env() -> dict[str, str | None]:
    """Every libpq connection parameter -> its environment variable (None: has none)."""
    return {o.keyword.decode(): o.envvar.decode() if o.envvar else None
            for o in pq.Conninfo.get_defaults()}


__all__ = ["DBT_PROFILE_ENV", "Target", "UnusableConnection", "WarehouseNotConfigured",
           "airflow_connection", "as_connection_json", "configured", "conninfo_from_connection",
           "dbt_env", "sqlalchemy_url", "task_conninfo"]
