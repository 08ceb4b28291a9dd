"""The same simulated history delivered as contract files, as Salesforce files and as
HubSpot files (billing as contract files) loads into the same raw rows and builds the
same marts, table by table (docs/exporters.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from marts_helpers import layer_tables
from psycopg import sql

from customer_health.contract import ENTITIES
from customer_health.generate import generate_landing
from customer_health.loading import load_export
from customer_health.modelling import transform

START = date(2026, 11, 1)
DAYS = 3
FORMATS = ("contract", "salesforce", "hubspot")
# A portal time zone with a half-hour offset: HubSpot's local timestamps must come back
# as the same instants.
PORTAL_ZONE = "Asia/Kolkata"


def _contract_rows(url: str) -> dict[str, list[tuple]]:
    """Every raw table's contract columns, sorted: what the loader made of the files."""
    out = {}
    with psycopg.connect(url) as conn:
        for ent in ENTITIES:
            columns = sql.SQL(", ").join(map(sql.Identifier, [*ent.column_names,
                                                              "_export_date"]))
            rows = conn.execute(sql.SQL("select {} from {}").format(
                columns, sql.Identifier("raw", ent.raw_table))).fetchall()
            out[ent.raw_table] = sorted(rows, key=repr)
    return out


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory,
               fresh_database_factory: Callable[[], str]) -> Iterator[dict[str, str]]:
    """One warehouse per CRM format, each loaded night by night from its own landing
    area and built by dbt as of the last night."""
    urls = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHW_CRM_TIMEZONE", PORTAL_ZONE)
        for fmt in FORMATS:
            landing = tmp_path_factory.mktemp(f"landing_{fmt}")
            generate_landing(landing, accounts=24, start=START, days=DAYS, seed=11,
                             history_days=200, crm_format=fmt, invoice_only_share=0.25)
            mp.setenv("CHW_CRM_FORMAT", fmt)
            url = urls[fmt] = fresh_database_factory()
            for day in (START + timedelta(days=i) for i in range(DAYS)):
                results = load_export(url, landing, day)
                bad = [r for r in results if r.status != "loaded" or r.rows_quarantined]
                assert not bad, bad
        mp.delenv("CHW_CRM_FORMAT")
        for fmt, url in urls.items():
            # the translated data pass the project's dbt tests; the reference needs none
            skip = [] if fmt != "contract" else ["--exclude-resource-type", "test"]
            transform.run_dbt(["build", *skip], url, START + timedelta(days=DAYS - 1))
    yield urls


def test_native_files_load_the_same_contract_rows(warehouses: dict[str, str]) -> None:
    reference = _contract_rows(warehouses["contract"])
    assert all(reference[e.raw_table] for e in ENTITIES)  # every entity has rows
    for fmt in FORMATS[1:]:
        rows = _contract_rows(warehouses[fmt])
        different = [t for t in reference if rows[t] != reference[t]]
        assert not different, f"{fmt}: raw tables differ from the contract's: {different}"


def test_every_format_builds_the_same_marts(warehouses: dict[str, str]) -> None:
    reference = layer_tables(warehouses["contract"], ["marts"])
    assert reference and all(rows for _, rows in reference.values())
    for fmt in FORMATS[1:]:
        marts = layer_tables(warehouses[fmt], ["marts"])
        assert marts.keys() == reference.keys()
        different = [t for t in reference if marts[t] != reference[t]]
        assert not different, f"{fmt}: marts differ from the contract's: {different}"


def test_native_provenance_names_the_native_file_and_line(warehouses: dict[str, str],
                                                           tmp_path: Path) -> None:
    with psycopg.connect(warehouses["salesforce"]) as conn:
        sources = dict(conn.execute(
            "select _source_file, count(*) from raw.crm_activities"
            " where _export_date = %s group by 1", (START,)).fetchall())
        ledger = conn.execute(
            "select file_name, rows_read, rows_loaded from audit.load_ledger"
            " where entity = 'activities' and export_date = %s", (START,)).fetchone()
        lines = conn.execute(
            "select min(_line_number) from raw.crm_accounts where _export_date = %s",
            (START,)).fetchone()
    day = START.isoformat()
    assert set(sources) == {f"crm/{day}/Task.csv", f"crm/{day}/Event.csv"}
    assert ledger == ("Task.csv+Event.csv", sum(sources.values()), sum(sources.values()))
    assert lines == (2,)  # line 1 is the header


def test_every_shipped_format_has_its_declaration() -> None:
    from customer_health.loading.formats import load_format
    from customer_health.settings import EXPORT_FORMATS

    for system, names in EXPORT_FORMATS.items():
        for name in names:
            if name != "contract":
                assert load_format(name, system).system == system


def test_chw_generate_names_a_format_it_does_not_know(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from customer_health.cli import main

    result = CliRunner().invoke(main, ["generate", "--out", str(tmp_path), "--start",
                                       "2026-11-01", "--days", "1", "--crm-format", "zoho"])
    assert result.exit_code == 1
    assert "CHW_CRM_FORMAT='zoho': expected one of contract, salesforce, hubspot" in result.output
    result = CliRunner().invoke(main, ["generate", "--out", str(tmp_path / "sf"), "--start",
                                       "2026-11-01", "--days", "1", "--accounts", "2",
                                       "--crm-format", "salesforce"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sf" / "crm" / "2026-11-01" / "Task.csv").exists()
    assert (tmp_path / "sf" / "billing" / "2026-11-01" / "invoices.csv").exists()
