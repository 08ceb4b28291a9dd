"""The marts gate against a hand-made mart schema (only the columns the checks read)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest

from customer_health import settings
from customer_health.contract import entity
from customer_health.loading.raw_schema import ensure_partition, ensure_schemas
from customer_health.quality import QualityGateFailed, build_data_docs, validate_marts

#: the committed GX context of this checkout
CHECKOUT_EXPECTATIONS = Path(__file__).resolve().parents[1] / "expectations"

DAY = date(2026, 11, 3)

MART_DDL = """
create table {s}.customer_health (as_of_date date, account_id text, owner_email text,
    mrr numeric, engagement_score numeric, support_score numeric, sentiment_score numeric,
    billing_score numeric, health_score numeric, health_band text, missing_components text,
    scored_components int);
insert into {s}.customer_health values
    ('2026-11-03', 'A1', 'am@example.com', 100, 80, 70, null, 90, 82.5, 'healthy',
     'sentiment', 3),
    ('2026-11-03', 'A2', 'am@example.com', 0, 30, 50, 40, 20, 39.99, 'critical', null, 4),
    -- A4 is new: no component has data, so no score and no band
    ('2026-11-03', 'A4', 'am@example.com', 0, null, null, null, null, null, null,
     'engagement, support, sentiment, billing', 0),
    -- A5 has a subscription only: scored on thin evidence
    ('2026-11-03', 'A5', 'am@example.com', 60, null, null, null, 100, 100, 'healthy',
     'engagement, support, sentiment', 1),
    ('2026-11-02', 'A1', 'am@example.com', 100, 80, 70, null, 90, 10, 'healthy',
     'sentiment', 3);
create table {s}.customer_inactivity (as_of_date date, account_id text, inactivity_tier text,
    days_since_last_touch int);
insert into {s}.customer_inactivity values
    ('2026-11-03', 'A1', 'active', 3), ('2026-11-03', 'A2', 'never_touched', null);
create table {s}.revenue_movements (month date, account_id text, movement text, mrr numeric,
    previous_mrr numeric);
insert into {s}.revenue_movements values
    ('2026-10-01', 'A1', 'new', 80, 0), ('2026-11-01', 'A1', 'expansion', 100, 80),
    ('2026-11-01', 'A2', 'churn', 0, 50);
create table {s}.revenue_retention (month date, segment text, starting_mrr numeric,
    new_mrr numeric, expansion_mrr numeric, reactivation_mrr numeric,
    contraction_mrr numeric, churned_mrr numeric, ending_mrr numeric);
insert into {s}.revenue_retention values
    ('2026-11-01', 'all', 130, 0, 20, 0, 0, 50, 100),
    ('2026-10-01', 'all', 50, 80, 0, 0, 0, 0, 130.004);
create table {s}.customer_lifetime_value (as_of_date date, account_id text,
    current_mrr numeric, predicted_clv numeric, tenure_months int);
insert into {s}.customer_lifetime_value values
    ('2026-11-03', 'A1', 100, 2400, 2), ('2026-11-03', 'A2', 0, 0, 1);
create table {s}.nps_monthly (month date, account_team text, responses int, promoters int,
    passives int, detractors int, nps numeric);
insert into {s}.nps_monthly values ('2026-11-01', 'all', 3, 2, 0, 1, 33.3);
create table {s}.account_team_summary (as_of_date date, account_team text, mrr numeric,
    arr numeric);
insert into {s}.account_team_summary values ('2026-11-03', 'emea', 100, 1200);
create table {s}.health_score_backtest_accounts (evaluation_date date, horizon_days int,
    account_id text, health_score numeric, health_band text, engagement_score numeric,
    support_score numeric, sentiment_score numeric, billing_score numeric, mrr numeric,
    churned_within_horizon boolean);
insert into {s}.health_score_backtest_accounts values
    ('2026-07-01', 90, 'A1', 82.5, 'healthy', 80, 70, null, 90, 100, false),
    ('2026-07-01', 90, 'A2', 39.9, 'critical', 30, 50, 40, 20, 50, true);
create table {s}.health_score_backtest (evaluation_date date, segment text, horizon_days int,
    accounts_scored int, accounts_churned int, churn_rate numeric, healthy_accounts int,
    healthy_churned int, churn_rate_healthy numeric, at_risk_accounts int,
    at_risk_churned int, churn_rate_at_risk numeric, critical_accounts int,
    critical_churned int, churn_rate_critical numeric, warning_precision numeric,
    warning_recall numeric, auc numeric, auc_ci_low numeric, auc_ci_high numeric,
    auc_engagement numeric, auc_support numeric, auc_sentiment numeric,
    auc_billing numeric);
