"""Stopping the servers that tests start (Airflow components, Celery workers, Chromium, an
S3 server): each is started with `start_new_session=True`, so it leads a process group of
its own, and may start processes that leave that group (task runners in sessions of their
own). Nothing of theirs may outlive the test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable

import psutil


def _family(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def stop_groups(processes: Iterable[subprocess.Popen], grace: float = 30.0) -> None:
    """SIGTERM every process's group at once, give them `grace` seconds together, then
    SIGKILL each group and every descendant seen before the SIGTERM."""
    running = [proc for proc in processes if proc.poll() is None]
    families = {proc.pid: _family(proc) for proc in running}
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)
        for child in families[proc.pid]:
            with contextlib.suppress(psutil.Error):
                child.kill()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL at once (a worker dying mid-task): its group and every process it started."""
    family = _family(proc)
    _signal_group(proc, signal.SIGKILL)
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.kill()
    proc.wait(timeout=30)


class RestartAlways:
    """Start a component again when it exits, as docker-compose's `restart: always` does
    in production: Airflow's scheduler exits on errors it does not handle (seen here: a
    unique violation when it and the API create the same night's run at the same moment),
    and a deployment under test must survive that as the real one does."""

    def __init__(self, processes: dict[str, subprocess.Popen],
                 start: Callable[[str], subprocess.Popen], interval: float = 2.0) -> None:
        self.processes = processes
        self.start = start
        self.interval = interval
        self.restarts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="restart-always", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            for name, proc in list(self.processes.items()):
                if proc.poll() is not None and not self._stop.is_set():
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    self.processes[name] = self.start(name)

    def stop(self) -> None:
        """No more restarts (before the components are stopped)."""
        self._stop.set()
        self._thread.join(timeout=30)
