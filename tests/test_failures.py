"""Which failures the nightly DAG retries: a failure that a retry would repeat (a failed
gate, a rejected file, dbt failing on the data) fails its task at once; a transient one
(a lost connection, a timeout) keeps Airflow's retries. The end-to-end cases, a failed gate
with retries configured and a lock timeout that passes, are in test_nightly_dag.py."""

from __future__ import annotations

import socket
from datetime import date

import pytest
from airflow.sdk.exceptions import AirflowFailException

from customer_health.failures import PermanentFailure, fails_at_once, is_transient_message
from customer_health.modelling.transform import DbtFailedOnData, DbtRunError, run_dbt
from customer_health.orchestration.nightly import FileRejected


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dbt_failing_on_the_data_is_permanent(warehouse_url: str) -> None:
    with pytest.raises(DbtFailedOnData) as caught:
        run_dbt(["show", "--inline", "select 1 / 0 as broken"], warehouse_url)
    assert isinstance(caught.value, PermanentFailure)
    assert "division by zero" in str(caught.value)


def test_dbt_that_cannot_reach_the_warehouse_is_transient() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/chw"
    with pytest.raises(DbtRunError) as caught:
        run_dbt(["show", "--inline", "select 1"], url)
    assert not isinstance(caught.value, PermanentFailure), str(caught.value)
    assert is_transient_message(str(caught.value))


@pytest.mark.parametrize("text", [
    'connection to server at "10.0.0.5", port 5432 failed: Connection refused',
    "server closed the connection unexpectedly\n\tThis probably means the server terminated",
    "canceling statement due to lock timeout",
    "deadlock detected",
    "FATAL:  terminating connection due to administrator command",
    "FATAL:  the database system is starting up",
])
def test_transient_conditions_are_recognised(text: str) -> None:
    assert is_transient_message(text)


@pytest.mark.parametrize("text", [
    'relation "raw.crm_accounts" does not exist',
    "Got 3 results, configured to fail if != 0",
    'null value in column "account_id" violates not-null constraint',
])
def test_errors_in_the_data_or_the_code_are_not_transient(text: str) -> None:
    assert not is_transient_message(text)


def test_a_step_fails_at_once_on_a_permanent_failure_only() -> None:
    @fails_at_once
    def rejected() -> None:
        raise FileRejected("crm/2026-11-03/accounts.csv rejected: header")

    @fails_at_once
    def lost_connection() -> None:
        raise OSError("connection reset by peer")

    with pytest.raises(AirflowFailException) as caught:
        rejected()
    assert "FileRejected" in str(caught.value) and "accounts.csv" in str(caught.value)
    assert isinstance(caught.value.__cause__, FileRejected)  # its traceback stays in the log
    with pytest.raises(OSError):  # not an AirflowFailException: Airflow retries it
        lost_connection()
    assert fails_at_once(lambda day: day)(date(2026, 11, 3)) == date(2026, 11, 3)
