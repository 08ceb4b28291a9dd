"""The GX file context under `expectations/gx/`, and its connection to the warehouse.

The committed `great_expectations.yml` names its two data sources' connection strings
only as `${CHW_GX_RAW_URL}` and `${CHW_GX_MARTS_URL}`: `open_context(url=..., schema=...)`
gives them, as the context's runtime environment (never `os.environ`), the warehouse the
caller passed, every connection parameter kept
(customer_health.warehouse_connection.sqlalchemy_url), with the schema of that
validation's batch views as the session's `search_path` (see batches.py), so one
committed table asset serves any night and any mart schema (`marts`, `marts_staging`).
No connection string is ever written to a file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from customer_health import settings
from customer_health.warehouse_connection import sqlalchemy_url

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


def warehouse_environment(url: str, schema: str) -> dict[str, str]:
    """The values of the data sources' `${...}` placeholders: this warehouse, with every
    parameter of its connection, its sessions reading `schema` first."""
    target = sqlalchemy_url(url, search_path=schema)
    return {name: target for name in URL_ENV.values()}


def context_root(root: Path | None = None) -> Path:
    return root or settings.expectations_dir()


def open_context(root: Path | None = None, url: str | None = None,
                 schema: str | None = None) -> FileDataContext:
    """The file context (created on first use); with `url`, its data sources point at
    that warehouse reading `schema` first (GX's runtime environment, not `os.environ`).
    Open a new one per validation: a data source caches its engine."""
    runtime = warehouse_environment(url, schema or "public") if url else None
    return gx.get_context(mode="file", project_root_dir=str(context_root(root)),
                          runtime_environment=runtime)


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


__all__ = ["expectation_name", "open_context", "sync_context", "warehouse_environment"]