insert into {s}.health_score_backtest values
    ('2026-07-01', 'all', 90, 2, 1, 0.5, 1, 0, 0, 0, 0, null, 1, 1, 1, 1, 1, 1, 0.2, 1,
     1, 0.5, null, 1);
create table {s}.customer_purchase_propensity (as_of_date date, account_id text,
    account_team text, first_purchase_on date, last_purchase_on date,
    days_since_last_purchase int, repeat_purchases int, recency_days int, age_days int,
    p_alive float8, expected_purchases_90d float8, fitted_accounts int, model_r float8,
    model_alpha float8, model_a float8, model_b float8);
insert into {s}.customer_purchase_propensity values
    ('2026-11-03', 'B1', 'emea', '2026-01-10', '2026-10-30', 4, 6, 293, 297, 0.93, 1.8, 2,
     0.5, 20, 0.8, 2.4),
    ('2026-11-03', 'B2', 'emea', '2026-02-01', '2026-04-01', 216, 2, 59, 275, 0.12, 0.1, 2,
     0.5, 20, 0.8, 2.4);
"""

ACCOUNTS = """
insert into raw.crm_accounts (account_id, account_name, segment, region, account_team,
    owner_email, created_at, updated_at, is_deleted, _export_date, _source_file, _line_number)
values
    ('A1', 'One', 'smb', 'emea', 'emea', 'am@example.com', '2026-01-01', '2026-01-01', false,
     '2026-11-01', 'crm/2026-11-01/accounts.csv', 2),
    ('A2', 'Two', 'smb', 'emea', 'emea', 'am@example.com', '2026-01-01', '2026-01-01', false,
     '2026-11-01', 'crm/2026-11-01/accounts.csv', 3),
    ('A3', 'Gone', 'smb', 'emea', 'emea', 'am@example.com', '2026-01-01', '2026-11-02', true,
     '2026-11-03', 'crm/2026-11-03/accounts.csv', 2),
    ('A4', 'New', 'smb', 'emea', 'emea', 'am@example.com', '2026-11-03', '2026-11-03', false,
     '2026-11-03', 'crm/2026-11-03/accounts.csv', 3),
    ('A5', 'Newish', 'smb', 'emea', 'emea', 'am@example.com', '2026-11-03', '2026-11-03', false,
     '2026-11-03', 'crm/2026-11-03/accounts.csv', 4)
