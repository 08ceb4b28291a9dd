"""Twelve-month retention, CLV churn rates and the reporting currency (direct raw inserts).

B1 (smb) pays 100 USD from September 2025 and 180 from March 2026; B2 (smb) pays 50 from
September 2025 until it cancels on 10 May 2026; B3 (enterprise) pays 200 from January
2026. Reporting currency EUR (1 EUR = 1.08 USD in the rates seed). Built for 2026-10-15.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from marts_helpers import SUB_COLS, by_key, fetch, insert_export

from customer_health.modelling import transform

AS_OF = date(2026, 10, 15)


def _account(aid: str, segment: str) -> list[str]:
    return [aid, f"Account {aid}", "", segment, "emea", "west", "owner@vendor.example",
            "2025-08-01T00:00:00Z", "2025-08-01T00:00:00Z", "false"]


def _sub(sid: str, cust: str, mrr: str, status: str, started: str, updated: str,
         canceled: str = "") -> list[str]:
    return [sid, cust, "plan", "month", "1", mrr, "USD", status, started, "2026-12-01",
            canceled, updated]


def _export() -> dict:
    names = SUB_COLS.split()
    return {
        ("crm", "accounts"): [dict(zip(
            "account_id account_name industry segment region account_team owner_email "
            "created_at updated_at is_deleted".split(), a, strict=True))
            for a in (_account("B1", "smb"), _account("B2", "smb"),
                      _account("B3", "enterprise"))],
        ("billing", "customers"): [
            {"customer_id": c, "account_id": a, "billing_email": "", "currency": "USD",
             "created_at": "2025-08-01T00:00:00Z", "updated_at": "2025-08-01T00:00:00Z"}
            for c, a in (("D1", "B1"), ("D2", "B2"), ("D3", "B3"))],
        ("billing", "subscriptions"): [dict(zip(names, s, strict=True)) for s in (
            _sub("U1", "D1", "100.00", "active", "2025-09-01T00:00:00Z", "2025-09-01T00:00:00Z"),
            _sub("U1", "D1", "180.00", "active", "2025-09-01T00:00:00Z", "2026-03-01T00:00:00Z"),
            _sub("U2", "D2", "50.00", "active", "2025-09-10T00:00:00Z", "2025-09-10T00:00:00Z"),
            _sub("U2", "D2", "50.00", "canceled", "2025-09-10T00:00:00Z",
                 "2026-05-10T00:00:00Z", "2026-05-10T00:00:00Z"),
            _sub("U3", "D3", "200.00", "active", "2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z"),
        )],
    }


@pytest.fixture(scope="module")
def url(fresh_database_factory: Callable[[], str]) -> str:
    url = fresh_database_factory()
    insert_export(url, date(2026, 10, 1), _export())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHW_REPORTING_CURRENCY", "EUR")
        transform.run_dbt(["build"], url, AS_OF)
    return url


def test_nrr_12m_and_reporting_currency(url: str) -> None:
    rows = by_key(fetch(url, "select * from marts.revenue_retention"), "month", "segment")
    october = rows[(date(2026, 10, 1), "all")]
    # then: 100 + 50 USD = 92.59 + 46.30 EUR; now: B1 180 USD = 166.67 EUR, B2 gone
    assert october["ending_mrr"] == Decimal("166.67") + Decimal("185.19")
    assert october["nrr_12m"] == Decimal("1.2000")
    assert rows[(date(2026, 10, 1), "smb")]["nrr_12m"] == Decimal("1.2000")
    assert rows[(date(2026, 10, 1), "enterprise")]["nrr_12m"] is None  # no cohort a year ago
    assert rows[(date(2026, 9, 1), "all")]["nrr_12m"] == Decimal("1.2000")
    assert rows[(date(2026, 8, 1), "all")]["nrr_12m"] is None  # nobody paid in August 2025
    may = rows[(date(2026, 5, 1), "smb")]
    assert (may["logos_start"], may["logos_churned"], may["churned_mrr"]) == (
        2, 1, Decimal("46.30"))


def test_clv_uses_the_segments_trailing_churn(url: str) -> None:
    rows = by_key(fetch(url, "select * from marts.customer_lifetime_value"), "account_id")
    # smb, October 2025 to September 2026: 20 logo-months at the start, 1 churned: 20 months
    assert rows["B1"]["expected_lifetime_months"] == Decimal("20.0")
    assert rows["B1"]["predicted_clv"] == Decimal("3333.40")
    assert rows["B3"]["predicted_clv"] == Decimal("185.19") * 120
