"""Which failures a retry can change, and which it cannot.

A night fails for one of two kinds of reason:

- **permanent**: the input or the result is wrong (a rejected file, a failed quality gate,
  a dbt model or test that fails on the night's data, an export that never became
  complete). Running the same task again reads the same files and the same tables and
  gives the same answer, so the task fails at once and the data engineers get one alert.
- **transient**: the world was briefly in the way (a lost connection, a lock or statement
  timeout, a server restarting, a deadlock, a killed worker). The task is retried with
  backoff (CHW_TASK_RETRIES, CHW_RETRY_DELAY) and alerts only after its last try.

Permanent failures are raised as `PermanentFailure` subclasses by the package; the nightly
DAG's steps, decorated with `fails_at_once`, turn them into Airflow's
`AirflowFailException`, which Airflow never retries. Everything else keeps Airflow's
retry policy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

#: Conditions that may pass by itself, as PostgreSQL words them (and dbt, through
#: psycopg2, repeats them in a failed node's message): a lost or refused connection, a
#: server restarting, a lock or statement timeout, a deadlock or serialization failure,
#: a server out of connections, memory or disk.
_TRANSIENT_TEXT = re.compile(
    "|".join((
        r"could not connect to server",
        r"connection to server at .* failed",
        r"connection refused",
        r"server closed the connection unexpectedly",
        r"terminating connection",
        r"connection already closed",
        r"SSL SYSCALL error",
        r"the database system is (starting up|shutting down|in recovery mode)",
        r"canceling statement due to (lock|statement) timeout",
        r"could not obtain lock",
        r"deadlock detected",
        r"could not serialize access",
        r"out of shared memory",
        r"no space left on device",
        r"too many clients already",
        r"remaining connection slots are reserved",
    )),
    re.IGNORECASE,
)


class PermanentFailure(RuntimeError):
    """A failure that the same task, run again on the same input, would repeat."""


def is_transient_message(text: str) -> bool:
    """True when an error's text (e.g. dbt's message for a failed node) names a condition
    that may pass by itself: a lost connection, a timeout, a deadlock, a full server."""
    return bool(_TRANSIENT_TEXT.search(text))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def fails_at_once(step: Callable[_P, _R]) -> Callable[_P, _R]:
    """A nightly step whose `PermanentFailure` (a rejected file, a failed gate, dbt failing
    on the night's data) fails its task at once: Airflow retries any other exception
    but never an `AirflowFailException`, so the data engineers get one alert now instead
    of the same answer after every retry. The message keeps the original exception's
    name, and its traceback stays in the log as the cause."""

    @functools.wraps(step)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return step(*args, **kwargs)
        except PermanentFailure as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{type(exc).__name__} (not retried: a retry would repeat it): {exc}"
            ) from exc

    return run
