{%- set source = ref('int_backtest_accounts') %}
{%- set keys = ['evaluation_date', 'horizon_days', 'account_id'] %}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ catch_up_replace(ref('int_backtest_accounts'), 'computed_at',
                                  ['evaluation_date', 'horizon_days', 'account_id']) }}",
    indexes=[{'columns': keys, 'unique': True}, {'columns': ['computed_at']}],
) }}
-- One row per evaluation date, horizon and account: the score the account had then and whether it
-- churned within the horizon. Computed incrementally in int_backtest_accounts (issue 15); the
-- mart is that table's copy, published with the other marts (write, audit, publish). It
-- catches up with the rows int_backtest_accounts wrote since its newest computed_at (macros
-- catch_up_plan, catch_up_replace: the pre-hook deletes the rows these replace), or is
-- copied whole when that table was rebuilt since. No unique_key: the mart has no as_of_date,
-- so WAP's shadow sync leaves it to this model (customer_health.modelling.dbt_facts.whole_marts).
{%- set plan = catch_up_plan(source, 'computed_at') %}
select
    evaluation_date,
    horizon_days,
    account_id,
    segment,
    account_team,
    health_score,
    health_band,
    engagement_score,
    support_score,
    sentiment_score,
    billing_score,
    mrr,
    churned_within_horizon,
    weights_version,
    _written_at as computed_at
from {{ source }}
{{ catch_up_rows(plan) }}
