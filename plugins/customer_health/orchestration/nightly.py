"""What the nightly DAG's tasks do, kept out of the DAG file so it can be tested
without a scheduler. Each function takes plain values and raises on failure with a
message a data engineer can act on."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

from customer_health import settings
from customer_health.failures import PermanentFailure, fails_at_once
from customer_health.warehouse_connection import task_conninfo as warehouse_url

log = logging.getLogger(__name__)


class ExportFolderIncomplete(PermanentFailure):
    """The export folder did not become complete before the deadline."""


class FileRejected(PermanentFailure):
    """A file of the night's export was rejected whole; the night must not go on."""


def as_of_date(logical_date: datetime) -> date:
    """The night a run is for: its logical date's day (UTC). Exports of that day are
    read; marts are measured at its end."""
    return logical_date.astimezone(UTC).date()


def prepare_warehouse() -> None:
    """Create the raw and audit schemas if this warehouse has none yet."""
    import psycopg

    from customer_health.loading.raw_schema import ensure_schemas

    with psycopg.connect(warehouse_url(), autocommit=True) as conn:
        ensure_schemas(conn)


@fails_at_once
def export_folder_ready(
    landing: str, system: str, day: date, waiting_since: datetime, timeout: timedelta
) -> bool:
    """True when the export folder is complete; False to wait longer; past the deadline
    an `ExportFolderIncomplete` naming the missing files."""
    from customer_health.loading import export_folder_status

    complete, missing = export_folder_status(landing, system, day)
    if complete:
        return True
    listing = ", ".join(missing)
    if datetime.now(UTC) - waiting_since >= timeout:
        raise ExportFolderIncomplete(
            f"export folder {system}/{day} in {landing} is incomplete and its wait "
            f"(CHW_EXPORT_WAIT_TIMEOUT={int(timeout.total_seconds())}s, {_hours(timeout)}) "
            f"is over: missing {listing}"
        )
    log.info("export folder %s/%s incomplete, waiting: missing %s", system, day, listing)
    return False


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


@fails_at_once
def load_entity(landing: str, system: str, entity: str, day: date) -> dict:
    """Load one file of the night; raise `FileRejected` (naming file and reason) if the
    loader rejected it. Returns the ledger figures for XCom."""
    from customer_health.loading import load_export

    (result,) = load_export(warehouse_url(), landing, day, system=system, entity=entity)
    summary = {k: (str(v) if isinstance(v, date) else v) for k, v in asdict(result).items()}
    log.info("%s", summary)
    if result.status == "rejected":
        raise FileRejected(f"{system}/{day}/{result.file_name} rejected: {result.message}")
    return summary


def default_landing() -> str:
    return settings.landing()


def environment_summary() -> dict[str, str]:
    """The configuration a run used, for its log (secrets redacted)."""
    from customer_health.warehouse import redact

    summary = {v.name: os.environ.get(v.name, "") for v in settings.ENV_VARS}
    if summary.get("CHW_WAREHOUSE_URL"):
        summary["CHW_WAREHOUSE_URL"] = redact(summary["CHW_WAREHOUSE_URL"])
    return summary


#: Where a published night keeps its docs (relative to the night's folder), as the
#: report index links them: the dbt docs of the marts. (The night's data-quality page,
#: quality.html, is rendered by the reports from audit.quality_results; GX's Data Docs
#: are not published: they print observed values unescaped and list every stored run.)
DOCS_FOLDERS = {"marts_docs_path": "dbt-docs"}
DOCS_LINKS = {key: f"{folder}/index.html" for key, folder in DOCS_FOLDERS.items()}


def _quality_status(*reports) -> dict:
    """A small, JSON-able summary of the night's gates for XCom and the report index."""
    warnings = [o.describe() for r in reports for o in r.warnings]
    failures = [o.describe() for r in reports for o in r.failures]
    run_ids = sorted({r.run_id for r in reports})
    return {"status": "failed" if failures else "passed", "failures": failures,
            "warnings": warnings, "run_id": run_ids[0] if len(run_ids) == 1 else None}


@fails_at_once
def validate_raw(landing: str, day: date, run_id: str) -> dict:
    """The raw gate: the night's rows of every entity against its suite. Raises
    `QualityGateFailed` (naming suite, expectation and observed value) on a blocking
    failure; warnings are logged and returned."""
    from customer_health import quality

    report = quality.validate_raw(warehouse_url(), day, run_id, landing=landing)
    log.info("%s", report.summary())
    report.raise_for_failures()
    return _quality_status(report)


