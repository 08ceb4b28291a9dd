"""Running the dbt project in process.

dbt reads its connection from environment variables only (`dbt_project/profiles.yml`);
`customer_health.warehouse_connection.dbt_env` derives them from the warehouse, set for
one invocation and restored after it. Generated files (target/, logs/) go under
`CHW_HOME/dbt/`, never into the checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from customer_health import settings
from customer_health.failures import PermanentFailure, is_transient_message
from customer_health.warehouse_connection import dbt_env

MARTS_SCHEMA = "marts"
#: The schema a night is built in before it is audited and published (publishing.wap).
SHADOW_SCHEMA = "marts_shadow"

_ENV_LOCK = threading.Lock()


class DbtRunError(RuntimeError):
    """A dbt invocation failed; the message names the failed node(s)."""

    def __init__(self, message: str, failed_nodes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failed_nodes = list(failed_nodes)


class DbtFailedOnData(DbtRunError, PermanentFailure):
    """dbt failed for a reason that running it again would repeat: a model's SQL error or
    a failing test on this night's data (no lost connection, timeout or deadlock)."""


@dataclass
class DbtRunResult:
    """What a successful dbt invocation did, per node."""

    args: list[str]
    statuses: dict[str, str] = field(default_factory=dict)
    raw: object = None


def dbt_paths() -> tuple[Path, Path]:
    """(target path, log path) for dbt's generated files, under CHW_HOME."""
    base = settings.chw_home() / "dbt"
    return base / "target", base / "logs"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for one dbt invocation (dbt's env_var reads os.environ)."""
    with _ENV_LOCK:
        previous = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def dbt_command(args: Sequence[str], as_of_date: date | None = None,
                extra_vars: dict[str, str] | None = None,
                target_path: Path | None = None) -> list[str]:
    """The full dbt argument list: project, profile, target and log paths, vars."""
    default_target, log_path = dbt_paths()
    target_path = target_path or default_target
    project = str(settings.dbt_project_dir())
    command = [
        *args,
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(target_path),
    ]
    if args and args[0] not in ("deps", "clean"):
        command += ["--log-path", str(log_path)]
    # no usage tracking: it would write .user.yml into the project and call out to the network
    command += ["--no-send-anonymous-usage-stats"]
    variables = dict(extra_vars or {})
    if as_of_date is not None:
        variables["as_of_date"] = as_of_date.isoformat()
    if variables:
        command += ["--vars", json.dumps(variables)]
    return command


def _failures(result: object) -> tuple[dict[str, str], list[str]]:
    statuses: dict[str, str] = {}
    failed: list[str] = []
    for node_result in getattr(result, "results", None) or []:
        node = getattr(node_result, "node", None)
        name = getattr(node, "unique_id", None) or str(getattr(node_result, "unique_id", "?"))
        status = str(getattr(node_result, "status", ""))
        statuses[name] = status
        if status.lower() in ("error", "fail", "runtime error"):
            message = getattr(node_result, "message", None) or ""
            failed.append(f"{name}: {message}".strip().rstrip(":"))
    return statuses, failed


def run_dbt(args: list[str], url: str, as_of_date: date | None = None,
            extra_vars: dict[str, str] | None = None,
            target_path: Path | None = None, manifest: object = None) -> DbtRunResult:
    """Invoke dbt in process (e.g. `["build"]`) against the warehouse at `url`; with
    `manifest` (a parse's result), without parsing the project again.

    Raises DbtRunError naming the failed node(s) when the invocation does not succeed.
    """
    from dbt.cli.main import dbtRunner

    for path in dbt_paths():
        path.mkdir(parents=True, exist_ok=True)
    command = dbt_command(args, as_of_date, extra_vars, target_path)
    with _environment(dbt_env(url)):
        outcome = dbtRunner(manifest=manifest).invoke(command)
    statuses, failed = _failures(outcome.result)
    if not outcome.success:
        where = f" for as_of_date {as_of_date.isoformat()}" if as_of_date else ""
        if failed:
            lines = "\n  ".join(failed)
            message = f"dbt {' '.join(args)}{where} failed in {len(failed)} node(s):\n  {lines}"
        else:
            message = f"dbt {' '.join(args)}{where} failed: {outcome.exception or 'see dbt log'}"
        error = DbtRunError if is_transient_message(message) else DbtFailedOnData
        raise error(message, [f.split(":", 1)[0] for f in failed])
    return DbtRunResult(args=command, statuses=statuses, raw=outcome.result)
