"""Configuration, read from environment variables only.

Every variable the project reads is declared in `ENV_VARS`, so the docs, the
docker-compose test and the code agree on one list. Nothing here holds a secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upath import UPath

#: The checkout (or installed tree) that holds dags/, dbt_project/ and expectations/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    meaning: str
    needed_by_dags: bool = True


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "CHW_HOME",
        "<checkout>/.chw",
        "folder for all local state: embedded warehouse, "
        "Airflow home, logs, reports, demo landing area",
    ),
    EnvVar(
        "CHW_WAREHOUSE_URL",
        "(embedded)",
        "libpq URI of the warehouse, used only where no Airflow connection chw_warehouse is "
        "defined; neither: chw starts an embedded PostgreSQL under CHW_HOME",
        needed_by_dags=False,
    ),
    EnvVar(
        "CHW_LANDING",
        "$CHW_HOME/landing",
        "landing area of the exports: a folder or an fsspec URL (s3://...)",
    ),
    EnvVar(
        "CHW_REPORTS_DIR",
        "$CHW_HOME/reports",
        "where nightly reports are published: a folder or an fsspec URL (s3://...)",
    ),
    EnvVar("CHW_REPORTING_CURRENCY", "USD", "currency of every amount in the marts"),
    EnvVar(
        "CHW_CRM_FORMAT",
        "contract",
        "how the CRM's exports are written: contract, salesforce, hubspot, or the path of a "
        "declaration file of your own (docs/exporters.md)",
    ),
    EnvVar(
        "CHW_BILLING_FORMAT",
        "contract",
        "how the billing system's exports are written: contract, stripe, or the path of a "
        "declaration file of your own (docs/exporters.md)",
    ),
    EnvVar(
        "CHW_CRM_TIMEZONE",
        "",
        "IANA time zone of the CRM export's timestamps written without an offset, e.g. "
        "Europe/Berlin for a HubSpot portal (unset: the format's declaration, else UTC)",
    ),
    EnvVar(
        "CHW_BILLING_TIMEZONE",
        "",
        "IANA time zone of the billing export's timestamps written without an offset "
        "(unset: the format's declaration, else UTC)",
    ),
    EnvVar(
        "CHW_SALESFORCE_TEAM_FIELD",
        "Account_Team__c",
        "where a Salesforce account's team is read: an Account field, or the owner's role "
        "with 'OwnerId > users.UserRoleId > roles.Name' (docs/exporters.md)",
    ),
    EnvVar(
        "CHW_STRIPE_ACCOUNT_KEY",
        "crm_account_id",
        "the Stripe customer metadata key that holds the CRM account id (its export's "
        "column '<key> (metadata)')",
    ),
    EnvVar(
        "CHW_QUARANTINE_THRESHOLD",
        "0.01",
        "share of quarantined rows above which a file is rejected whole",
    ),
    EnvVar(
        "CHW_RAW_NIGHTLY_DAYS",
        "62",
        "raw keeps a partition per night for this many days; older months are folded into "
        "one partition per month after a load, every row kept (0: never fold)",
    ),
    EnvVar(
        "CHW_SCHEDULE_START",
        "2026-11-01",
        "first logical date of the nightly schedule (catchup runs every night since)",
    ),
    EnvVar("CHW_TASK_RETRIES", "2", "retries of a failed task (with exponential backoff)"),
    EnvVar("CHW_RETRY_DELAY", "300", "seconds before a task's first retry"),
    EnvVar(
        "CHW_EXPORT_WAIT_TIMEOUT",
        "21600",
        "seconds a night waits for its export folders before failing",
    ),
    EnvVar("CHW_EXPORT_POKE_INTERVAL", "300", "seconds between two looks at the landing area"),
    EnvVar(
        "CHW_DBT_EXECUTION_MODE",
        "build",
        "how the nightly DAG runs dbt: 'build' (one task; a retry reruns only the failed "
        "nodes) or 'local' (Cosmos, a task per model and its tests)",
    ),
    EnvVar(
        "CHW_QUALITY_SEVERITY",
        "",
        "severity overrides of data-quality expectations, e.g. 'raw_crm_activities:volume=warn' "
        "(applied after expectations/quality.yml)",
    ),
    EnvVar(
        "CHW_QUALITY_VOLUME_TOLERANCE",
        "",
        "the raw volume check's band, e.g. 0.5: a night passes within median / 1.5 .. "
        "median * 1.5 of its kind (unset: expectations/quality.yml, default 0.5)",
    ),
    EnvVar(
        "CHW_BACKTEST_TEAM_MIN_CHURNED",
        "10",
        "a team page shows the team's own back-test (does the score predict churn?) when at "
        "least this many of its accounts churned after the latest evaluation date",
    ),
    EnvVar(
        "CHW_PROPENSITY_MIN_ACCOUNTS",
        "10",
        "the fewest invoice-only accounts (no subscription) on which the nightly BG/NBD fit "
        "runs; with fewer, customer_purchase_propensity gets no rows that night",
    ),
    EnvVar(
        "CHW_LAPSED_P_ALIVE",
        "0.3",
        "a team page lists an invoice-only account as 'probably lapsed' when its P(alive) "
        "is below this",
    ),
    EnvVar(
        "CHW_REPORT_RECIPIENTS",
        "",
        "YAML file mapping each account team to the addresses that receive its report "
        "(unset: reports are published but not e-mailed)",
    ),
    EnvVar(
        "CHW_ALERT_EMAILS",
        "",
        "comma-separated addresses told when a night fails or is published, through the "
        "chw_smtp connection (other channels: connections chw_alerts_apprise, "
        "chw_alerts_webhook)",
    ),
    EnvVar(
        "CHW_AIRFLOW_API_URL",
        "",
        "a running Airflow deployment (e.g. http://localhost:8080): chw run and chw backfill "
        "then trigger the nights there through its REST API instead of dag.test()",
        needed_by_dags=False,
    ),
    EnvVar(
        "CHW_AIRFLOW_API_POLL",
        "10",
        "seconds between two looks at a run's state on the deployment (chw run, chw backfill)",
        needed_by_dags=False,
    ),
    EnvVar(
        "CHW_AIRFLOW_API_USER",
        "",
        "user for the deployment's API (with CHW_AIRFLOW_API_PASSWORD), or set "
        "CHW_AIRFLOW_API_TOKEN",
        needed_by_dags=False,
    ),
    EnvVar(
        "CHW_STOP_GRACE",
        "20",
        "seconds chw run/backfill give a stopped night (SIGTERM, SIGINT) to end its task "
        "before it is killed",
        needed_by_dags=False,
    ),
    EnvVar(
        "CHW_PROJECT_ROOT",
        "<checkout>",
        "folder holding dags/, dbt_project/ and "
        "expectations/ (set where the package is installed elsewhere)",
    ),
)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def project_root() -> Path:
    return Path(_env("CHW_PROJECT_ROOT") or PROJECT_ROOT).resolve()


def chw_home() -> Path:
    return Path(_env("CHW_HOME") or project_root() / ".chw").resolve()


def warehouse_url_setting() -> str | None:
    """The configured warehouse URI, or None when the embedded one is to be used."""
    return _env("CHW_WAREHOUSE_URL")


def landing() -> str:
    return _env("CHW_LANDING") or str(chw_home() / "landing")


def reports_dir() -> Path | UPath:
    """A local folder (Path), or an fsspec URL (a UPath, e.g. s3://bucket/reports)."""
    return storage_location(_env("CHW_REPORTS_DIR") or str(chw_home() / "reports"))


def storage_location(value: str) -> Path | UPath:
    """A folder or `file://` URL as a resolved Path; any other URL as a UPath."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) and not value.startswith("file://"):
        from upath import UPath

        return UPath(value)
    return Path(value.removeprefix("file://")).resolve()


#: the formats whose declaration ships in loading/formats/
EXPORT_FORMATS = {"crm": ("contract", "salesforce", "hubspot"), "billing": ("contract", "stripe")}


def export_format(system: str, value: str | None = None) -> str:
    """`CHW_CRM_FORMAT` / `CHW_BILLING_FORMAT` (or `value`, given on a command line): a
    format the project ships, or the path of a declaration file (`*.toml`)."""
    name = f"CHW_{system.upper()}_FORMAT"
    value = value or _env(name) or "contract"
    if value.lower() in EXPORT_FORMATS[system]:
        return value.lower()
    if value.endswith(".toml"):
        return value
    raise ValueError(f"{name}={value!r}: expected one of {', '.join(EXPORT_FORMATS[system])}"
                     " or the path of a declaration file (*.toml)")


def export_timezone(system: str) -> str | None:
    """`CHW_CRM_TIMEZONE` / `CHW_BILLING_TIMEZONE`; None: the format's declaration decides."""
    return _env(f"CHW_{system.upper()}_TIMEZONE")


def declared(name: str) -> str | None:
    """The value of a variable of ENV_VARS that a format declaration names as a parameter
    (None when unset): declarations read configuration only through here."""
    if name not in {v.name for v in ENV_VARS}:
        raise ValueError(f"{name} is not a variable of customer_health.settings.ENV_VARS")
    return _env(name)


def reporting_currency() -> str:
    return (_env("CHW_REPORTING_CURRENCY") or "USD").upper()


def _share(name: str, default: float) -> float:
    """A number from 0 to 1 (a share or a probability) from the environment."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
    if not 0 <= value <= 1:
        raise ValueError(f"{name}={raw!r} must lie between 0 and 1")
    return value


def quarantine_threshold() -> float:
    return _share("CHW_QUARANTINE_THRESHOLD", 0.01)


def quality_volume_tolerance() -> float | None:
    """The raw volume check's tolerance from the environment; None: quality.yml's."""
    raw = _env("CHW_QUALITY_VOLUME_TOLERANCE")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"CHW_QUALITY_VOLUME_TOLERANCE={raw!r} is not a number") from exc
    if not 0 <= value < 100:
        raise ValueError(f"CHW_QUALITY_VOLUME_TOLERANCE={raw!r} must lie in 0..100")
    return value


def airflow_home() -> Path:
    return chw_home() / "airflow"


def dags_folder() -> Path:
    return project_root() / "dags"


def dbt_project_dir() -> Path:
    return project_root() / "dbt_project"


def expectations_dir() -> Path:
    return project_root() / "expectations"


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be at least {minimum}")
    return value


def schedule_start() -> date:
    raw = _env("CHW_SCHEDULE_START") or "2026-11-01"
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"CHW_SCHEDULE_START={raw!r} is not a date (YYYY-MM-DD)") from exc


def raw_nightly_days() -> int:
    """0 turns the folding of old nights into monthly partitions off."""
    return _int("CHW_RAW_NIGHTLY_DAYS", 62)


def task_retries() -> int:
    return _int("CHW_TASK_RETRIES", 2)


def retry_delay_seconds() -> int:
    return _int("CHW_RETRY_DELAY", 300, minimum=1)


def backtest_team_min_churned() -> int:
    return _int("CHW_BACKTEST_TEAM_MIN_CHURNED", 10, minimum=1)


def propensity_min_accounts() -> int:
    return _int("CHW_PROPENSITY_MIN_ACCOUNTS", 10, minimum=2)


def lapsed_p_alive() -> float:
    return _share("CHW_LAPSED_P_ALIVE", 0.3)


def export_wait_timeout_seconds() -> int:
    return _int("CHW_EXPORT_WAIT_TIMEOUT", 6 * 3600)


def export_poke_interval_seconds() -> int:
    return _int("CHW_EXPORT_POKE_INTERVAL", 300, minimum=1)


DBT_EXECUTION_MODES = ("build", "local")


def dbt_execution_mode() -> str:
    mode = (_env("CHW_DBT_EXECUTION_MODE") or "build").lower()
    if mode not in DBT_EXECUTION_MODES:
        raise ValueError(
            f"CHW_DBT_EXECUTION_MODE={mode!r}: expected one of {', '.join(DBT_EXECUTION_MODES)}"
        )
    return mode


def stop_grace_seconds() -> int:
    return _int("CHW_STOP_GRACE", 20)


def api_poll_seconds() -> int:
    return _int("CHW_AIRFLOW_API_POLL", 10, minimum=1)
