"""The raw gate: one suite per raw entity, validating one night's rows.

A night's batch is `raw.<table> where _export_date = <export date>` (a view: see
batches.py). Volume compares the night's row count with the median of earlier nights
*of the same kind* (full with full; a delta with deltas of the same weekday, or of the
same month day for billing's month end): the rule is in volume.py, the counts come from
the ledger of loads. See docs/quality.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import psycopg
from psycopg import sql

from customer_health.contract import SYSTEMS, Entity, entities
from customer_health.loading.raw_schema import ensure_schemas
from customer_health.quality.batches import BatchView, batch_schema
from customer_health.quality.config import WARN, QualityConfig, load_config
from customer_health.quality.context import open_context, sync_context
from customer_health.quality.results import Outcome, QualityReport, ensure_results_table, store
from customer_health.quality.runner import run_suite
from customer_health.quality.suites import (
    LATEST_ALLOWED,
    VOLUME_MAX,
    VOLUME_MIN,
    raw_suite,
)
from customer_health.quality.volume import (
    PASS,
    Baseline,
    baseline,
    month_end_rhythm,
    verdict,
)


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


def earlier_counts(conn: psycopg.Connection, entity: Entity, before: date,
                   lookback_days: int) -> dict[date, int]:
    """Rows of each earlier night of this entity within `lookback_days` before `before`,
    from the ledger: the rows loaded by the night's last load (a `skipped` re-delivery
    changes nothing; a night whose last load was rejected is left out). Without any ledger
    rows of the entity (rows loaded by other means), counted in the raw table."""
    since = before - timedelta(days=lookback_days)
    rows = conn.execute(
        "select export_date, status, rows_loaded from (select distinct on (export_date)"
        " export_date, status, rows_loaded from audit.load_ledger where system = %s"
        " and entity = %s and export_date >= %s and export_date < %s and status <> 'skipped'"
        " order by export_date, load_id desc) as t",
        (entity.system, entity.name, since, before),
    ).fetchall()
    if rows:
        return {d: n for d, status, n in rows if status != "rejected"}
    known = conn.execute("select exists (select from audit.load_ledger where system = %s"
                         " and entity = %s)", (entity.system, entity.name)).fetchone()[0]
    if known:
        return {}
    query = sql.SQL(
        "select _export_date, count(*) from {} where _export_date >= %s"
        " and _export_date < %s group by 1"
    ).format(sql.Identifier("raw", entity.raw_table))
    return dict(conn.execute(query, (since, before)).fetchall())


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
                config: QualityConfig) -> Baseline:
    """The band for the night's row count, and the earlier nights it came from."""
    rule = config.volume
    counts = earlier_counts(conn, entity, night, rule.lookback_days)
    return baseline(night, kinds.full(night), counts, rule,
                    month_end_rhythm(rule, f"raw.{entity.raw_table}"), kinds.full)


def _plan_details(base: Baseline) -> dict:
    return {"kind": base.kind.label, "quiet_period": base.quiet,
            "earlier_nights": base.nights, "median": base.median,
            "min": base.low, "max": base.high,
            "counts": {d.isoformat(): n for d, n in base.counts.items()}}


def _volume_adjust(base: Baseline, config: QualityConfig):
    """GX checked the count against the band; the rule adds why, and what a miss means:
    a warning with too little history or on a short quiet night, else the configured
    severity (block unless CHW_QUALITY_SEVERITY or quality.yml say warn)."""
    def adjust(outcome: Outcome) -> Outcome:
        details = {**outcome.details, "volume": _plan_details(base)}
        observed = outcome.details.get("result", {}).get("observed_value")
        if "exception" in outcome.details or observed is None:
            return replace(outcome, details=details)
        judged = verdict(int(observed), base, config.volume)
        text = f"{observed} rows; {judged.reason}"
        if judged.outcome == PASS:
            return replace(outcome, observed_value=text, details=details)
        severity = WARN if judged.outcome == WARN else outcome.severity
        return replace(outcome, severity=severity, success=False, observed_value=text,
                       details=details)

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
        with batch_schema(conn, views) as schema:
            context = open_context(url=url, schema=schema)
            sync_context(context, tuple(spec for _, spec in specs))
            for entity, spec in specs:
                plan = plans[entity]
                params = {LATEST_ALLOWED: latest_allowed(night),
                          VOLUME_MIN: plan.low, VOLUME_MAX: plan.high}
                outcomes, ids = run_suite(context, spec, config, run_id, None, params,
                                          adjust={"volume": _volume_adjust(plan, config)})
                report.outcomes.extend(outcomes)
                report.validation_ids.extend(ids)
        store(conn, report)
    return report


__all__ = ["earlier_counts", "latest_allowed", "validate_raw", "volume_plan"]
