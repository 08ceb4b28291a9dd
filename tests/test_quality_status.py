"""One shape for a night's data-quality status (customer_health.quality.status): a gate's,
the night's from its gates (through XCom dicts), and the one stored in
audit.quality_results that `chw report` reads back, in a real PostgreSQL."""

from collections.abc import Callable
from datetime import date

import psycopg

from customer_health.orchestration.nightly import DOCS_LINKS, night_status
from customer_health.quality.results import RESULTS_DDL
from customer_health.quality.status import QualityStatus, stored_status

DAY = date(2026, 11, 3)


def test_the_night_joins_its_gates_through_xcom_dicts() -> None:
    raw = QualityStatus("passed", [], ["raw_accounts: w1 (observed 3)"], "run-1")
    marts = QualityStatus("failed", ["marts: m1 (observed 0)"], [], "run-1")
    night = night_status([raw.to_dict(), marts.to_dict()])
    assert night == {"status": "failed", "failures": ["marts: m1 (observed 0)"],
                     "warnings": ["raw_accounts: w1 (observed 3)"], "run_id": "run-1",
                     **DOCS_LINKS}
    assert QualityStatus.from_dict(raw.to_dict()) == raw
    two_runs = QualityStatus.of_gates([raw, QualityStatus("passed", [], [], "run-2")])
    assert two_runs.status == "passed" and two_runs.run_id is None


def test_stored_status_is_the_last_run_that_checked_the_night(
        fresh_database_factory: Callable[[], str]) -> None:
    url = fresh_database_factory()
    assert stored_status(url, DAY) == QualityStatus("unknown", [], [], None)  # no table yet
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RESULTS_DDL)
        insert = ("insert into audit.quality_results (run_id, as_of_date, suite, expectation,"
                  " severity, success, observed_value, checked_at)"
                  " values (%s, %s, %s, %s, %s, %s, %s, %s)")
        conn.execute(insert, ("old", DAY, "raw", "e0", "block", False, "9", "2026-11-04 01:00Z"))
        conn.execute(insert, ("new", DAY, "raw", "e1", "warn", False, "7", "2026-11-04 02:00Z"))
        conn.execute(insert, ("new", DAY, "marts", "e2", "block", True, "0", "2026-11-04 02:00Z"))
    assert stored_status(url, DAY) == QualityStatus(
        "passed", [], ["raw: e1 (observed 7)"], "new")
    assert stored_status(url, date(2026, 11, 4)).status == "unknown"
