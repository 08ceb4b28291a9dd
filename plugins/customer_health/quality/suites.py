"""What each suite expects, as code: the raw suites derive from the export contract,
the mart suites from `shared/spec/marts.md`. `sync_context` writes them into the GX
file context under `expectations/gx/`, where they are committed.

Every expectation carries a readable name in `meta.name` (e.g. `between(score)`): the
name used in messages, in `audit.quality_results` and in severity rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from great_expectations import expectations as gxe
from great_expectations.expectations.expectation import Expectation

from customer_health.contract import ENTITIES, Entity
from customer_health.modelling import dbt_facts

RAW_DATASOURCE = "warehouse_raw"
MARTS_DATASOURCE = "warehouse_marts"
#: The suite parameter names the runner fills in at validation time.
LATEST_ALLOWED = "latest_allowed_timestamp"
VOLUME_MIN = "volume_min_rows"
VOLUME_MAX = "volume_max_rows"
EXPECTED_ACCOUNTS = "expected_accounts"

#: Dates that lie in the future by nature (a renewal date, an invoice's due date).
FUTURE_BY_NATURE = frozenset({"current_term_end", "due_at"})
#: Contact personal data: no mart column may be named like this...
PERSONAL_DATA_PATTERN = "(e_?mail|full_name|first_name|last_name|phone|mobile|address)"
#: ...except the account manager's (an employee's) work address, part of the mart contract.
PERSONAL_DATA_ALLOWED = ("owner_email",)


@dataclass(frozen=True)
class SuiteSpec:
    name: str  # e.g. raw.crm_accounts, marts.customer_health
    datasource: str
    table: str
    batch_column: str | None  # a date column: the batch is one day's rows; None: all rows
    expectations: tuple[Expectation, ...]

    #: GX reads every batch whole, from a view that selects the day's rows (see batches.py).
    batch_definition = "whole_table"


def _named(name: str, expectation: Expectation) -> Expectation:
    expectation.meta = {"name": name}
    return expectation


def expectation_name(expectation) -> str:
    """The readable name of an Expectation or an ExpectationConfiguration."""
    kind = getattr(expectation, "expectation_type", None) or getattr(expectation, "type", "")
    return (expectation.meta or {}).get("name") or kind


# ---- raw ---------------------------------------------------------------------------------


def raw_expectations(entity: Entity) -> tuple[Expectation, ...]:
    out: list[Expectation] = []
    if entity.version_column:
        cols = [entity.key, entity.version_column]
        out.append(_named(f"unique({', '.join(cols)})",
                          gxe.ExpectCompoundColumnsToBeUnique(column_list=cols)))
    else:
        out.append(_named(f"unique({entity.key})",
                          gxe.ExpectColumnValuesToBeUnique(column=entity.key)))
    for name in entity.required_columns:
        out.append(_named(f"not_null({name})", gxe.ExpectColumnValuesToNotBeNull(column=name)))
    for col in entity.columns:
        if col.choices:
            out.append(_named(f"in_set({col.name})", gxe.ExpectColumnValuesToBeInSet(
                column=col.name, value_set=list(col.choices))))
        if col.low is not None or col.high is not None:
            out.append(_named(f"between({col.name})", gxe.ExpectColumnValuesToBeBetween(
                column=col.name, min_value=col.low, max_value=col.high)))
        if col.type in ("timestamp", "date") and col.name not in FUTURE_BY_NATURE:
            out.append(_named(f"not_future({col.name})", gxe.ExpectColumnValuesToBeBetween(
                column=col.name, max_value={"$PARAMETER": LATEST_ALLOWED})))
    out.append(_named("volume", gxe.ExpectTableRowCountToBeBetween(
        min_value={"$PARAMETER": VOLUME_MIN}, max_value={"$PARAMETER": VOLUME_MAX})))
    return tuple(out)


def raw_suite(entity: Entity) -> SuiteSpec:
    return SuiteSpec(f"raw.{entity.raw_table}", RAW_DATASOURCE, entity.raw_table,
                     "_export_date", raw_expectations(entity))


# ---- marts -------------------------------------------------------------------------------


def _unique(*cols: str) -> Expectation:
    if len(cols) == 1:
        return _named(f"unique({cols[0]})", gxe.ExpectColumnValuesToBeUnique(column=cols[0]))
    return _named(f"unique({', '.join(cols)})",
                  gxe.ExpectCompoundColumnsToBeUnique(column_list=list(cols)))


def _between(col: str, low: float | None, high: float | None = None) -> Expectation:
    return _named(f"between({col})",
                  gxe.ExpectColumnValuesToBeBetween(column=col, min_value=low, max_value=high))


def _not_null(col: str) -> Expectation:
    return _named(f"not_null({col})", gxe.ExpectColumnValuesToNotBeNull(column=col))


def _in_set(col: str, values: tuple[str, ...]) -> Expectation:
    return _named(f"in_set({col})",
                  gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(values)))


def _rows(name: str, description: str, query: str) -> Expectation:
    return _named(name, gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=query, description=description))


def _no_personal_data(table: str) -> Expectation:
    allowed = ", ".join(f"'{c}'" for c in PERSONAL_DATA_ALLOWED)
    # The query must read {batch} (GX insists); the count only ties it to the batch.
    return _rows(
        "no_personal_data",
        f"no column of {table} is named like contact personal data",
        "select c.column_name from information_schema.columns as c"  # noqa: S608 (constants)
        f" where c.table_schema = current_schema() and c.table_name = '{table}'"
        f" and c.column_name ~* '{PERSONAL_DATA_PATTERN}'"
        f" and c.column_name not in ({allowed})"
        " and (select count(*) from {batch}) >= 0",
    )


COMPONENTS = ("engagement", "support", "sentiment", "billing")
SCORES = (*(f"{c}_score" for c in COMPONENTS), "health_score")
BANDS = ("healthy", "at_risk", "critical")
TIERS = ("active", "cooling", "dormant", "lapsed", "never_touched")
MOVEMENTS = ("new", "reactivation", "expansion", "contraction", "churn", "retained")
BRIDGE_AMOUNTS = ("starting_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr",
                  "contraction_mrr", "churned_mrr", "ending_mrr")


def _customer_health() -> tuple[Expectation, ...]:
    """A new account (no component has data) is normal: its score and band are NULL. So
    score and band are not required; the rule that ties them to the components is."""
    healthy_from, at_risk_from = dbt_facts.band_thresholds()  # the macro health_band's
    band = (f"case when health_score >= {healthy_from} then 'healthy'"
            f" when health_score >= {at_risk_from} then 'at_risk'"
            " when health_score is not null then 'critical' end")
    none_present = " and ".join(f"{c}_score is null" for c in COMPONENTS)
    present = " + ".join(f"({c}_score is not null)::int" for c in COMPONENTS)
    missing = ", ".join(f"case when {c}_score is null then '{c}' end" for c in COMPONENTS)
    return (
        _unique("as_of_date", "account_id"),
        _not_null("account_id"),
        *(_between(s, 0, 100) for s in SCORES),
        _in_set("health_band", BANDS),
        _rows("score_null_exactly_without_components",
              "health_score is NULL exactly when no component has data (a new account)",
              "select account_id, health_score from {batch}"  # noqa: S608
              f" where (health_score is null) <> ({none_present})"),
        _rows("band_matches_score",
              f"health_band is healthy from {healthy_from}, at_risk from {at_risk_from},"
              " else critical;"
              " NULL exactly when health_score is",
              "select account_id, health_score, health_band from {batch}"  # noqa: S608
              f" where health_band is distinct from ({band})"),
        _rows("scored_components_match",
              "scored_components counts the components with data, missing_components names"
              " the others",
              "select account_id, scored_components, missing_components from {batch}"  # noqa: S608
              f" where scored_components is distinct from ({present})"
              f" or coalesce(missing_components, '') <> concat_ws(', ', {missing})"),
        _between("mrr", 0),
        _named("row_count_matches_accounts", gxe.ExpectTableRowCountToEqual(
            value={"$PARAMETER": EXPECTED_ACCOUNTS})),
        _no_personal_data("customer_health"),
    )


def _customer_inactivity() -> tuple[Expectation, ...]:
    return (
        _unique("as_of_date", "account_id"),
        _in_set("inactivity_tier", TIERS),
        _between("days_since_last_touch", 0),
        _no_personal_data("customer_inactivity"),
    )


def _revenue_movements() -> tuple[Expectation, ...]:
    return (
        _unique("month", "account_id"),
        _in_set("movement", MOVEMENTS),
        _between("mrr", 0),
        _between("previous_mrr", 0),
        _no_personal_data("revenue_movements"),
    )


def _revenue_retention() -> tuple[Expectation, ...]:
    bridge = ("starting_mrr + new_mrr + expansion_mrr + reactivation_mrr"
              " - contraction_mrr - churned_mrr")
    return (
        _unique("month", "segment"),
        *(_between(a, 0) for a in BRIDGE_AMOUNTS),
        _rows("mrr_bridge",
              "ending = starting + new + expansion + reactivation - contraction - churned,"
              " to the cent",
              f"select month, segment, ending_mrr, {bridge} as bridged from {{batch}}"  # noqa: S608
              f" where round(ending_mrr::numeric, 2) <> round(({bridge})::numeric, 2)"),
        _no_personal_data("revenue_retention"),
    )


def _customer_lifetime_value() -> tuple[Expectation, ...]:
    return (
        _unique("as_of_date", "account_id"),
        _between("current_mrr", 0),
        _between("predicted_clv", 0),
        _between("tenure_months", 0),
        _no_personal_data("customer_lifetime_value"),
    )


def _nps_monthly() -> tuple[Expectation, ...]:
    return (
        _unique("month", "account_team"),
        _between("nps", -100, 100),
        _rows("responses_add_up", "responses = promoters + passives + detractors",
              "select month, account_team from {batch}"
              " where responses <> promoters + passives + detractors"),
        _no_personal_data("nps_monthly"),
    )


def _account_team_summary() -> tuple[Expectation, ...]:
    return (
        _unique("as_of_date", "account_team"),
        _between("mrr", 0),
        _between("arr", 0),
        _no_personal_data("account_team_summary"),
    )


def _health_score_backtest_accounts() -> tuple[Expectation, ...]:
    healthy_from, at_risk_from = dbt_facts.band_thresholds()
    band = (f"case when health_score >= {healthy_from} then 'healthy'"
            f" when health_score >= {at_risk_from} then 'at_risk'"
            " when health_score is not null then 'critical' end")
    return (
        _unique("evaluation_date", "horizon_days", "account_id"),
        _not_null("churned_within_horizon"),
        *(_between(s, 0, 100) for s in SCORES),
        _in_set("health_band", BANDS),
        _rows("band_matches_score", "health_band follows health_score's cut-offs",
              "select account_id, health_score, health_band from {batch}"  # noqa: S608
              f" where health_band is distinct from ({band})"),
        _between("mrr", 0, None),
        _no_personal_data("health_score_backtest_accounts"),
    )


def _health_score_backtest() -> tuple[Expectation, ...]:
    rates = ("churn_rate", "churn_rate_healthy", "churn_rate_at_risk", "churn_rate_critical",
             "warning_precision", "warning_recall", "auc", "auc_ci_low", "auc_ci_high",
             *(f"auc_{c}" for c in COMPONENTS))
    return (
        _unique("evaluation_date", "segment", "horizon_days"),
        *(_between(r, 0, 1) for r in rates),
        _rows("bands_add_up", "healthy + at_risk + critical = accounts scored, churned too",
              "select evaluation_date, segment from {batch}"
              " where healthy_accounts + at_risk_accounts + critical_accounts <> accounts_scored"
              " or healthy_churned + at_risk_churned + critical_churned <> accounts_churned"),
        _no_personal_data("health_score_backtest"),
    )


def _customer_purchase_propensity() -> tuple[Expectation, ...]:
    scores = ("p_alive", "expected_purchases_90d", "fitted_accounts", "model_r",
              "model_alpha", "model_a", "model_b")
    return (
        _unique("account_id"),
        _not_null("account_id"),
        _between("p_alive", 0, 1),
        _between("expected_purchases_90d", 0, None),
        _between("repeat_purchases", 0, None),
        _between("days_since_last_purchase", 0, None),
        _rows("scored_whole_or_not_at_all",
              "a night's accounts all have their scores and parameters, or none has",
              "select account_id from {batch} where"  # noqa: S608 (constants)
              f" ({' is null or '.join(scores)} is null)"
              f" and not ({' is null and '.join(scores)} is null)"
              " or exists (select 1 from {batch} where p_alive is null)"
              " and exists (select 1 from {batch} where p_alive is not null)"
              " or (select count(distinct fitted_accounts) from {batch}) > 1"),
        _rows("purchases_in_order", "first purchase <= last purchase <= as_of_date",
              "select account_id from {batch}"
              " where first_purchase_on > last_purchase_on or last_purchase_on > as_of_date"),
        _no_personal_data("customer_purchase_propensity"),
    )


#: mart table -> its expectations
MARTS = {
    "customer_health": _customer_health,
    "customer_inactivity": _customer_inactivity,
    "revenue_movements": _revenue_movements,
    "revenue_retention": _revenue_retention,
    "customer_lifetime_value": _customer_lifetime_value,
    "nps_monthly": _nps_monthly,
    "account_team_summary": _account_team_summary,
    "health_score_backtest_accounts": _health_score_backtest_accounts,
    "health_score_backtest": _health_score_backtest,
    "customer_purchase_propensity": _customer_purchase_propensity,
}


def batch_column(table: str) -> str | None:
    """A mart keyed by as_of_date is checked on the night's rows; a monthly one or one
    rebuilt whole (the models' unique_key, read from the dbt manifest) on all its rows."""
    whole = dbt_facts.monthly_marts() | dbt_facts.whole_marts()
    return None if table in whole else "as_of_date"


def mart_suite(table: str) -> SuiteSpec:
    return SuiteSpec(f"marts.{table}", MARTS_DATASOURCE, table, batch_column(table),
                     MARTS[table]())


def all_suites() -> tuple[SuiteSpec, ...]:
    return tuple(raw_suite(e) for e in ENTITIES) + tuple(mart_suite(t) for t in MARTS)
