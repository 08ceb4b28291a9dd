"""The raw gate: one suite per raw entity, validating one night's rows.

A night's batch is `raw.<table> where _export_date = <export date>` (a view: see
batches.py). Volume compares the night's row count with
the median of recent earlier nights *of the same kind* (full with full, delta with
delta): see docs/quality.md.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import psycopg
from psycopg import sql

from customer_health.contract import SYSTEMS, Entity, entities
from customer_health.quality.batches import BatchView, batch_schema
from customer_health.quality.config import WARN, QualityConfig, load_config
from customer_health.quality.context import open_context, sync_context, warehouse_env
from customer_health.quality.results import Outcome, QualityReport, ensure_results_table, store
from customer_health.quality.runner import run_suite
from customer_health.quality.suites import (
    LATEST_ALLOWED,
    VOLUME_MAX,
    VOLUME_MIN,
    raw_suite,
)
from customer_health.raw_schema import ensure_schemas

#: How far back the ledger is read for earlier nights of the same kind.
HISTORY_LOOKBACK_NIGHTS = 120


def latest_allowed(export_date: date) -> datetime:
    """The latest timestamp a night's rows may hold: the end of the day after the
    export date (an exporter that runs after midnight stamps rows of that early morning)."""
    return datetime.combine(export_date + timedelta(days=2), time(0), tzinfo=UTC)


def _manifest_full(landing: str | None, system: str, night: date) -> bool | None:
    """What the night's `_manifest.json` says about `full`; None without a readable one."""
    if landing is None:
        return None
    from customer_health.loading.landing import ExportFolder, ManifestError

    try:
        manifest = ExportFolder(landing, system, night).manifest()
    except (ManifestError, OSError):
        return None
    return None if manifest is None else manifest.full


def _nights(conn: psycopg.Connection, entity: Entity, before: date) -> list[date]:
    """Earlier nights of this entity whose last load attempt was not rejected, newest
    first; without any ledger rows (rows loaded by other means), the raw table's nights."""
    rows = conn.execute(
        "select export_date from (select distinct on (export_date) export_date, status"
        " from audit.load_ledger where system = %s and entity = %s and export_date < %s"
        " order by export_date, load_id desc) as t where status <> 'rejected'"
        " order by export_date desc limit %s",
        (entity.system, entity.name, before, HISTORY_LOOKBACK_NIGHTS),
    ).fetchall()
    if rows:
        return [r[0] for r in rows]
    query = sql.SQL(
        "select distinct _export_date from {} where _export_date < %s"
        " order by 1 desc limit %s"
    ).format(sql.Identifier("raw", entity.raw_table))
    return [r[0] for r in conn.execute(query, (before, HISTORY_LOOKBACK_NIGHTS)).fetchall()]


def _first_night(conn: psycopg.Connection, system: str) -> date | None:
    """The first night ever loaded of a system: from the ledger; without ledger rows
    (rows loaded by other means), the earliest night in the system's raw tables."""
    row = conn.execute(
        "select min(export_date) from audit.load_ledger where system = %s"
        " and status <> 'rejected'", (system,)).fetchone()
    if row[0] is not None:
        return row[0]
    firsts = sql.SQL(" union all ").join(
        sql.SQL("select min(_export_date) as d from {}").format(
            sql.Identifier("raw", e.raw_table)) for e in entities(system))
    return conn.execute(sql.SQL("select min(d) from ({}) as t").format(firsts)).fetchone()[0]


class _Kinds:
    """Whether a night of a system was a full export: its manifest says so when the
    landing area is given and holds it; otherwise the first night ever loaded of the
    system is full (the contract: the first export is full history), the others deltas."""

    def __init__(self, conn: psycopg.Connection, system: str, landing: str | None) -> None:
        self.system, self.landing = system, landing
        self.first = _first_night(conn, system)
        self._cache: dict[date, bool] = {}

    def full(self, night: date) -> bool:
        if night not in self._cache:
            said = _manifest_full(self.landing, self.system, night)
            first = self.first
            self._cache[night] = said if said is not None else (first is None or night <= first)
        return self._cache[night]


