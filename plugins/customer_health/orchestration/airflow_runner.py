"""Run a DAG of this project for one logical date through Airflow's own `dag.test()`.

This is how `chw run`, `chw backfill` and `chw demo` drive the nightly pipeline on a
machine without a scheduler: the same DAG file, the same tasks, Airflow's own task
runner; there is no second code path. Airflow's log of the run goes to a file under
`CHW_HOME/logs/`; the caller gets concise progress events and, on failure, the
failed tasks with the error each raised.

Stopping. Airflow's in-process task runner (`run_task_in_process`, used by dag.test())
installs its own SIGTERM handler for each task, which only calls the operator's
`on_kill()` and lets the run go on: a SIGTERM sent to the process running dag.test()
is swallowed. So the run happens in a child process (`python -m
customer_health.orchestration.airflow_runner`) in a process group of its own,
and this process (the `chw` command) keeps the signals: on SIGTERM or SIGINT it asks
the child to stop (SIGUSR1). The child then lets a publishing task that is under way
(`publish_marts`, `publish_reports`, `notify_published`) finish, interrupts any other
task at once, starts no further task and marks the run and its tasks under way failed
in Airflow's metadata. A child that has not ended after CHW_STOP_GRACE seconds, or a
second signal, gets SIGKILL; either way the whole process group is killed at the end,
so nothing the night started keeps running. `run_dag` then raises `NightStopped`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import re
import select
import signal
import subprocess
import sys
import threading
import time as clock
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO

from customer_health import settings
from customer_health.orchestration.airflow_env import configure_local_airflow

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


class RunnerError(RuntimeError):
    """The run could not be carried out (not a task's failure); the message says why."""


class NightStopped(BaseException):  # noqa: N818 - an interruption, like KeyboardInterrupt
    """The run was stopped by a signal before it finished.

    A BaseException, so that neither a task nor dag.test()'s own `except Exception`
    swallows it."""

    def __init__(self, signum: int = 0, interrupted: str | None = None,
                 log_path: Path | None = None) -> None:
        super().__init__(signum, interrupted, log_path)
        self.signum = signum
        self.interrupted = interrupted
        self.log_path = log_path

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a stop request"

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + (self.signum or signal.SIGTERM)


#: Tasks that publish (an atomic swap, a rename, e-mail): a stop lets them finish.
PUBLISHING_TASKS = frozenset({"publish_marts", "publish_reports", "notify_published"})
_STOP_SIGNAL = signal.SIGUSR1


@dataclass
class TaskOutcome:
    task_id: str
    state: str
    try_number: int
    error: str | None = None

    @property
    def error_summary(self) -> str | None:
        """The exception line(s) at the end of the error, without the traceback: from
        the last line that starts at the margin (`module.Error: message`) to the end,
        so that a message's indented continuation (psycopg's "Is the server running on
        that host ...") stays with its first line instead of replacing it."""
        if not self.error:
            return None
        lines = [ln for ln in self.error.splitlines() if ln.strip()]
        if not lines:
            return None
        skip = ("Traceback", "During handling", "The above exception")
        starts = [i for i, ln in enumerate(lines)
                  if not ln[:1].isspace() and not ln.startswith(skip)]
        if not starts:
            return lines[-1].strip()
        return "\n".join(ln.strip() for ln in lines[starts[-1]:])


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
    """Route this process's stdout and stderr (fd level) through the watcher.

    The pump stops once the pipe is drained after the run, not at end of file: a helper
    process that a task started inherits the pipe and may outlive the run (multiprocessing's
    resource tracker does), and waiting for its end of file held every night 30 s."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved_out, saved_err = os.dup(1), os.dup(2)
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    watcher.console = os.fdopen(os.dup(saved_err), "w", buffering=1, encoding="utf-8")
    finished = threading.Event()

    def pump() -> None:
        pending = b""
        while True:
            ready, _, _ = select.select([read_fd], [], [], 0.1)
            chunk = os.read(read_fd, 65536) if ready else b""
            if ready and not chunk:
                break  # end of file: nobody holds the pipe any more
            if not ready and finished.is_set():
                break  # drained, and the run has ended
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                watcher.feed(line.decode("utf-8", errors="replace") + "\n")
        if pending:
            watcher.feed(pending.decode("utf-8", errors="replace"))

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
        finished.set()
        reader.join(timeout=30)
        os.close(read_fd)
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
    """Run one DAG run with `dag.test()` in a child process and report how it went.

    Raises NightStopped when SIGTERM or SIGINT stopped it (see the module's doc)."""
    configure_local_airflow()
    log_dir = settings.chw_home() / "logs" / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    log_path = log_dir / f"{dag_id}_{logical_date:%Y-%m-%d}_{stamp}.log"
    request = json.dumps({"dag_id": dag_id, "logical_date": logical_date.isoformat(),
                          "conf": conf or {}, "log_path": str(log_path)})
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "customer_health.orchestration.airflow_runner",
                request,
                str(write_fd),
            ],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, process_group=0)
    finally:
        os.close(write_fd)
    return _supervise(child, read_fd, settings.stop_grace_seconds(), log_path, on_event)


