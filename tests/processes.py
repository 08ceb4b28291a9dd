"""Stopping the servers that tests start (Airflow components, Celery workers, Chromium, an
S3 server): each is started with `start_new_session=True`, so it leads a process group of
its own, and may start processes that leave that group (task runners in sessions of their
own). Nothing of theirs may outlive the test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable

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
