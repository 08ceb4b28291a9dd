"""The marts against hand-worked answers (scenario in tests/marts_helpers.py).

One warehouse for the module: the first export is loaded and built for 2026-10-31, the
second export for 2026-11-07 (an incremental run), then 2026-10-31 is backfilled. The
expected figures are worked out by hand in docs/marts.md ("Worked example").
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from marts_helpers import E0, E1, SCENARIO, by_key, fetch, load_export_via_loader

from customer_health import settings
from customer_health.modelling import transform
from customer_health.publishing.analyst_role import grant_analyst
from customer_health.quality import validate_marts

pytestmark = pytest.mark.cluster_roles  # chw_analyst is cluster-wide: tests/conftest.py

MARTS = ("customer_health", "customer_inactivity", "revenue_movements", "revenue_retention",
         "customer_lifetime_value", "nps_monthly", "account_team_summary")

#: Every column the mart contract (shared/spec/marts.md) names.
CONTRACT_COLUMNS = {
    "customer_health": (
        "as_of_date account_id account_name account_team owner_email segment region mrr "
        "renewal_date days_to_renewal engagement_score support_score sentiment_score "
        "billing_score health_score health_band score_change_7d score_change_30d "
        "top_risk_driver top_risk_component missing_components scored_components"),
    "customer_inactivity": (
        "as_of_date account_id account_name account_team owner_email last_touch_at "
        "last_touch_type days_since_last_touch days_since_last_outbound days_since_last_inbound "
        "days_since_last_payment inactivity_tier is_churned win_back_candidate "
        "recommended_action"),
    "revenue_movements": (
        "month account_id account_team segment mrr previous_mrr mrr_change movement"),
    "revenue_retention": (
        "month segment starting_mrr new_mrr expansion_mrr reactivation_mrr contraction_mrr "
        "churned_mrr ending_mrr grr nrr nrr_12m logos_start logos_new logos_churned "
        "logo_retention"),
    "customer_lifetime_value": (
        "as_of_date account_id account_team segment first_paid_at tenure_months "
        "lifetime_revenue avg_monthly_revenue current_mrr predicted_clv"),
    "nps_monthly": "month account_team responses promoters passives detractors nps",
    "account_team_summary": (
        "as_of_date account_team accounts mrr arr accounts_healthy accounts_at_risk "
        "accounts_critical accounts_not_scored arr_at_risk renewals_next_90d "
        "renewals_next_90d_at_risk inactive_accounts nps_90d avg_health_change_7d"),
}


def D(value: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(value))


@dataclass
class Built:
    url: str
    first: dict[str, list[dict]]  # marts after the run for 2026-10-31
    second: dict[str, list[dict]]  # after the incremental run for 2026-11-07
    backfilled: dict[str, list[dict]]  # after re-running 2026-10-31


def _snapshot(url: str) -> dict[str, list[dict]]:
    return {m: fetch(url, f"select * from marts.{m} order by 1, 2") for m in MARTS}  # noqa: S608


@pytest.fixture(scope="module")
def built(fresh_database_factory: Callable[[], str],
          tmp_path_factory: pytest.TempPathFactory) -> Built:
    url = fresh_database_factory()
    landing: Path = tmp_path_factory.mktemp("landing")
    grant_analyst(url)
    load_export_via_loader(url, landing, E0, SCENARIO[E0])
    transform.run_dbt(["build"], url, E0)
    first = _snapshot(url)
    load_export_via_loader(url, landing, E1, SCENARIO[E1])
    transform.run_dbt(["build"], url, E1)
    second = _snapshot(url)
    transform.run_dbt(["run"], url, E0)
    return Built(url, first, second, _snapshot(url))


def _rows(snapshot: dict[str, list[dict]], mart: str, **where: object) -> list[dict]:
    return [r for r in snapshot[mart] if all(r[k] == v for k, v in where.items())]


def test_every_contract_column_is_there(built: Built) -> None:
    for mart, columns in CONTRACT_COLUMNS.items():
        present = {r["column_name"] for r in fetch(
            built.url, "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = %s", (mart,))}
        missing = set(columns.split()) - present
        assert not missing, f"{mart} lacks {sorted(missing)}"


def test_customer_health_first_night(built: Built) -> None:
    rows = by_key(_rows(built.first, "customer_health", as_of_date=E0), "account_id")
    assert sorted(rows) == ["A1", "A2", "A3", "A4", "A6", "A7"]  # A5 is deleted
    expected = {
        # account: (mrr, days_to_renewal, engagement, support, sentiment, billing, health, band)
        "A1": ("120.00", 252, "56.9", "75.0", "50.0", 100, "69.9", "at_risk"),
        "A2": ("0", None, "31.4", "66.9", "0.0", 100, "52.8", "at_risk"),
        "A3": ("54.00", 10, "0.0", None, None, 100, "50.0", "at_risk"),
        "A4": ("80.00", 15, "48.1", None, "50.0", 30, "41.8", "at_risk"),
        "A6": ("300.00", 35, "57.8", None, "100.0", 100, "84.2", "healthy"),
        "A7": ("0", None, None, None, None, None, None, None),
    }
    for account, (mrr, days, eng, sup, sen, bil, health, band) in expected.items():
        row = rows[account]
        got = (row["mrr"], row["days_to_renewal"], row["engagement_score"], row["support_score"],
               row["sentiment_score"], row["billing_score"], row["health_score"],
               row["health_band"])
        want = (D(mrr), days, *(None if v is None else D(v) for v in (eng, sup, sen, bil, health)),
                band)
        assert got == want, account
    assert rows["A1"]["renewal_date"] == date(2027, 7, 10)
    assert rows["A6"]["account_team"] == "north"  # the move to south is not known yet
    assert rows["A1"]["top_risk_driver"] == "Few touchpoints lately (3 in the last 90 days)"
    assert rows["A2"]["top_risk_driver"] == "No contact for 41 days"
    assert rows["A3"]["top_risk_driver"] == "No contact for 122 days"
    assert rows["A4"]["top_risk_driver"] == "Failed payments (1 in the last 90 days)"
    assert rows["A7"]["top_risk_driver"] is None
    # the driver's component by name, NULL exactly when there is no driver
    assert {a: r["top_risk_component"] for a, r in rows.items()} == {
        "A1": "engagement", "A2": "engagement", "A3": "engagement", "A4": "billing",
        "A6": "engagement", "A7": None}
    assert all((r["top_risk_component"] is None) == (r["top_risk_driver"] is None)
               for r in rows.values())
    assert rows["A1"]["missing_components"] is None
    assert rows["A3"]["missing_components"] == "support, sentiment"
    assert rows["A7"]["missing_components"] == "engagement, support, sentiment, billing"
    assert {a: r["scored_components"] for a, r in rows.items()} == {
        "A1": 4, "A2": 4, "A3": 2, "A4": 3, "A6": 3, "A7": 0}
    assert all(r["score_change_7d"] is None and r["score_change_30d"] is None
               for r in rows.values())
    assert len({r["weights_version"] for r in rows.values()}) == 1


def test_customer_health_second_night(built: Built) -> None:
    rows = by_key(_rows(built.second, "customer_health", as_of_date=E1), "account_id")
    a1, a6, a7 = rows["A1"], rows["A6"], rows["A7"]
    # A1: the 23:30 -02:00 call falls on 1 November; T1 solved after 216 hours with CSAT 4
    assert (a1["engagement_score"], a1["support_score"], a1["health_score"]) == (
        D("63.3"), D("55.0"), D("68.2"))
    assert a1["score_change_7d"] == D("-1.7")
    assert a1["score_change_30d"] is None
    # A6 moved to team south; two responses (10 and 8): NPS 50
    assert (a6["account_team"], a6["owner_email"]) == ("south", "carl@vendor.example")
    assert (a6["sentiment_score"], a6["health_score"], a6["score_change_7d"]) == (
        D("75.0"), D("76.5"), D("-7.7"))
    # A7 has a subscription now: billing only
    assert (a7["mrr"], a7["billing_score"], a7["health_score"], a7["health_band"]) == (
        D("60.00"), 100, D("100.0"), "healthy")
    assert a7["missing_components"] == "engagement, support, sentiment"
    assert a7["scored_components"] == 1  # thin evidence: the report marks it
    assert a7["days_to_renewal"] == 26
    # A4: the re-delivered October version (same updated_at, later export) says 90
    assert rows["A4"]["mrr"] == D("90.00")
    # the first night's rows stay as they were
    assert _rows(built.second, "customer_health", as_of_date=E0) == \
        _rows(built.first, "customer_health", as_of_date=E0)


def test_the_marts_gate_passes_the_night_of_a_new_account(
        built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On 31 October A7 is in the CRM and nowhere else: its unscored row is what the gate
    expects (no not_null on the score; score, band and components agree)."""
    shutil.copytree(settings.expectations_dir(), tmp_path / "expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    (tmp_path / "dbt_project").symlink_to(settings.dbt_project_dir())
    monkeypatch.setenv("CHW_PROJECT_ROOT", str(tmp_path))  # GX stores nothing in the checkout
    monkeypatch.delenv("CHW_QUALITY_SEVERITY", raising=False)
    report = validate_marts(built.url, "marts", E0, "run-new-account")
    assert report.failures == [], report.summary()
    outcomes = {o.expectation: o for o in report.outcomes if o.suite == "marts.customer_health"}
    assert outcomes["row_count_matches_accounts"].observed_value == "6"  # A7 included
    assert outcomes["score_null_exactly_without_components"].success


def test_customer_inactivity(built: Built) -> None:
    rows = by_key(_rows(built.first, "customer_inactivity", as_of_date=E0), "account_id")
    expected = {
        # touch, outbound, inbound, payment, tier, churned, win-back, action
        "A1": (10, 10, 30, 26, "active", False, False, "No action needed"),
        "A2": (41, 41, None, 30, "cooling", True, True, "Plan a win-back offer"),
        "A3": (122, 122, None, 21, "lapsed", False, False, "Book a renewal conversation"),
        "A4": (11, None, 11, 60, "active", False, False, "Call about the failed payment"),
        "A6": (1, 1, None, 26, "active", False, False, "No action needed"),
        "A7": (None, None, None, None, "never_touched", False, False,
               "Re-introduce yourself and book a call"),
    }
    for account, want in expected.items():
        r = rows[account]
        got = (r["days_since_last_touch"], r["days_since_last_outbound"],
               r["days_since_last_inbound"], r["days_since_last_payment"], r["inactivity_tier"],
               r["is_churned"], r["win_back_candidate"], r["recommended_action"])
        assert got == want, account
    assert rows["A1"]["last_touch_type"] == "call"
    assert rows["A1"]["last_touch_at"] == datetime(2026, 10, 21, 10, tzinfo=UTC)
    # on 7 November the 23:30 -02:00 call of 31 October counts as 1 November: 6 days
    later = by_key(_rows(built.second, "customer_inactivity", as_of_date=E1), "account_id")
    assert (later["A1"]["days_since_last_touch"], later["A1"]["days_since_last_inbound"]) == (6, 37)


def test_revenue_movements(built: Built) -> None:
    def table(snapshot: dict[str, list[dict]]) -> dict:
        return {(str(r["month"])[:7], r["account_id"]): (
            r["account_team"], r["mrr"], r["previous_mrr"], r["movement"])
            for r in snapshot["revenue_movements"]}

    first = table(built.first)
    assert first == {
        ("2026-06", "A3"): ("south", D(54), D(0), "new"),  # 50 EUR at 1.08
        ("2026-07", "A1"): ("north", D(100), D(0), "new"),
        ("2026-07", "A3"): ("south", D(0), D(54), "churn"),
        ("2026-08", "A1"): ("north", D(100), D(100), "retained"),
        ("2026-08", "A4"): ("south", D(80), D(0), "new"),  # A2 trialing: no row
        ("2026-09", "A1"): ("north", D(150), D(100), "expansion"),
        ("2026-09", "A2"): ("north", D(200), D(0), "new"),
        ("2026-09", "A3"): ("south", D(54), D(0), "reactivation"),
        ("2026-09", "A4"): ("south", D(80), D(80), "retained"),
        ("2026-09", "A6"): ("north", D(300), D(0), "new"),
        ("2026-10", "A1"): ("north", D(120), D(150), "contraction"),
        ("2026-10", "A2"): ("north", D(0), D(200), "churn"),  # canceled mid-October
        ("2026-10", "A3"): ("south", D(54), D(54), "retained"),
        ("2026-10", "A4"): ("south", D(80), D(80), "retained"),  # past_due still counts
        ("2026-10", "A6"): ("north", D(300), D(300), "retained"),
    }
    second = table(built.second)
    expected_second = {k: v for k, v in first.items() if k[0] != "2026-10"}
    expected_second.update({
        ("2026-10", "A1"): ("north", D(120), D(150), "contraction"),
        ("2026-10", "A2"): ("north", D(0), D(200), "churn"),
        ("2026-10", "A3"): ("south", D(54), D(54), "retained"),
        ("2026-10", "A4"): ("south", D(90), D(80), "expansion"),  # corrected version
        ("2026-10", "A6"): ("north", D(300), D(300), "retained"),  # north at October's end
        ("2026-11", "A1"): ("north", D(120), D(120), "retained"),
        ("2026-11", "A3"): ("south", D(54), D(54), "retained"),
        ("2026-11", "A4"): ("south", D(90), D(90), "retained"),
        ("2026-11", "A6"): ("south", D(300), D(300), "retained"),
        ("2026-11", "A7"): ("south", D(60), D(0), "new"),
    })
    assert second == expected_second
    # the backfill of 31 October does not overwrite October as known on 7 November
    assert table(built.backfilled) == expected_second


def test_revenue_retention(built: Built) -> None:
    cols = ("starting_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
            "churned_mrr", "ending_mrr", "grr", "nrr", "logos_start", "logos_new",
            "logos_churned", "logo_retention")

    def row(snapshot: dict[str, list[dict]], month: str, segment: str = "all") -> tuple:
        (r,) = _rows(snapshot, "revenue_retention", month=date.fromisoformat(month),
                     segment=segment)
        return tuple(r[c] for c in cols)

    def want(*values: object) -> tuple:
        return tuple(None if v is None else D(v) for v in values)

    assert row(built.first, "2026-06-01") == want(0, 54, 0, 0, 0, 0, 54, None, None, 0, 1, 0, None)
    assert row(built.first, "2026-07-01") == want(54, 100, 0, 0, 0, 54, 100, 0, 0, 1, 1, 1, 0)
    assert row(built.first, "2026-08-01") == want(100, 80, 0, 0, 0, 0, 180, 1, 1, 1, 1, 0, 1)
    assert row(built.first, "2026-09-01") == want(
        180, 500, 50, 54, 0, 0, 784, 1, "1.2778", 2, 3, 0, 1)
    assert row(built.first, "2026-10-01") == want(
        784, 0, 0, 0, 30, 200, 554, "0.7066", "0.7066", 5, 0, 1, "0.8")
    assert row(built.first, "2026-10-01", "mid_market") == want(
        500, 0, 0, 0, 0, 200, 300, "0.6", "0.6", 2, 0, 1, "0.5")
    assert row(built.first, "2026-10-01", "enterprise") == want(
        150, 0, 0, 0, 30, 0, 120, "0.8", "0.8", 1, 0, 0, 1)
    assert row(built.second, "2026-10-01") == want(
        784, 0, 10, 0, 30, 200, 564, "0.7066", "0.7194", 5, 0, 1, "0.8")
    assert row(built.second, "2026-11-01") == want(564, 60, 0, 0, 0, 0, 624, 1, 1, 4, 1, 0, 1)
    assert all(r["nrr_12m"] is None for r in built.second["revenue_retention"])  # < 12 months


def test_customer_lifetime_value(built: Built) -> None:
    rows = by_key(_rows(built.first, "customer_lifetime_value", as_of_date=E0), "account_id")
    expected = {
        # tenure, lifetime revenue, average, current MRR, predicted CLV
        "A1": (4, "450.00", "112.50", "120.00", "14400.00"),  # refund of 20; no churn: 120 months
        "A2": (2, "700.00", "350.00", "0", "0"),
        "A3": (5, "162.00", "32.40", "54.00", "108.00"),  # smb lost 1 of 2 logos: 2 months
        "A4": (3, "160.00", "53.33", "80.00", "160.00"),
        "A6": (2, "600.00", "300.00", "300.00", "36000.00"),
        "A7": (None, "0", None, "0", "0"),
    }
    for account, (tenure, revenue, avg, mrr, clv) in expected.items():
        r = rows[account]
        got = (r["tenure_months"], r["lifetime_revenue"], r["avg_monthly_revenue"],
               r["current_mrr"], r["predicted_clv"])
        assert got == (tenure, D(revenue), None if avg is None else D(avg), D(mrr), D(clv)), \
            account


def test_nps_monthly(built: Built) -> None:
    def table(snapshot: dict[str, list[dict]]) -> dict:
        return {(str(r["month"])[:7], r["account_team"]): (
            r["responses"], r["promoters"], r["passives"], r["detractors"], r["nps"])
            for r in snapshot["nps_monthly"]}

    first = {
        # R2 at 22:30 -03:00 on 30 September is an October response; A5's is left out
        ("2026-09", "all"): (1, 1, 0, 0, D("100.0")),
        ("2026-09", "north"): (1, 1, 0, 0, D("100.0")),
        ("2026-10", "all"): (4, 1, 1, 2, D("-25.0")),
        ("2026-10", "north"): (3, 1, 0, 2, D("-33.3")),
        ("2026-10", "south"): (1, 0, 1, 0, D("0.0")),
    }
    assert table(built.first) == first
    assert table(built.second) == {
        **first,
        ("2026-11", "all"): (1, 0, 1, 0, D("0.0")),
        ("2026-11", "south"): (1, 0, 1, 0, D("0.0")),  # A6 belongs to south now
    }


def test_account_team_summary(built: Built) -> None:
    rows = by_key(_rows(built.first, "account_team_summary", as_of_date=E0), "account_team")
    cols = ("accounts", "mrr", "arr", "accounts_healthy", "accounts_at_risk",
            "accounts_critical", "arr_at_risk", "renewals_next_90d", "renewals_next_90d_at_risk",
            "inactive_accounts", "nps_90d", "avg_health_score", "avg_health_change_7d")
    assert tuple(rows["north"][c] for c in cols) == (
        3, D(420), D(5040), 1, 2, 0, D(1440), 1, 0, 0, D("0.0"), D("69.0"), None)
    assert tuple(rows["south"][c] for c in cols) == (
        3, D(134), D(1608), 0, 2, 0, D(1608), 2, 2, 1, D("0.0"), D("45.9"), None)
    # A7 (south, a new account with no data yet) is counted but not scored: the average
    # is over the scored accounts (A3 50.0, A4 41.8) and the bands add up with it
    assert (rows["south"]["accounts_not_scored"], rows["north"]["accounts_not_scored"]) == (1, 0)
    later = by_key(_rows(built.second, "account_team_summary", as_of_date=E1), "account_team")
    assert later["south"]["accounts_not_scored"] == 0  # A7 has a subscription now
    assert later["north"]["accounts"] == 2
    assert later["north"]["avg_health_score"] == D("59.9")
    assert later["north"]["avg_health_change_7d"] == D("-9.1")


def test_backfill_reproduces_the_old_date(built: Built) -> None:
    for mart in ("customer_health", "customer_inactivity", "customer_lifetime_value",
                 "account_team_summary"):
        assert _rows(built.backfilled, mart, as_of_date=E0) == \
            _rows(built.first, mart, as_of_date=E0), mart
        assert _rows(built.backfilled, mart, as_of_date=E1) == \
            _rows(built.second, mart, as_of_date=E1), mart
    assert built.backfilled["nps_monthly"] == built.second["nps_monthly"]


def test_no_personal_data_of_contacts_in_marts(built: Built) -> None:
    forbidden_columns = {"full_name", "email", "billing_email", "comment", "subject", "title"}
    columns = {r["column_name"] for r in fetch(
        built.url, "select column_name from information_schema.columns"
        " where table_schema = 'marts'")}
    assert not columns & forbidden_columns
    text = " ".join(
        str(r["t"]) for mart in MARTS
        for r in fetch(built.url, f"select t::text as t from marts.{mart} t")  # noqa: S608
    )
    for personal in ("Alice Customer", "alice@acme.example", "billing@acme.example", "Bob"):
        assert personal not in text


def test_analyst_role_reads_marts_only(built: Built) -> None:
    grant_analyst(built.url)  # idempotent: a second time changes nothing
    with psycopg.connect(built.url, autocommit=True) as conn:
        conn.execute("set role chw_analyst")
        for mart in MARTS:
            conn.execute(f"select count(*) from marts.{mart}").fetchone()  # noqa: S608
        for denied in ("select * from raw.crm_accounts",
                       "select * from raw.crm_contacts",
                       "select * from audit.load_ledger",
                       "select * from staging.stg_crm__accounts",
                       "select * from seeds.health_score_weights",
                       "delete from marts.customer_health",
                       "insert into marts.nps_monthly (month, account_team) values"
                       " ('2020-01-01', 'x')",
                       "create table marts.mine (x int)",
                       "create table public.mine (x int)",
                       "drop table marts.customer_health"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(denied)
