"""Run a DAG of this project for one logical date through Airflow's own `dag.test()`.

This is how `chw run`, `chw backfill` and `chw demo` drive the nightly pipeline on a
machine without a scheduler: the same DAG file, the same tasks, Airflow's own task
runner; there is no second code path. Airflow's log of the run goes to a file under
`CHW_HOME/logs/`; the caller gets concise progress events and, on failure, the
failed tasks with the error each raised.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO

from customer_health import settings
from customer_health.airflow_env import configure_local_airflow

NIGHTLY_DAG_ID = "customer_health_nightly"
#: The nightly run's logical time of day: a run for date D has logical date D 02:00 UTC.
NIGHTLY_TIME = time(2, 0, tzinfo=UTC)

_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_FAILED = re.compile(r"Task failed with exception|Task failed; ti=")
_NEW_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class DagImportError(RuntimeError):
    """A DAG file failed to import; the message holds Airflow's import errors."""


class NotScheduled(RuntimeError):
    """The logical date lies before the DAG's start date: Airflow would run no task."""


@dataclass
class TaskOutcome:
    task_id: str
    state: str
    try_number: int
    error: str | None = None

    @property
    def error_summary(self) -> str | None:
        """The exception line(s) at the end of the error, without the traceback."""
        if not self.error:
            return None
        lines = self.error.splitlines()
        tail: list[str] = []
        for line in reversed(lines):
            if line[:1].isspace() or line.startswith("Traceback"):
                break
            tail.append(line)
        return "\n".join(reversed(tail)) if tail else lines[-1].strip()


@dataclass
class RunOutcome:
    dag_id: str
    logical_date: datetime
    state: str
    log_path: Path
    tasks: list[TaskOutcome] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state == "success" and bool(self.tasks)

    @property
    def failed_tasks(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.state in ("failed", "upstream_failed") and t.error] + [
            t for t in self.tasks if t.state == "failed" and not t.error
        ]


@dataclass
class ProgressEvent:
    kind: str  # "started" | "finished"
    task_id: str
    #: The terminal (or whatever stderr was before the run): stdout and stderr are
    #: captured into the run's log while it runs, so progress must be written here.
    console: IO[str] = field(default=sys.__stderr__, repr=False)


class _LogWatcher:
    """Reads Airflow's log lines, writes them to a file and extracts task events."""

    def __init__(self, log_file: IO[str], on_event: Callable[[ProgressEvent], None] | None):
        self.log_file = log_file
        self.on_event = on_event
        self.console: IO[str] = sys.__stderr__
        self.current_task: str | None = None
        self.errors: dict[str, list[str]] = {}
        self._collecting: list[str] | None = None

    def feed(self, line: str) -> None:
        self.log_file.write(line)
        text = line.rstrip("\n")
        if self._collecting is not None:
            if _NEW_LOG_RECORD.match(text):
                self._collecting = None
            else:
                self._collecting.append(text)
                return
        if m := _START.search(text):
            self.current_task = m.group(1)
            self._emit(ProgressEvent("started", self.current_task, self.console))
        elif m := _END.search(text):
            self._emit(ProgressEvent("finished", m.group(1), self.console))
        elif _FAILED.search(text) and self.current_task:
            self._collecting = self.errors.setdefault(self.current_task, [])
            self._collecting.clear()

    def _emit(self, event: ProgressEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def error_of(self, task_id: str) -> str | None:
        lines = [ln for ln in self.errors.get(task_id, []) if ln.strip()]
        if not lines:
            return None
        # The last line of a traceback is the exception; keep a few lines of context.
        return "\n".join(lines[-12:])


@contextlib.contextmanager
def _captured_output(watcher: _LogWatcher) -> Iterator[None]:
    """Route this process's stdout and stderr (fd level) through the watcher."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved_out, saved_err = os.dup(1), os.dup(2)
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    watcher.console = os.fdopen(os.dup(saved_err), "w", buffering=1, encoding="utf-8")

    def pump() -> None:
        with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as stream:
            for line in stream:
                watcher.feed(line)

    reader = threading.Thread(target=pump, name="airflow-log", daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        reader.join(timeout=30)
        watcher.console.close()


def _prepare_metadata_db() -> None:
    from airflow.utils import db

    db.initdb()


def load_dag(dag_id: str):
    """Import the project's DAG folder and return one DAG, or explain why not."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_folder()))
    if bag.import_errors:
        details = "\n".join(f"{path}: {err}" for path, err in bag.import_errors.items())
        raise DagImportError(f"DAG files failed to import:\n{details}")
    dag = bag.dags.get(dag_id)
    if dag is None:
        raise DagImportError(f"no DAG {dag_id!r} in {settings.dags_folder()}")
    return dag


def nightly_logical_date(day: date) -> datetime:
    return datetime.combine(day, NIGHTLY_TIME)


def run_dag(
    dag_id: str,
    logical_date: datetime,
    conf: dict | None = None,
    on_event: Callable[[ProgressEvent], None] | None = None,
) -> RunOutcome:
    """Run one DAG run in this process with `dag.test()` and report how it went."""
    configure_local_airflow()
    log_dir = settings.chw_home() / "logs" / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    log_path = log_dir / f"{dag_id}_{logical_date:%Y-%m-%d}_{stamp}.log"

    with open(log_path, "w", encoding="utf-8") as log_file:
        watcher = _LogWatcher(log_file, on_event)
        with _captured_output(watcher):
            _prepare_metadata_db()
            dag = load_dag(dag_id)
            if dag.start_date is not None and logical_date < dag.start_date:
                raise NotScheduled(
                    f"{logical_date:%Y-%m-%d} is before {dag_id}'s first night "
                    f"{dag.start_date:%Y-%m-%d} (CHW_SCHEDULE_START): Airflow would run no "
                    "task for it; set CHW_SCHEDULE_START to that date or earlier")
            dag_run = dag.test(logical_date=logical_date, run_conf=conf or {})
            outcome = RunOutcome(
                dag_id=dag_id,
                logical_date=logical_date,
                state=str(getattr(dag_run.state, "value", dag_run.state)),
                log_path=log_path,
            )
            for ti in sorted(
                dag_run.get_task_instances(),
                key=lambda t: t.start_date or datetime.max.replace(tzinfo=UTC),
            ):
                state = str(getattr(ti.state, "value", ti.state))
                outcome.tasks.append(
                    TaskOutcome(
                        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]",
                        state,
                        ti.try_number,
                        watcher.error_of(ti.task_id),
                    )
                )
    return outcome