def prepare_shadow(day: date) -> str:
    """Write, audit, publish, step one: the shadow schema holds what `marts` holds, and
    records that tonight's build is about to rewrite `day` there."""
    from customer_health.publishing import wap

    url = warehouse_url()
    result = wap.prepare_shadow(url)
    wap.mark_building(url, day)
    return result.describe()


@fails_at_once
def validate_marts(day: date, run_id: str, schema: str | None = None) -> dict:
    """The marts gate, on the shadow schema the night was built in."""
    from customer_health import quality
    from customer_health.publishing import wap

    report = quality.validate_marts(warehouse_url(), schema or wap.SHADOW, day, run_id)
    log.info("%s", report.summary())
    report.raise_for_failures()
    return _quality_status(report)


def publish_marts(day: date) -> str:
    """Swap the validated shadow in as `marts` (atomic; grants and views carried over;
    a repeated publish of the same build swaps nothing)."""
    from customer_health.publishing import wap

    return wap.swap_in(warehouse_url(), day).describe()


def night_status(gates: list[dict]) -> dict:
    """The night's data-quality status for the report index, from its gates' results
    (the run id names the run whose checks the night's quality page shows)."""
    run_ids = {g.get("run_id") for g in gates}
    return {
        "status": "failed" if any(g["status"] == "failed" for g in gates) else "passed",
        "failures": [f for g in gates for f in g["failures"]],
        "warnings": [w for g in gates for w in g["warnings"]],
        "run_id": run_ids.pop() if len(run_ids) == 1 else None,
        **DOCS_LINKS,
    }


def publish(day: date, gates: list[dict]) -> dict:
    """Publish the night's reports from the (swapped-in) marts, with its data-quality
    page and the dbt docs beside them, then e-mail them if configured."""
    from customer_health.reporting import deliver_from_env

    result = publish_reports_with_docs(warehouse_url(), day, night_status(gates))
    delivered = deliver_from_env(result)
    log.info("published %s team report(s) to %s", len(result.teams), result.night_dir)
    return {"night_dir": str(result.night_dir), "teams": len(result.teams),
            "delivered": str(delivered) if delivered else "not configured"}


def publish_reports_with_docs(url: str, day: date, status: dict):
    """Render the night's reports (with its data-quality page) and publish them with
    the dbt docs (`dbt-docs/`), as one atomic folder."""
    import shutil
    import tempfile
    from pathlib import Path

    from customer_health.modelling.transform import generate_dbt_docs
    from customer_health.reporting import publish_reports

    scratch = Path(tempfile.mkdtemp(prefix="chw-docs-"))
    folders = {name: scratch / name for name in DOCS_FOLDERS.values()}
    try:
        generate_dbt_docs(url, folders[DOCS_FOLDERS["marts_docs_path"]])
        return publish_reports(url, day, quality=status, extra_folders=folders)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def stored_night_status(url: str, day: date) -> dict:
    """The quality status of the last run that checked `day`, from audit.quality_results
    (what `chw report` shows when it re-renders a night; its quality page shows that
    run's checks)."""
    import psycopg

    with psycopg.connect(url) as conn:
        found = conn.execute(
            "select to_regclass('audit.quality_results') is not null").fetchone()[0]
        rows, run_id = [], None
        if found:
            last = conn.execute(
                "select run_id from audit.quality_results where as_of_date = %(d)s"
                " order by checked_at desc limit 1", {"d": day}).fetchone()
            run_id = last[0] if last else None
            rows = conn.execute(
                """
                select suite, expectation, severity, success, observed_value
                from audit.quality_results
                where as_of_date = %(d)s and run_id = %(r)s
                """, {"d": day, "r": run_id}).fetchall()
    failures = [f"{s}: {e} (observed {o})" for s, e, sev, ok, o in rows
                if not ok and sev == "block"]
    warnings = [f"{s}: {e} (observed {o})" for s, e, sev, ok, o in rows
                if not ok and sev == "warn"]
    return {"status": "failed" if failures else ("passed" if rows else "unknown"),
            "failures": failures, "warnings": warnings, "run_id": run_id, **DOCS_LINKS}


def notify_published(day: date, published: dict) -> str:
    """Tell the data engineers a night went out (no-op when no channel is configured)."""
    from customer_health.orchestration import notify

    sent = notify.send(
        f"[customer health] night {day} published",
        f"{published['teams']} team report(s) in {published['night_dir']}; "
        f"e-mail delivery: {published['delivered']}",
        {"night": day.isoformat(), "status": "published"},
    )
    return ", ".join(sent) or "no channel configured"
