"""What the nightly DAG's tasks do, kept out of the DAG file so it can be tested
without a scheduler. Each function takes plain values and raises on failure with a
message a data engineer can act on."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

from customer_health import settings
from customer_health.failures import PermanentFailure, fails_at_once
from customer_health.quality.status import QualityStatus
from customer_health.warehouse_connection import task_conninfo as warehouse_url

log = logging.getLogger(__name__)


class ExportFolderIncomplete(PermanentFailure):
    """The export folder did not become complete before the deadline."""


class FileRejected(PermanentFailure):
    """The loader rejected a file of the night's export whole (its ledger row says why);
    the night must not go on."""


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


#: Where a published night keeps its docs (relative to the night's folder), as the
#: report index links them: the dbt docs of the marts. (The night's data-quality page,
#: quality.html, is rendered by the reports from audit.quality_results; GX's Data Docs
#: are not published: they print observed values unescaped and list every stored run.)
DOCS_FOLDERS = {"marts_docs_path": "dbt-docs"}
DOCS_LINKS = {key: f"{folder}/index.html" for key, folder in DOCS_FOLDERS.items()}


@fails_at_once
def validate_raw(landing: str, day: date, run_id: str) -> dict:
    """The raw gate: the night's rows of every entity against its suite. Raises
    `QualityGateFailed` (naming suite, expectation and observed value) on a blocking
    failure; warnings are logged and returned."""
    from customer_health import quality

    report = quality.validate_raw(warehouse_url(), day, run_id, landing=landing)
    log.info("%s", report.summary())
    report.raise_for_failures()
    return QualityStatus.of_reports(report).to_dict()


def prepare_shadow(day: date) -> str:
    """Write, audit, publish, step one: the shadow schema holds what `marts` holds, and
    records that tonight's build is about to rewrite `day` there."""
    from customer_health.publishing import wap

    url = warehouse_url()
    result = wap.prepare_shadow(url)
    wap.mark_building(url, day)
    return result.describe()


def score_purchase_propensity(day: date, schema: str | None = None) -> str:
    """P(alive) of the invoice-only accounts (BG/NBD), written into the shadow beside the
    night's dbt marts, before the marts gate checks them all."""
    from customer_health.modelling import propensity_mart
    from customer_health.publishing import wap

    return propensity_mart.score_night(warehouse_url(), day, schema or wap.SHADOW).describe()


@fails_at_once
def validate_marts(day: date, run_id: str, schema: str | None = None) -> dict:
    """The marts gate, on the shadow schema the night was built in: the night's rows and
    those that differ from the published marts (which passed when they were published)."""
    from customer_health import quality
    from customer_health.publishing import wap

    report = quality.validate_marts(warehouse_url(), schema or wap.SHADOW, day, run_id,
                                    published=wap.PUBLISHED)
    log.info("%s", report.summary())
    report.raise_for_failures()
    return QualityStatus.of_reports(report).to_dict()


def publish_marts(day: date) -> str:
    """Swap the validated shadow in as `marts` (atomic; grants and views carried over;
    a repeated publish of the same build swaps nothing)."""
    from customer_health.publishing import wap

    return wap.swap_in(warehouse_url(), day).describe()


def night_status(gates: list[dict]) -> dict:
    """The night's data-quality status for the report index, from its gates' results
    (XCom dicts of `QualityStatus`), with the links to its docs."""
    status = QualityStatus.of_gates(QualityStatus.from_dict(g) for g in gates)
    return {**status.to_dict(), **DOCS_LINKS}


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

    from customer_health.reporting import publish_reports
    from customer_health.reporting.dbt_docs import generate_dbt_docs

    scratch = Path(tempfile.mkdtemp(prefix="chw-docs-"))
    folders = {name: scratch / name for name in DOCS_FOLDERS.values()}
    try:
        generate_dbt_docs(url, folders[DOCS_FOLDERS["marts_docs_path"]])
        return publish_reports(url, day, quality=status, extra_folders=folders)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
