-- Every version of every subscription visible at the end of as_of_date, with its validity
-- interval [valid_from, valid_to): a version is in effect from its updated_at until the next
-- version's updated_at (open-ended for the latest). A version equal to the one before it in
-- every contract column but updated_at changes nothing and is left out: a snapshot exporter
-- (Stripe's) delivers every subscription every night, so its versions are derived night over
-- night (docs/exporters.md, "Snapshots"); last_restated_at keeps the updated_at of the last
-- raw version a version stands for (itself, or the later ones equal to it).
--
-- Incremental (issue 15): a night writes only the versions it changes. A subscription whose
-- newly visible raw rows all come after every raw row it had (updated_at later than its
-- current version's last_restated_at: the usual case) is continued from its current version:
-- that version (its valid_to, its last_restated_at) and the new ones are written, the older
-- versions are not read. Any other subscription with a newly visible raw row (a version
-- delivered late, between versions already staged, or re-delivered) is recomputed from all
-- its raw rows, and its versions that no longer exist are dropped.
{{ config(
    unique_key=['subscription_id', 'valid_from'],
    indexes=[{'columns': ['subscription_id']}, {'columns': ['customer_id']},
             {'columns': ['valid_from']}, {'columns': ['_written_at']},
             {'columns': ['subscription_id', 'valid_from']}],
    meta={'regroup_column': 'customer_id'},
) }}
{%- set raw = source('raw', 'billing_subscriptions') %}
{%- set plan = staging_plan(raw) %}
{%- set incremental = plan.mode == 'incremental' %}
{%- set attributes = ['customer_id', 'plan_code', 'billing_interval', 'quantity', 'mrr',
                      'currency', 'status', 'started_at', 'current_term_end', 'canceled_at'] %}
{%- if incremental %}
{#- The subscriptions recomputed from all their raw rows: those with a newly visible row at or
    before the last raw version they had. -#}
{%- set reread -%}
    select n.subscription_id
    from new_rows as n
    join {{ this }} as cur
        on cur.subscription_id = n.subscription_id and cur.valid_to is null
    where n.updated_at <= cur.last_restated_at
{%- endset %}
{#- asked first, so that a night with none does not plan a read of raw for them -#}
{%- set any_reread = run_query('with new_rows as (' ~ newly_visible_rows(raw, plan)
                               ~ ') select exists (' ~ reread ~ ')').columns[0].values()[0] %}
{%- endif %}
with
{%- if incremental %}
new_rows as (
    {{ newly_visible_rows(raw, plan) }}
),
reread as (
    {{ reread }}
),
{%- endif %}
versions as (
    {%- if incremental %}
    {%- if any_reread %}
    select *, '-infinity'::timestamptz as changed_from from (
        {{ visible_versions('(select * from ' ~ raw
                            ~ ' where subscription_id in (select subscription_id from reread))',
                            'subscription_id') }}
    ) as v
    union all
    {%- endif %}
    select *, updated_at as changed_from from (
        {{ visible_versions('(select * from new_rows'
                            ~ ' where subscription_id not in (select subscription_id from reread))',
                            'subscription_id') }}
    ) as v
    {%- else %}
    select *, '-infinity'::timestamptz as changed_from from (
        {{ visible_versions(raw, 'subscription_id') }}
    ) as v
    {%- endif %}
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
        updated_at as last_restated_at,
        _export_date as export_date,
        changed_from
    from versions
    {%- if incremental %}
    union all
    -- a continued subscription's current version, the one its new rows are compared with
    select
        cur.subscription_id,
        {% for column in attributes %}cur.{{ column }},
        {% endfor %}cur.updated_at,
        cur.last_restated_at,
        cur.export_date,
        'infinity'::timestamptz as changed_from
    from {{ this }} as cur
    where cur.valid_to is null
      and cur.subscription_id in (select subscription_id from new_rows)
      and cur.subscription_id not in (select subscription_id from reread)
    {%- endif %}
),
compared as (
    select
        c.*,
        a.attributes is distinct from lag(a.attributes)
            over (partition by c.subscription_id order by c.updated_at) as changes_something
    from cleaned as c
    cross join lateral (
        select row({% for column in attributes %}c.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %})
    ) as a (attributes)
),
runs as (
    -- a run: a version that changes something and the versions equal to it after it
    select
        *,
        count(*) filter (where changes_something)
            over (partition by subscription_id order by updated_at) as run
    from compared
),
restated as (
    select
        *,
        max(last_restated_at) over (partition by subscription_id, run) as run_restated_at
    from runs
),
staged as (
    select
        subscription_id,
        {% for column in attributes %}{{ column }},
        {% endfor %}updated_at,
        updated_at as valid_from,
        lead(updated_at) over (partition by subscription_id order by updated_at) as valid_to,
        export_date,
        run_restated_at as last_restated_at,
        -- bookkeeping for int_subscription_intervals: the first instant from which the
        -- subscription's versions may differ from those the table held before this run
        min(changed_from) over (partition by subscription_id) as _written_from
    from restated
    where changes_something
)
{{ replace_rows('staged', ['subscription_id', 'valid_from'], plan,
                'select subscription_id, valid_from from ' ~ this
                ~ ' where subscription_id in (select subscription_id from reread)'
                if incremental else none) }}
