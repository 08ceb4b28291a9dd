-- Touchpoints (CRM activities) per account at the end of as_of_date: the latest touch overall
-- and by direction, and the touches within the engagement window, each read through an index
-- of stg_crm__activities on the account (a handful of index entries per account, whatever the
-- length of its history). Accounts without an activity before the end of as_of_date have no
-- row.
-- Incremental (macro derived_plan): a night recomputes the accounts with an activity a run
-- wrote since this table's last build or one that occurred after the end of the table's
-- night; an account whose activities only left the engagement window keeps its latest
-- touches, and its window counts lose the touches that left (counted from the same index
-- range that finds those accounts; issue 15: counting their windows again probed every such
-- account's activities, 0.8 s a night at 100,000 accounts and 365 days, growing with the
-- history).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='account_id',
    indexes=[{'columns': ['account_id']}],
) }}
{%- set activities = ref('stg_crm__activities') %}
{%- set plan = derived_plan([activities]) %}
{%- set shift = (var('engagement_window_days') | int) - 1 %}
{%- set window_start = utc_start(as_of_date() ~ ' - ' ~ shift) %}
{%- set changed -%}
    {%- if plan.mode == 'incremental' %}
    select account_id from {{ activities }} where _written_at > {{ plan.since_at }}
    union
    select account_id from {{ activities }}
    where occurred_at >= {{ day_end(plan.since) }} and occurred_at < {{ as_of_end() }}
    {%- else %}
    select distinct account_id from {{ activities }}
    {%- endif %}
{%- endset %}
{%- set window_counts -%}
    -- touches with occurred_on > as_of_date - engagement_window_days
    select
        count(*) as touches_in_window,
        count(*) filter (where c.direction = 'inbound') as inbound_in_window
    from {{ activities }} as c
    where c.account_id = __account__
      and c.occurred_at >= {{ window_start }}
      and c.occurred_at < {{ as_of_end() }}
{%- endset %}
{%- set left_rows -%}
    -- occurred_on in (since - window, as_of_date - window]
    select account_id, direction from {{ activities }}
    where occurred_at >= {{ utc_start("date '" ~ plan.since ~ "' - " ~ shift) }}
      and occurred_at < {{ window_start }}
{%- endset %}
{%- set left_window = 'select account_id from (' ~ left_rows ~ ') as l' %}
with recomputed as (
    select
        a.account_id,
        last_touch.occurred_at as last_touch_at,
        last_touch.activity_type as last_touch_type,
        (
            select max(o.occurred_at) from {{ activities }} as o
            where o.account_id = a.account_id and o.direction = 'outbound'
              and o.occurred_at < {{ as_of_end() }}
        ) as last_outbound_at,
        (
            select max(i.occurred_at) from {{ activities }} as i
            where i.account_id = a.account_id and i.direction = 'inbound'
              and i.occurred_at < {{ as_of_end() }}
        ) as last_inbound_at,
        w.touches_in_window,
        w.inbound_in_window
    from ({{ changed }}) as a
    -- an account without any activity before the end of as_of_date has no row
    join lateral (
        select t.occurred_at, t.activity_type
        from {{ activities }} as t
        where t.account_id = a.account_id and t.occurred_at < {{ as_of_end() }}
        order by t.occurred_at desc, t.activity_id desc
        limit 1
    ) as last_touch on true
    cross join lateral ({{ window_counts | replace('__account__', 'a.account_id') }}) as w
),
touchpoints as (
    select * from recomputed
    {%- if plan.mode == 'incremental' %}
    union all
    -- accounts whose activities only left the window: same latest touches, the window counts
    -- of the table's night less the touches that left (none entered: an account with a
    -- touch after the end of that night, or a row written since, is recomputed above)
    select
        t.account_id,
        t.last_touch_at,
        t.last_touch_type,
        t.last_outbound_at,
        t.last_inbound_at,
        t.touches_in_window - l.touches_left,
        t.inbound_in_window - l.inbound_left
    from {{ this }} as t
    join (
        select
            account_id,
            count(*) as touches_left,
            count(*) filter (where direction = 'inbound') as inbound_left
        from ({{ left_rows }}) as l
        group by account_id
    ) as l on l.account_id = t.account_id
    where t.account_id not in ({{ changed }})
    {%- endif %}
)
{{ replace_rows('touchpoints', ['account_id'], plan,
                '(' ~ changed ~ ') union (' ~ left_window ~ ')') }}
