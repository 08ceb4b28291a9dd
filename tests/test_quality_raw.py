"""The raw gate on a tiny generated landing area, loaded by the real loader, plus
hand-made bad rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from customer_health.contract import ENTITIES
from customer_health.generate import generate_landing
from customer_health.loading import load_export
from customer_health.loading.raw_schema import ensure_partition, ensure_schemas
from customer_health.quality import QualityGateFailed, validate_raw
from customer_health.quality.config import VolumeRule, load_config

#: the committed GX context of this checkout
CHECKOUT_EXPECTATIONS = Path(__file__).resolve().parents[1] / "expectations"

START = date(2026, 11, 1)
NIGHTS = 3


@pytest.fixture(scope="module")
def loaded(fresh_database_factory: Callable[[], str],
           tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Three generated nights (the first full) loaded by the loader."""
    url = fresh_database_factory()
    landing = tmp_path_factory.mktemp("landing")
    generate_landing(landing, accounts=10, start=START, days=NIGHTS, seed=1, history_days=30)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schemas(conn)
    for n in range(NIGHTS):
        results = load_export(url, landing, START + timedelta(days=n))
        assert all(r.status == "loaded" for r in results)
    return url, landing


NPS_ROW = {"response_id": "R1", "account_id": "A1", "score": 9,
           "responded_at": "2026-11-03T10:00:00Z", "_source_file": "crm/nps_responses.csv"}


def entity_of(table: str):
    return next(e for e in ENTITIES if e.raw_table == table)


def _copy_rows(url: str, table: str, night: date, changes: list[dict]) -> None:
    """Insert rows into raw.<table> for `night`: copies of a loaded row (or of NPS_ROW:
    ten generated accounts answer no survey) with changes."""
    with psycopg.connect(url, autocommit=True) as conn:
        template = conn.cursor(row_factory=dict_row).execute(
            sql.SQL("select * from {} order by _export_date, _line_number limit 1").format(
                sql.Identifier("raw", table))).fetchone() or NPS_ROW
        ensure_partition(conn, entity_of(table), night)
        for i, change in enumerate(changes):
            row = {**template, **change, "_export_date": night, "_line_number": i + 2}
            row.pop("_loaded_at", None)
            conn.execute(sql.SQL("insert into {} ({}) values ({})").format(
                sql.Identifier("raw", table),
                sql.SQL(", ").join(map(sql.Identifier, row)),
                sql.SQL(", ").join(sql.Placeholder() * len(row))), list(row.values()))


def _stored(url: str, run_id: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select suite, expectation, severity, success, observed_value from"
            " audit.quality_results where run_id = %s", (run_id,)).fetchall()


def test_a_good_night_passes_and_its_results_are_stored(gx_root: Path,
                                                         loaded: tuple[str, Path]) -> None:
    url, landing = loaded
    night = START + timedelta(days=2)
    report = validate_raw(url, night, "run-good", landing=str(landing))
    assert report.failures == [], report.summary()
    report.raise_for_failures()
    rows = _stored(url, "run-good")
    assert len(rows) == len(report.outcomes) > 9 * 5
    assert {r[0] for r in rows} == {
        "raw.crm_accounts", "raw.crm_contacts", "raw.crm_activities",
        "raw.crm_support_tickets", "raw.crm_nps_responses", "raw.billing_customers",
        "raw.billing_subscriptions", "raw.billing_invoices", "raw.billing_payments"}
    names = {(r[0], r[1]) for r in rows}
    assert ("raw.crm_accounts", "unique(account_id, updated_at)") in names
    assert ("raw.crm_nps_responses", "unique(response_id)") in names
    assert ("raw.crm_nps_responses", "between(score)") in names
    assert ("raw.billing_invoices", "not_future(issued_at)") in names
    assert ("raw.billing_invoices", "not_future(due_at)") not in names  # future by nature
    # a retry with the same run id replaces its rows, it does not add to them
    validate_raw(url, night, "run-good", systems=["crm"])
    assert len(_stored(url, "run-good")) == len(rows)


