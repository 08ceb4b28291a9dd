-- Subscription versions as validity intervals, tied to the CRM account through the billing
-- customer, with MRR converted to the reporting currency.
-- Incremental: a night recomputes the subscriptions whose versions or whose customer a run
-- wrote since this table's last build (macro derived_plan).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='subscription_id',
    indexes=[{'columns': ['subscription_id']}, {'columns': ['account_id']},
             {'columns': ['_written_at']}, {'columns': ['valid_from']},
             {'columns': ['valid_to']}, {'columns': ['started_at']}, {'columns': ['canceled_at']}],
    meta={'regroup_column': 'account_id'},
) }}
{%- set versions = ref('stg_billing__subscription_versions') %}
{%- set customers = ref('stg_billing__customers') %}
{%- set plan = derived_plan([versions, customers], seeds=[ref('currency_rates')]) %}
{%- set changed -%}
    select subscription_id from {{ versions }} where _written_at > {{ plan.since_at }}
    union
    select v.subscription_id
    from {{ versions }} as v
    join {{ customers }} as c on c.customer_id = v.customer_id
    where c._written_at > {{ plan.since_at }}
{%- endset %}
with intervals as (
    select
        v.subscription_id,
        v.customer_id,
        c.account_id,
        v.plan_code,
        v.status,
        v.quantity,
        v.mrr,
        v.currency,
        {{ to_reporting('v.mrr') }} as mrr_reporting,
        v.started_at,
        v.current_term_end,
        v.canceled_at,
        v.valid_from,
        v.valid_to
    from {{ versions }} as v
    join {{ customers }} as c on c.customer_id = v.customer_id
    {{ join_rates('v.currency') }}
    {{ join_reporting_rate() }}
    {%- if plan.mode == 'incremental' %}
    where v.subscription_id in ({{ changed }})
    {%- endif %}
)
{{ replace_rows('intervals', ['subscription_id'], plan, changed) }}
