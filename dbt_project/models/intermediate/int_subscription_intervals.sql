-- Subscription versions as validity intervals, tied to the CRM account through the billing
-- customer, with MRR converted to the reporting currency.
-- Incremental (macro derived_plan): a night recomputes the versions a run wrote since this
-- table's last build, every version of the subscriptions whose customer a run wrote, and drops
-- the intervals of versions that are gone (issue 15: a night reads and writes the versions it
-- changes, not every version of a changed subscription).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['subscription_id', 'valid_from'],
    indexes=[{'columns': ['subscription_id']}, {'columns': ['account_id']},
             {'columns': ['subscription_id', 'valid_from']},
             {'columns': ['_written_at']}, {'columns': ['valid_from']},
             {'columns': ['valid_to']}, {'columns': ['started_at']}, {'columns': ['canceled_at']}],
    meta={'regroup_column': 'account_id'},
) }}
{%- set versions = ref('stg_billing__subscription_versions') %}
{%- set customers = ref('stg_billing__customers') %}
{%- set plan = derived_plan([versions, customers], seeds=[ref('currency_rates')]) %}
{%- set changed -%}
    select subscription_id, valid_from from {{ versions }} where _written_at > {{ plan.since_at }}
    union
    select v.subscription_id, v.valid_from
    from {{ versions }} as v
    join {{ customers }} as c on c.customer_id = v.customer_id
    where c._written_at > {{ plan.since_at }}
{%- endset %}
{%- set one_run = written_by_one_run(versions, plan.since_at) %}
{#- the intervals of versions that are gone: only a subscription recomputed from all its raw
    rows can lose a version (stg_billing__subscription_versions drops it; its rows say so with
    _written_from = -infinity); when several runs wrote versions since, a later run may have
    rewritten such a row, so then every subscription with a written version is checked -#}
{%- set gone -%}
    select i.subscription_id, i.valid_from
    from {{ this }} as i
    where i.subscription_id in (
        select subscription_id from {{ versions }}
        where _written_at > {{ plan.since_at }}
          and (_written_from = '-infinity' or not {{ one_run }}))
      and not exists (
        select from {{ versions }} as v
        where v.subscription_id = i.subscription_id and v.valid_from = i.valid_from)
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
        v.valid_to,
        -- bookkeeping for int_mrr_monthly: the first instant from which the subscription's
        -- intervals may differ from those this table held before (the staged versions' own,
        -- when one run wrote them since this table's build and their customer is unchanged)
        {%- if plan.mode == 'incremental' %}
        case
            when c._written_at <= {{ plan.since_at }} and {{ one_run }}
            then v._written_from
            else '-infinity'
        end as _written_from
        {%- else %}
        '-infinity'::timestamptz as _written_from
        {%- endif %}
    from {{ versions }} as v
    join {{ customers }} as c on c.customer_id = v.customer_id
    {{ join_rates('v.currency') }}
    {{ join_reporting_rate() }}
    {%- if plan.mode == 'incremental' %}
    where (v.subscription_id, v.valid_from) in ({{ changed }})
    {%- endif %}
)
{{ replace_rows('intervals', ['subscription_id', 'valid_from'], plan, gone) }}