def test_little_history_makes_volume_warn_never_block(gx_root: Path,
                                                      loaded: tuple[str, Path]) -> None:
    url, landing = loaded
    report = validate_raw(url, START + timedelta(days=2), "run-volume", systems=["billing"],
                          landing=str(landing))
    volume = [o for o in report.outcomes if o.expectation == "volume"]
    assert len(volume) == 4 and all(o.severity == "warn" for o in volume)
    # 2026-11-03 is a Tuesday: no earlier delta Tuesday yet (docs/quality.md#volume)
    assert all("not compared: no earlier delta Tuesday night" in o.observed_value
               for o in volume)
    first = validate_raw(url, START, "run-volume-first", systems=["billing"])
    assert all("not compared: no earlier full night" in o.observed_value
               for o in first.warnings)
    assert {o.expectation for o in first.warnings} == {"volume"} and first.failures == []


def test_bad_rows_fail_naming_suite_expectation_and_observed_value(
        gx_root: Path, loaded: tuple[str, Path]) -> None:
    url, _ = loaded
    night = START + timedelta(days=3)
    _copy_rows(url, "billing_subscriptions", night, [{"mrr": -5}])
    _copy_rows(url, "crm_nps_responses", night, [{"score": 11, "response_id": "R-bad"}])
    dup = {"account_id": "A-dup", "updated_at": "2026-11-03T10:00:00Z"}
    _copy_rows(url, "crm_accounts", night, [{**dup, "segment": "galactic"}, dup])
    _copy_rows(url, "crm_activities", night, [{"occurred_at": "2026-11-10T00:00:00Z"}])
    report = validate_raw(url, night, "run-bad")
    failed = {(o.suite, o.expectation) for o in report.failures}
    assert failed == {
        ("raw.billing_subscriptions", "between(mrr)"),
        ("raw.crm_nps_responses", "between(score)"),
        ("raw.crm_accounts", "unique(account_id, updated_at)"),
        ("raw.crm_accounts", "in_set(segment)"),
        ("raw.crm_activities", "not_future(occurred_at)"),
    }
    with pytest.raises(QualityGateFailed) as caught:
        report.raise_for_failures()
    message = str(caught.value)
    assert f"quality gate raw failed for {night} (run run-bad): 5 blocking" in message
    assert "raw.billing_subscriptions / between(mrr): observed 1 of 1 rows unexpected" in message
    assert "-5" in message
    assert "raw.crm_nps_responses / between(score): observed 1 of 1 rows unexpected, e.g. [11]" \
        in message
    assert "raw.crm_accounts / in_set(segment): observed 1 of 2 rows unexpected" in message
    assert "galactic" in message
    assert "raw.crm_accounts / unique(account_id, updated_at): observed 2 of 2" in message
    assert "raw.crm_activities / not_future(occurred_at)" in message
    stored = {(r[0], r[1]): r for r in _stored(url, "run-bad")}
    assert stored[("raw.crm_nps_responses", "between(score)")][2:4] == ("block", False)


