"""What the nightly DAG's tasks do, kept out of the DAG file so it can be tested
without a scheduler. Each function takes plain values and raises on failure with a
message a data engineer can act on."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

from customer_health import settings

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "chw_warehouse"


class ExportFolderIncomplete(RuntimeError):
    """The export folder did not become complete before the deadline."""


class FileRejected(RuntimeError):
    """A file of the night's export was rejected whole; the night must not go on."""


def warehouse_url() -> str:
    """The warehouse a task works on: `CHW_WAREHOUSE_URL`, else the `chw_warehouse`
    Airflow connection. Tasks never start the embedded server: `chw run` does that
    and passes its URI down through `CHW_WAREHOUSE_URL`."""
    configured = settings.warehouse_url_setting()
    if configured:
        return configured
    try:
        from airflow.sdk import Connection

        conn = Connection.get(WAREHOUSE_CONN_ID)
    except Exception as exc:  # the SDK raises its own not-found error types
        raise RuntimeError(
            "no warehouse configured: set CHW_WAREHOUSE_URL or the Airflow connection "
            f"{WAREHOUSE_CONN_ID!r} (AIRFLOW_CONN_CHW_WAREHOUSE)"
        ) from exc
    return _conn_to_libpq(conn)


def _conn_to_libpq(conn) -> str:
    from psycopg.conninfo import make_conninfo

    params = {
        "host": conn.host,
        "port": conn.port,
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema,
    }
    return make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})


def as_of_date(logical_date: datetime) -> date:
    """The night a run is for: its logical date's day (UTC). Exports of that day are
    read; marts are measured at its end."""
    return logical_date.astimezone(UTC).date()


def prepare_warehouse() -> None:
    """Create the raw and audit schemas if this warehouse has none yet."""
    import psycopg

    from customer_health.raw_schema import ensure_schemas

    with psycopg.connect(warehouse_url(), autocommit=True) as conn:
        ensure_schemas(conn)


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