def _supervise(child: subprocess.Popen, read_fd: int, grace: float, log_path: Path,
               on_event: Callable[[ProgressEvent], None] | None) -> RunOutcome:
    """Relay the child's progress; forward SIGTERM/SIGINT as a stop request; escalate."""
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)

    for sig in previous:
        signal.signal(sig, on_signal)
    buffer = b""
    result: tuple | None = None
    asked = killed = False
    deadline = 0.0
    try:
        while result is None:
            if received and not asked:
                asked, deadline = True, clock.monotonic() + grace
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(_STOP_SIGNAL)
            if asked and not killed and (len(received) > 1 or clock.monotonic() > deadline):
                killed = True
                _kill_group(child.pid)
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if "result" in message:
                    result = pickle.loads(base64.b64decode(message["result"]))  # noqa: S301
                elif on_event is not None:
                    on_event(ProgressEvent(message["event"], message["task"], sys.stderr))
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)
    finally:
        os.close(read_fd)
        _kill_group(child.pid)  # whatever the night started must not outlive it
        child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    signum = received[0] if received else 0
    if result is None:
        if received:
            raise NightStopped(signum, None, log_path)
        raise RunnerError(f"the run's process ended ({child.returncode}) without a result;"
                          f" see {log_path}")
    kind, payload = result
    if kind == "stopped" or received:
        raise NightStopped(signum, payload if kind == "stopped" else None, log_path)
    if kind == "error":
        raise payload
    return payload


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _child_main(request_json: str, fd: int) -> None:
    """The child process: run the DAG, write progress lines and the result to `fd`."""
    request = json.loads(request_json)
    dag_id, log_path = request["dag_id"], Path(request["log_path"])
    logical_date = datetime.fromisoformat(request["logical_date"])
    pipe = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    lock = threading.Lock()

    def send(message: dict) -> None:
        with lock:
            pipe.write(json.dumps(message) + "\n")
            pipe.flush()

    signal.signal(_STOP_SIGNAL, _on_stop_request)
    # whatever Airflow writes outside the run's capture goes to the run's log too
    with open(log_path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        result: tuple = ("done", _run_dag_here(
            dag_id, logical_date, request["conf"],
            lambda event: send({"event": event.kind, "task": event.task_id}), log_path))
    except NightStopped:
        _mark_stopped(dag_id, logical_date, log_path)
        result = ("stopped", _STATE.current_task)
    except (DagImportError, NotScheduled) as exc:
        result = ("error", exc)
    except Exception as exc:  # noqa: BLE001 - reported to the parent in one line
        with open(log_path, "a", encoding="utf-8") as log:
            traceback.print_exc(file=log)
        result = ("error", RunnerError(f"{type(exc).__name__}: {exc}"))
    send({"result": base64.b64encode(pickle.dumps(result)).decode()})
    pipe.close()
    os._exit(0)  # no atexit hooks: the parent has the answer, nothing may hang here


class _ChildState:
    """Where the child is: the task running now, and whether a stop was requested."""

    current_task: str | None = None
    stop_requested: bool = False


_STATE = _ChildState()


def _on_stop_request(_signum: int, _frame: object) -> None:
    _STATE.stop_requested = True
    if _STATE.current_task not in PUBLISHING_TASKS:
        raise NightStopped()


def _stoppable_run_task(original: Callable) -> Callable:
    """dag.test()'s `_run_task`, which starts no task once a stop was requested and
    raises NightStopped after a (publishing) task that a stop request let finish."""

    def run_task(*args, **kwargs):
        ti = kwargs.get("ti")
        if _STATE.stop_requested:
            raise NightStopped()
        _STATE.current_task = getattr(ti, "task_id", None)
        try:
            return original(*args, **kwargs)
        finally:
            if _STATE.stop_requested:
                raise NightStopped()  # noqa: B012 - the stop wins over the task's result
            _STATE.current_task = None

    return run_task


def _mark_stopped(dag_id: str, logical_date: datetime, log_path: Path) -> None:
    """Best effort: the stopped run and its tasks under way are failed in the metadata
    (so the Airflow UI does not show them running forever); a failure goes to the log."""
    try:
        from airflow import settings as airflow_settings
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState, TaskInstanceState
        from sqlalchemy import select, update

        under_way = [TaskInstanceState.RUNNING, TaskInstanceState.QUEUED,
                     TaskInstanceState.SCHEDULED, TaskInstanceState.UP_FOR_RESCHEDULE,
                     TaskInstanceState.UP_FOR_RETRY, TaskInstanceState.DEFERRED]
        # the stop may have cut a query of dag.test()'s session short: start afresh
        with contextlib.suppress(Exception):
            airflow_settings.Session.rollback()
        airflow_settings.Session.remove()
        with create_session() as session:
            for run in session.scalars(select(DagRun).where(
                    DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)):
                session.execute(update(TaskInstance).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id,
                    TaskInstance.state.in_(under_way)).values(state=TaskInstanceState.FAILED))
                run.state = DagRunState.FAILED
    except Exception:  # noqa: BLE001 - the stop itself must go on
        with open(log_path, "a", encoding="utf-8") as log:
            log.write("could not mark the stopped run failed in Airflow's metadata:\n")
            traceback.print_exc(file=log)


