-- Every version of every subscription visible at the end of as_of_date, with its validity
-- interval [valid_from, valid_to): a version is in effect from its updated_at until the next
-- version's updated_at (open-ended for the latest). A version equal to the one before it in
-- every contract column but updated_at changes nothing and is left out: a snapshot exporter
-- (Stripe's) delivers every subscription every night, so its versions are derived night over
-- night (docs/exporters.md, "Snapshots"). Incremental: a night recomputes the
-- subscriptions with a newly visible raw row from all their raw rows (macro staging_source).
{{ config(
    unique_key='subscription_id',
    indexes=[{'columns': ['subscription_id']}, {'columns': ['customer_id']},
             {'columns': ['valid_from']}, {'columns': ['_written_at']}],
    meta={'regroup_column': 'customer_id'},
) }}
{%- set raw = source('raw', 'billing_subscriptions') %}
{%- set plan = staging_plan(raw) %}
with versions as (
    {{ visible_versions(staging_source(raw, 'subscription_id', plan), 'subscription_id') }}
),
cleaned as (
    select
        subscription_id,
        customer_id,
        plan_code,
        lower(trim(billing_interval)) as billing_interval,
        quantity,
        mrr,
        upper(trim(currency)) as currency,
        lower(trim(status)) as status,
        started_at,
        current_term_end,
        canceled_at,
        updated_at,
        _export_date as export_date
    from versions
),
compared as (
    select
        c.*,
        a.attributes is distinct from lag(a.attributes)
            over (partition by c.subscription_id order by c.updated_at) as changes_something
    from cleaned as c
    cross join lateral (
        select row(c.customer_id, c.plan_code, c.billing_interval, c.quantity, c.mrr,
                   c.currency, c.status, c.started_at, c.current_term_end, c.canceled_at)
    ) as a (attributes)
),
staged as (
    select
        subscription_id,
        customer_id,
        plan_code,
        billing_interval,
        quantity,
        mrr,
        currency,
        status,
        started_at,
        current_term_end,
        canceled_at,
        updated_at,
        updated_at as valid_from,
        lead(updated_at) over (partition by subscription_id order by updated_at) as valid_to,
        export_date
    from compared
    where changes_something
)
{{ replace_rows('staged', ['subscription_id'], plan,
                staging_changed_keys(raw, 'subscription_id', plan)) }}
