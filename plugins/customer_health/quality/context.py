"""The GX file context under `expectations/gx/`, and its connection to the warehouse.

The committed `great_expectations.yml` names its two data sources' connection strings
only as `${CHW_GX_RAW_URL}` and `${CHW_GX_MARTS_URL}`: `warehouse_env` sets them, for
the duration of one validation, from the URL the caller passed, with the schema of that
validation's batch views as the session's `search_path` (see batches.py), so one
committed table asset serves any night and any mart schema (`marts`, `marts_staging`).
No connection string is ever written to a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from customer_health import settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # before GX is imported

import great_expectations as gx  # noqa: E402
from great_expectations.data_context import FileDataContext  # noqa: E402

from customer_health.quality.suites import (  # noqa: E402
    MARTS_DATASOURCE,
    RAW_DATASOURCE,
    SuiteSpec,
    all_suites,
    expectation_name,
)

log = logging.getLogger(__name__)

URL_ENV = {RAW_DATASOURCE: "CHW_GX_RAW_URL", MARTS_DATASOURCE: "CHW_GX_MARTS_URL"}
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}


def sqlalchemy_url(url: str, schema: str) -> str:
    """A libpq URI or key=value string as an SQLAlchemy (psycopg 3) URL whose sessions
    read `schema` first."""
    from sqlalchemy.engine import URL

    params = conninfo_to_dict(url)
    options = params.pop("options", "")
    search_path = f"-csearch_path={schema}"
    params["options"] = f"{options} {search_path}".strip()
    host = params.pop("host", None)
    port = params.pop("port", None)
    query = {k: str(v) for k, v in params.items()
             if k not in ("user", "password", "dbname")}
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


@contextlib.contextmanager
def warehouse_env(url: str, schema: str) -> Iterator[None]:
    """Point the context's data sources at this warehouse, reading `schema` first, for
    the duration of the block."""
    values = {name: sqlalchemy_url(url, schema) for name in URL_ENV.values()}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def context_root(root: Path | None = None) -> Path:
    return root or settings.expectations_dir()


def open_context(root: Path | None = None) -> FileDataContext:
    """The file context (created on first use). Open a new one per validation: a data
    source caches its engine, and the URL behind `${...}` changes from call to call."""
    return gx.get_context(mode="file", project_root_dir=str(context_root(root)))


def _signature(expectations) -> list[str]:
    return [
        json.dumps({"type": e.expectation_type, "kwargs": e.configuration.kwargs,
                    "meta": e.meta, "description": e.description}, sort_keys=True, default=str)
        for e in expectations
    ]


def _ensure_datasource(context: FileDataContext, name: str, changes: list[str]):
    placeholder = "${" + URL_ENV[name] + "}"
    try:
        ds = context.data_sources.get(name)
    except (KeyError, ValueError):
        ds = None
    if ds is None or str(ds.connection_string) != placeholder:
        ds = context.data_sources.add_or_update_postgres(name, connection_string=placeholder)
        changes.append(f"data source {name}")
    return ds


def _ensure_suite(context: FileDataContext, spec: SuiteSpec, changes: list[str]):
    try:
        suite = context.suites.get(spec.name)
    except Exception:  # noqa: BLE001 (GX raises its own not-found types)
        suite = None
    if suite is not None and _signature(suite.expectations) == _signature(spec.expectations):
        return suite
    if suite is None:
        suite = context.suites.add(gx.ExpectationSuite(name=spec.name))
    for old in list(suite.expectations):
        suite.delete_expectation(old)
    for expectation in spec.expectations:
        suite.add_expectation(expectation.copy(deep=True))
    suite.save()
    changes.append(f"suite {spec.name}")
    return suite


def _ensure_spec(context: FileDataContext, spec: SuiteSpec, changes: list[str]) -> None:
    ds = _ensure_datasource(context, spec.datasource, changes)
    try:
        asset = ds.get_asset(spec.table)
    except LookupError:
        asset = ds.add_table_asset(spec.table, table_name=spec.table)
        changes.append(f"asset {spec.datasource}.{spec.table}")
    try:
        batch = asset.get_batch_definition(spec.batch_definition)
    except KeyError:
        batch = asset.add_batch_definition_whole_table(spec.batch_definition)
        changes.append(f"batch definition {spec.table}.{spec.batch_definition}")
    suite = _ensure_suite(context, spec, changes)
    try:
        definition = context.validation_definitions.get(spec.name)
    except Exception:  # noqa: BLE001
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=spec.name, data=batch, suite=suite))
        changes.append(f"validation definition {spec.name}")
    try:
        context.checkpoints.get(spec.name)
    except Exception:  # noqa: BLE001
        context.checkpoints.add(gx.Checkpoint(
            name=spec.name, validation_definitions=[definition], result_format=RESULT_FORMAT))
        changes.append(f"checkpoint {spec.name}")


def sync_context(context: FileDataContext, specs: tuple[SuiteSpec, ...] | None = None,
                 ) -> list[str]:
    """Make the file context hold every suite (and its data source, asset, batch
    definition, validation definition and checkpoint) as `suites.py` defines it.
    Writes only what differs; returns what it changed (empty when in sync)."""
    changes: list[str] = []
    for spec in specs or all_suites():
        _ensure_spec(context, spec, changes)
    if changes:
        log.info("GX context updated: %s", ", ".join(changes))
    return changes


__all__ = ["expectation_name", "open_context", "sqlalchemy_url", "sync_context",
           "warehouse_env"]