def _run_dag_here(
    dag_id: str,
    logical_date: datetime,
    conf: dict | None,
    on_event: Callable[[ProgressEvent], None] | None,
    log_path: Path,
) -> RunOutcome:
    """Run one DAG run in this process with `dag.test()` and report how it went."""
    with open(log_path, "a", encoding="utf-8") as log_file:
        watcher = _LogWatcher(log_file, on_event)
        with _captured_output(watcher):
            _prepare_metadata_db()
            dag = load_dag(dag_id)
            if dag.start_date is not None and logical_date < dag.start_date:
                raise NotScheduled(
                    f"{logical_date:%Y-%m-%d} is before {dag_id}'s first night "
                    f"{dag.start_date:%Y-%m-%d} (CHW_SCHEDULE_START): Airflow would run no "
                    "task for it; set CHW_SCHEDULE_START to that date or earlier")
            from airflow.sdk.definitions import dag as dag_module

            # dag.test() looks `_run_task` up in its module at each task
            dag_module._run_task = _stoppable_run_task(dag_module._run_task)
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


if __name__ == "__main__":  # the child process of run_dag
    # through the imported module, so that what is pickled names its classes, not __main__'s
    from customer_health.orchestration import airflow_runner

    airflow_runner._child_main(sys.argv[1], int(sys.argv[2]))
