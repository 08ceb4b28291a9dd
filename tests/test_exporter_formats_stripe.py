"""Stripe's snapshot exports: the same simulated history delivered as contract files, as
Salesforce + Stripe files and as HubSpot + Stripe files builds the same marts, table by
table (docs/exporters.md, "Stripe"). Stripe's exports hold every record in its current
state every night, with no update stamp: the subscription versions, hence the MRR
movements, are derived by comparing nights. The history starts with the first export
(`history_days=0`): a snapshot cannot tell what changed before it was taken."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from marts_helpers import layer_tables

from customer_health.generate import generate_landing
from customer_health.loading import load_export
from customer_health.modelling import transform

START = date(2026, 10, 12)
DAYS = 36  # nights over two month ends: MRR movements of October and November
LAST = START + timedelta(days=DAYS - 1)
PAIRS = {"contract": ("contract", "contract"), "salesforce+stripe": ("salesforce", "stripe"),
         "hubspot+stripe": ("hubspot", "stripe")}


@pytest.fixture(scope="module")
def landings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, (crm, billing) in PAIRS.items():
        out[name] = tmp_path_factory.mktemp(name.replace("+", "_"))
        generate_landing(out[name], accounts=40, start=START, days=DAYS, seed=23,
                         history_days=0, crm_format=crm, billing_format=billing,
                         invoice_only_share=0.2)
    return out


@pytest.fixture(scope="module")
def warehouses(landings: dict[str, Path],
               fresh_database_factory: Callable[[], str]) -> Iterator[dict[str, str]]:
    """One warehouse per pair of formats, loaded night by night, built as of the last."""
    urls = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, (crm, billing) in PAIRS.items():
            mp.setenv("CHW_CRM_FORMAT", crm)
            mp.setenv("CHW_BILLING_FORMAT", billing)
            url = urls[name] = fresh_database_factory()
            for day in (START + timedelta(days=i) for i in range(DAYS)):
                results = load_export(url, landings[name], day)
                bad = [r for r in results if r.status != "loaded" or r.rows_quarantined]
                assert not bad, bad
        mp.delenv("CHW_CRM_FORMAT")
        mp.delenv("CHW_BILLING_FORMAT")
    for name, url in urls.items():
        skip = [] if name != "contract" else ["--exclude-resource-type", "test"]
        transform.run_dbt(["build", *skip], url, LAST)
    yield urls


def test_stripe_snapshots_build_the_same_marts(warehouses: dict[str, str]) -> None:
    reference = layer_tables(warehouses["contract"], ["marts"])
    columns, movements = reference["marts.revenue_movements"]
    months = {row[columns.index("month")] for row in movements}
    assert {date(2026, 10, 1), date(2026, 11, 1)} <= months  # two months of movements
    for name in list(PAIRS)[1:]:
        marts = layer_tables(warehouses[name], ["marts"])
        assert marts.keys() == reference.keys()
        different = [t for t in reference if marts[t] != reference[t]]
        assert not different, f"{name}: marts differ from the contract's: {different}"


def test_subscription_versions_are_derived_night_over_night(
        warehouses: dict[str, str]) -> None:
    """Raw holds every subscription every night; staging keeps the versions that change
    something, as many as the contract's deltas have (at most one a night)."""
    query = ("select count(*), count(distinct subscription_id),"
             " (select count(*) from raw.billing_subscriptions)"
             " from staging.stg_billing__subscription_versions")
    with psycopg.connect(warehouses["salesforce+stripe"]) as conn:
        versions, subscriptions, raw = conn.execute(query).fetchone()
    with psycopg.connect(warehouses["contract"]) as conn:
        contract_versions, contract_subscriptions, _ = conn.execute(query).fetchone()
    assert subscriptions == contract_subscriptions > 10
    assert raw > 5 * versions  # the snapshots repeat every subscription every night
    assert subscriptions < versions <= contract_versions


def test_stripe_ledger_counts_every_snapshot_row(warehouses: dict[str, str],
                                                 landings: dict[str, Path]) -> None:
    folder = landings["salesforce+stripe"] / "billing" / LAST.isoformat()
    with psycopg.connect(warehouses["salesforce+stripe"]) as conn:
        ledger = dict(conn.execute(
            "select file_name, rows_loaded from audit.load_ledger"
            " where system = 'billing' and export_date = %s and status = 'loaded'",
            (LAST,)).fetchall())
        source = conn.execute(
            "select _source_file, min(_line_number) from raw.billing_subscriptions"
            " where _export_date = %s group by 1", (LAST,)).fetchall()
    for file in ("customers.csv", "subscriptions.csv", "invoices.csv", "payments.csv"):
        with open(folder / file, encoding="utf-8", newline="") as f:
            assert ledger[file] == sum(1 for _ in csv.reader(f)) - 1
    assert source == [(f"billing/{LAST.isoformat()}/subscriptions.csv", 2)]


def test_stripe_nights_pass_the_same_raw_gate(gx_root: Path, warehouses: dict[str, str],
                                               landings: dict[str, Path]) -> None:
    from customer_health.quality import validate_raw

    for night in (START + timedelta(days=1), START + timedelta(days=20), LAST):
        report = validate_raw(warehouses["salesforce+stripe"], night, f"stripe-{night}",
                              systems=["billing"],
                              landing=str(landings["salesforce+stripe"]))
        assert report.outcomes and report.failures == [], report.summary()