def volume_plan(conn: psycopg.Connection, entity: Entity, night: date, kinds: _Kinds,
                config: QualityConfig) -> dict:
    """Bounds for the night's row count, and how they were found."""
    rule = config.volume
    earlier = _nights(conn, entity, night)
    full = kinds.full(night)
    same = [n for n in earlier if kinds.full(n) == full][: rule.nights]
    counts = dict.fromkeys(same, 0)
    if same:
        query = sql.SQL(
            "select _export_date, count(*) from {} where _export_date = any(%s) group by 1"
        ).format(sql.Identifier("raw", entity.raw_table))
        counts.update(dict(conn.execute(query, (same,)).fetchall()))
    plan = {"kind": "full" if full else "delta", "earlier_nights": len(same),
            "counts": {n.isoformat(): c for n, c in sorted(counts.items())}}
    if not same:
        return {**plan, "min": 0, "max": None, "median": None}
    median = statistics.median(counts.values())
    low, high = rule.bounds(median)
    return {**plan, "min": low, "max": high, "median": median}


def _volume_adjust(plan: dict, config: QualityConfig):
    def adjust(outcome: Outcome) -> Outcome:
        details = {**outcome.details, "volume": plan}
        kind, n = plan["kind"], plan["earlier_nights"]
        if n == 0:
            return replace(outcome, severity=WARN, success=False, details=details,
                           observed_value=f"{outcome.observed_value} rows; not compared: no "
                           f"earlier {kind} night")
        text = (f"{outcome.observed_value} rows; expected {plan['min']}..{plan['max']} "
                f"(median {plan['median']:g} of {n} earlier {kind} night(s))")
        if n < config.volume.min_history:
            text += f"; only {n} earlier night(s), fewer than {config.volume.min_history}: warns"
            return replace(outcome, severity=WARN, observed_value=text, details=details)
        return replace(outcome, observed_value=text, details=details)

    return adjust


def validate_raw(url: str, export_date: date | str, run_id: str,
                 systems: list[str] | tuple[str, ...] | None = None,
                 landing: str | None = None) -> QualityReport:
    """Validate one night of raw data of the given systems (default: all); store one row
    per expectation in `audit.quality_results` and return the report (which raises
    nothing: call `raise_for_failures()`). `landing`, when given, is read for the
    nights' manifests (full or delta)."""
    night = date.fromisoformat(export_date) if isinstance(export_date, str) else export_date
    chosen = tuple(systems) if systems else SYSTEMS
    for system in chosen:
        if system not in SYSTEMS:
            raise ValueError(f"unknown system {system!r}: expected one of {', '.join(SYSTEMS)}")
    config = load_config()
    report = QualityReport(gate="raw", run_id=run_id, as_of_date=night)
    specs = [(e, raw_suite(e)) for s in chosen for e in entities(s)]
    views = [BatchView(spec.table, "raw", e.raw_table, "_export_date", night)
             for e, spec in specs]
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schemas(conn)
        ensure_results_table(conn)
        kinds = {s: _Kinds(conn, s, landing) for s in chosen}
        plans = {e: volume_plan(conn, e, night, kinds[e.system], config) for e, _ in specs}
        with batch_schema(conn, views) as schema, warehouse_env(url, schema):
            context = open_context()
            sync_context(context, tuple(spec for _, spec in specs))
            for entity, spec in specs:
                plan = plans[entity]
                params = {LATEST_ALLOWED: latest_allowed(night),
                          VOLUME_MIN: plan["min"], VOLUME_MAX: plan["max"]}
                outcomes, ids = run_suite(context, spec, config, run_id, None, params,
                                          adjust={"volume": _volume_adjust(plan, config)})
                report.outcomes.extend(outcomes)
                report.validation_ids.extend(ids)
        store(conn, report)
    return report


__all__ = ["latest_allowed", "validate_raw", "volume_plan"]