"""


@pytest.fixture(scope="module")
def marts_url(fresh_database_factory: Callable[[], str]) -> str:
    url = fresh_database_factory()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schemas(conn)
        for night in (date(2026, 11, 1), date(2026, 11, 3)):
            ensure_partition(conn, entity("crm", "accounts"), night)
        conn.execute(ACCOUNTS)
        for schema in ("marts_staging", "marts_bad", "marts_rule"):
            conn.execute(f"create schema {schema}")
            conn.execute(MART_DDL.format(s=schema))
        conn.execute("""
            update marts_bad.customer_health set health_band = 'at_risk', support_score = 120
                where account_id = 'A1';
            delete from marts_bad.customer_health where account_id = 'A2';
            update marts_bad.revenue_retention set ending_mrr = 100.02
                where month = '2026-11-01';
            alter table marts_bad.customer_inactivity add column contact_email text;
            drop table marts_bad.nps_monthly;
            -- the score-and-band rule broken each way (one row each, A1 as the control)
            update marts_rule.customer_health set engagement_score = null,
                support_score = null, sentiment_score = null, billing_score = null,
                missing_components = 'engagement, support, sentiment, billing',
                scored_components = 0 where account_id = 'A2';  -- a score from no data
            update marts_rule.customer_health set health_score = null, health_band = null
                where account_id = 'A5';  -- data but no score
            update marts_rule.customer_health set health_band = 'healthy'
                where account_id = 'A4';  -- a band without a score
            update marts_rule.customer_health set scored_components = 4
                where account_id = 'A1' and as_of_date = '2026-11-03';  -- miscounted
        """)
    return url


def _stored(url: str, run_id: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select suite, expectation, severity, success, observed_value"
            " from audit.quality_results where run_id = %s order by suite, expectation",
            (run_id,),
        ).fetchall()


def test_good_marts_pass_and_are_stored(gx_root: Path, marts_url: str) -> None:
    report = validate_marts(marts_url, "marts_staging", DAY, "run-marts-good")
    assert report.failures == [], report.summary()
    report.raise_for_failures()
    rows = _stored(marts_url, "run-marts-good")
    assert len(rows) == len(report.outcomes)
    assert {r[0] for r in rows} == {f"marts.{t}" for t in (
        "customer_health", "customer_inactivity", "revenue_movements", "revenue_retention",
        "customer_lifetime_value", "nps_monthly", "account_team_summary",
        "health_score_backtest_accounts", "health_score_backtest",
        "customer_purchase_propensity")}
    by_name = {(r[0], r[1]): r for r in rows}
    count = by_name[("marts.customer_health", "row_count_matches_accounts")]
    assert count[3] is True and count[4] == "4"  # A3 is deleted; only 2026-11-03's rows
    # the new account A4 (no score, no band) and thin A5 pass the rule that replaced not_null
    for rule in ("score_null_exactly_without_components", "band_matches_score",
                 "scored_components_match"):
        assert by_name[("marts.customer_health", rule)][3] is True, rule
    assert not {("marts.customer_health", f"not_null({c})") for c in (
        "health_score", "health_band")} & set(by_name)
    assert by_name[("marts.revenue_retention", "mrr_bridge")][3] is True  # within the cent


def test_bad_marts_fail_naming_suite_expectation_and_observed_value(
        gx_root: Path, marts_url: str) -> None:
    report = validate_marts(marts_url, "marts_bad", DAY, "run-marts-bad")
    failed = {(o.suite, o.expectation): o.observed_value for o in report.failures}
    assert failed == {
        ("marts.customer_health", "between(support_score)"): failed[
            ("marts.customer_health", "between(support_score)")],
        ("marts.customer_health", "band_matches_score"): "1",
        ("marts.customer_health", "row_count_matches_accounts"): "3",
        ("marts.revenue_retention", "mrr_bridge"): "1",
        ("marts.customer_inactivity", "no_personal_data"): "1",
        ("marts.nps_monthly", "table_exists"): "no table marts_bad.nps_monthly",
    }
    assert "120" in failed[("marts.customer_health", "between(support_score)")]
    with pytest.raises(QualityGateFailed) as caught:
        report.raise_for_failures()
    message = str(caught.value)
    assert "marts.revenue_retention / mrr_bridge: observed 1" in message
    assert "marts.customer_inactivity / no_personal_data: observed 1" in message
    assert "marts.customer_health / row_count_matches_accounts: observed 3" in message
    assert len(_stored(marts_url, "run-marts-bad")) == len(report.outcomes)


def test_a_score_that_breaks_the_rule_fails_the_gate(gx_root: Path, marts_url: str) -> None:
    """NULL scores are allowed only where no component has data, and bands follow scores."""
    report = validate_marts(marts_url, "marts_rule", DAY, "run-marts-rule")
    failed = {(o.suite, o.expectation): o.observed_value for o in report.failures}
    assert failed == {
        ("marts.customer_health", "score_null_exactly_without_components"): "2",  # A2, A5
        ("marts.customer_health", "band_matches_score"): "1",  # A4
        ("marts.customer_health", "scored_components_match"): "1",  # A1
    }
    with pytest.raises(QualityGateFailed, match="score_null_exactly_without_components"):
        report.raise_for_failures()


def test_data_docs_are_built(gx_root: Path, marts_url: str, tmp_path: Path) -> None:
    validate_marts(marts_url, "marts_staging", DAY, "run-marts-docs")
    index = build_data_docs(tmp_path / "data-docs")
    assert index.name == "index.html" and index.is_file()
    with pytest.raises(ValueError, match="inside the published reports"):
        build_data_docs(settings.reports_dir() / "2026-11-03" / "quality")
    html = index.read_text(encoding="utf-8")
    assert "marts.customer_health" in html or "customer_health" in html
    assert list((index.parent / "validations").rglob("*.html"))


def _committed(root: Path) -> dict[str, bytes]:
    gx_dir = root / "gx"
    return {str(p.relative_to(gx_dir)): p.read_bytes() for p in gx_dir.rglob("*")
            if p.is_file() and p.relative_to(gx_dir).parts[0] not in ("uncommitted", "plugins")}


def test_the_committed_context_needed_no_change(gx_root: Path, marts_url: str) -> None:
    """Validations add nothing to the committed context: suites.py and expectations/gx/
    agree (after changing suites.py, run a validation and commit what it rewrote)."""
    validate_marts(marts_url, "marts_staging", DAY, "run-marts-sync")
    # the checkout's own files (settings.expectations_dir() is gx_root's copy here)
    assert _committed(gx_root / "expectations") == _committed(CHECKOUT_EXPECTATIONS)


def test_the_nightly_gate_reads_the_rows_that_differ_from_the_published_marts(
        gx_root: Path, fresh_database: Callable[[], str]) -> None:
    """With `published`, a monthly mart is read on the dates the build wrote that `marts`
    does not hold, and the back-test's accounts on those with a row computed since the
    published copy's newest (every row of such an account); without it, whole."""
    from customer_health.publishing import wap

    url = fresh_database()
    published_night = date(2026, 11, 2)
    wap.prepare_shadow(url)  # no marts yet: an empty shadow
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MART_DDL.format(s=wap.SHADOW))
        for table in ("revenue_movements", "revenue_retention", "nps_monthly"):
            conn.execute(f"alter table {wap.SHADOW}.{table}"
                         " add column as_of_date date default '2026-11-02'")
        conn.execute(f"alter table {wap.SHADOW}.health_score_backtest_accounts"
                     " add column computed_at timestamptz default '2026-11-02 01:00Z'")
    wap.mark_building(url, published_night)
    wap.swap_in(url, published_night)
    with psycopg.connect(url, autocommit=True) as conn:
        # rows the gate would fail today (say an expectation added since) that `marts`
        # already publishes
        conn.execute("""
            insert into marts.revenue_movements values
                ('2026-09-01', 'A9', 'new', -1, 0, '2026-11-02');
            insert into marts.health_score_backtest_accounts values
                ('2026-06-01', 90, 'A1', 82.5, 'critical', 80, 70, null, 90, 100, false,
                 '2026-11-02 01:00Z');
        """)
    wap.prepare_shadow(url)
    wap.mark_building(url, DAY)
    with psycopg.connect(url, autocommit=True) as conn:
        assert wap.unpublished_dates(conn, wap.SHADOW) == [DAY]
        assert wap.unpublished_dates(conn, wap.PUBLISHED) == []
        # tonight: November rewritten (one row wrong), A2's outcome computed again, its new
        # row clashing with its old one
        conn.execute(f"""
            delete from {wap.SHADOW}.revenue_movements where month = '2026-11-01';
            insert into {wap.SHADOW}.revenue_movements values
                ('2026-11-01', 'A1', 'expansion', 100, 80, '{DAY}'),
                ('2026-11-01', 'A3', 'new', -5, 0, '{DAY}');
            insert into {wap.SHADOW}.health_score_backtest_accounts values
                ('2026-07-01', 90, 'A2', 39.9, 'critical', 30, 50, 40, 20, 50, false, now());
        """)  # noqa: S608 (constants)

    nightly = validate_marts(url, wap.SHADOW, DAY, "run-changed", expected_account_count=4,
                             published=wap.PUBLISHED)
    failed = {(o.suite, o.expectation): o.observed_value for o in nightly.failures}
    assert set(failed) == {
        ("marts.revenue_movements", "between(mrr)"),
        ("marts.health_score_backtest_accounts",
         "unique(evaluation_date, horizon_days, account_id)"),
    }, nightly.summary()
    assert "-5" in failed[("marts.revenue_movements", "between(mrr)")]
    assert "-1" not in failed[("marts.revenue_movements", "between(mrr)")]

    whole = validate_marts(url, wap.SHADOW, DAY, "run-whole", expected_account_count=4)
    failed = {(o.suite, o.expectation): o.observed_value for o in whole.failures}
    assert set(failed) == {
        ("marts.revenue_movements", "between(mrr)"),
        ("marts.health_score_backtest_accounts",
         "unique(evaluation_date, horizon_days, account_id)"),
        ("marts.health_score_backtest_accounts", "band_matches_score"),
    }, whole.summary()
    assert "-1" in failed[("marts.revenue_movements", "between(mrr)")]
    with psycopg.connect(url) as conn:  # the batch schemas are gone
        assert conn.execute("select count(*) from pg_namespace where nspname like"
                            " 'chw\\_quality\\_%'").fetchone()[0] == 0