def test_a_warn_severity_expectation_is_reported_not_raised(
        gx_root: Path, loaded: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = loaded
    night = START + timedelta(days=4)
    _copy_rows(url, "crm_nps_responses", night, [{"score": 11, "response_id": "R-warn"}])
    monkeypatch.setenv("CHW_QUALITY_SEVERITY", "raw.crm_nps_responses:between(*)=warn")
    report = validate_raw(url, night, "run-warn", systems=["crm"])
    report.raise_for_failures()  # does not raise
    assert report.failures == []
    warned = [o for o in report.warnings if o.expectation == "between(score)"]
    assert len(warned) == 1 and "[11]" in warned[0].observed_value
    stored = {(r[0], r[1]): r for r in _stored(url, "run-warn")}
    assert stored[("raw.crm_nps_responses", "between(score)")][2:4] == ("warn", False)


def test_volume_far_from_recent_nights_of_the_same_kind_blocks(
        gx_root: Path, fresh_database_factory: Callable[[], str]) -> None:
    url = fresh_database_factory()
    # no ledger here: the first night in raw counts as the full export; the deltas are
    # four Fridays of 2 rows and tonight's Friday, 90 rows
    nights = [date(2026, 10, 2), date(2026, 10, 9), date(2026, 10, 16), date(2026, 10, 23),
              date(2026, 10, 30), date(2026, 11, 6)]
    sizes = [500, 2, 2, 2, 2, 90]
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schemas(conn)
        for night in nights:
            ensure_partition(conn, entity_of("crm_nps_responses"), night)
        conn.execute(
            "insert into raw.crm_nps_responses (response_id, account_id, score, responded_at,"
            " _export_date, _source_file, _line_number)"
            " select 'R' || n.d || '-' || i, 'A1', 7, n.d - interval '1 hour', n.d, 'x', i"
            " from unnest(%s::date[], %s::int[]) as n(d, size),"
            " lateral generate_series(1, n.size) as i", (nights, sizes))
    report = validate_raw(url, date(2026, 11, 6), "run-spike", systems=["crm"])
    volume = [o for o in report.failures if o.suite == "raw.crm_nps_responses"]
    assert [o.expectation for o in volume] == ["volume"]
    assert volume[0].observed_value.startswith(
        "90 rows; expected 0..20 (median 2 of 4 earlier delta Friday night(s))")
    assert volume[0].details["volume"]["kind"] == "delta Friday"


def test_volume_bounds_and_severity_rules() -> None:
    rule = VolumeRule(nights=7, min_history=3, tolerance=1.0, slack_rows=20, noise_sd=0)
    assert rule.bounds(1000) == (480, 2020)
    assert rule.bounds(2) == (0, 24)
    config = load_config(Path("/nonexistent/quality.yml"))
    assert config.severity("raw.crm_accounts", "volume") == "block"


def test_severity_rules_from_file_and_environment(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "quality.yml"
    path.write_text('severity:\n  "raw.*:volume": warn\n  "raw.crm_accounts:volume": block\n'
                    "volume:\n  nights: 5\n", encoding="utf-8")
    monkeypatch.setenv("CHW_QUALITY_SEVERITY", "marts.nps_monthly:*=warn")
    config = load_config(path)
    assert config.severity("raw.crm_contacts", "volume") == "warn"
    assert config.severity("raw.crm_accounts", "volume") == "block"
    assert config.severity("marts.nps_monthly", "mrr_bridge") == "warn"
    assert config.severity("marts.customer_health", "mrr_bridge") == "block"
    assert config.volume.nights == 5
    monkeypatch.setenv("CHW_QUALITY_SEVERITY", "raw.*:volume=ignore")
    with pytest.raises(ValueError, match="CHW_QUALITY_SEVERITY.*not one of block, warn"):
        load_config(path)


def test_the_committed_context_needed_no_change(gx_root: Path,
                                                loaded: tuple[str, Path]) -> None:
    """Validations add nothing to the committed context: suites.py and expectations/gx/
    agree (after changing suites.py, run a validation and commit what it rewrote)."""
    validate_raw(loaded[0], START + timedelta(days=1), "run-sync")

    def committed(root: Path) -> dict[str, bytes]:
        gx_dir = root / "gx"
        return {str(p.relative_to(gx_dir)): p.read_bytes() for p in gx_dir.rglob("*")
                if p.is_file()
                and p.relative_to(gx_dir).parts[0] not in ("uncommitted", "plugins")}

    # the checkout's own files (settings.expectations_dir() is gx_root's copy here)
    assert committed(gx_root / "expectations") == committed(CHECKOUT_EXPECTATIONS)
