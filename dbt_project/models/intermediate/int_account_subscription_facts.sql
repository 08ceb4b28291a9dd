-- Subscription facts per account at the end of as_of_date: MRR now and billing_window_days
-- earlier, the nearest renewal of a live subscription, past-due subscriptions, and the
-- month-end MRR history used to tell churned accounts.
-- Incremental (macro derived_plan; issue 15: rebuilt each night from every interval and every
-- month of MRR, it grew with the history, 1.5 -> 2.1 s at 100,000 accounts): from its night L
-- to tonight D, an account's facts change only when a run wrote its intervals or its months
-- of MRR since, or when one of its intervals has an instant the facts compare with the end of
-- the night (or billing_window_days before it) between those of L and of D (valid_from,
-- valid_to, started_at, canceled_at), or its renewal date as of L is before D (each
-- comparison flips only there). A night recomputes those accounts whole. Rebuilt in a
-- new month (last_paid_month looks at the months before as_of_date's) or when an upstream was
-- rebuilt or moved an interval to another account.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='account_id',
    indexes=[{'columns': ['account_id']}],
) }}
{%- set intervals = ref('int_subscription_intervals') %}
{%- set monthly = ref('int_mrr_monthly') %}
{%- set state = incremental_state() if incremental_planning() and is_incremental() else none %}
{%- set new_month = state is not none and state.as_of_date[:7] != as_of_date_str()[:7] %}
{%- set plan = derived_plan([intervals, monthly], rebuild=new_month) %}
{%- set incremental = plan.mode == 'incremental' %}
{% set before = "(" ~ as_of_end() ~ " - interval '" ~ var('billing_window_days') ~ " days')" %}
{%- if incremental %}
{%- set end_then = day_end(plan.since) %}
{%- set before_then = "(" ~ end_then ~ " - interval '" ~ var('billing_window_days') ~ " days')" %}
{%- set flips = [] %}
{%- for column in ['valid_from', 'valid_to', 'started_at', 'canceled_at'] %}
{%- for since, until in [(end_then, as_of_end()), (before_then, before)] %}
{%- do flips.append(column ~ ' >= ' ~ since ~ ' and ' ~ column ~ ' < ' ~ until) %}
{%- endfor %}
{%- endfor %}
{%- endif %}
with
{%- if incremental %}
changed as (
    select account_id from {{ intervals }} where _written_at > {{ plan.since_at }}
    union
    select account_id from {{ monthly }} where _written_at > {{ plan.since_at }}
    {%- for flip in flips %}
    union
    select account_id from {{ intervals }} where {{ flip }}
    {%- endfor %}
    union
    -- a renewal date this table holds (as of L) that is now past: the nearest live term end
    -- changes only when it lies from L to before D (equal to reading the current versions'
    -- current_term_end, which has no index: 1.3 s at 100,000 accounts x 365 days)
    select account_id from {{ this }}
    where renewal_date >= date '{{ plan.since }}' and renewal_date < {{ as_of_date() }}
),
{%- endif %}
moments as (
    select
        s.account_id,
        sum(case
            when {{ paying_at(as_of_end(), 's') }}
             and s.valid_from < {{ as_of_end() }}
             and s.valid_to is null
            then s.mrr_reporting else 0 end) as mrr_now,
        sum(case
            when {{ paying_at(before, 's') }}
             and s.valid_from < {{ before }}
             and (s.valid_to is null or s.valid_to >= {{ before }})
            then s.mrr_reporting else 0 end) as mrr_window_ago,
        -- live: the current version is trialing, active or past_due and not canceled yet
        min(s.current_term_end) filter (
            where s.valid_to is null
              and s.status in ('trialing', 'active', 'past_due')
              and (s.canceled_at is null or s.canceled_at >= {{ as_of_end() }})
              and s.current_term_end >= {{ as_of_date() }}
        ) as renewal_date,
        count(*) filter (
            where s.valid_to is null and s.status = 'past_due'
              and (s.canceled_at is null or s.canceled_at >= {{ as_of_end() }})
        ) as past_due_subscriptions
    from {{ intervals }} as s
    {%- if incremental %}
    where s.account_id in (select account_id from changed)
    {%- endif %}
    group by s.account_id
),
history as (
    select
        account_id,
        max(month) filter (where mrr > 0) as last_paid_month
    from {{ monthly }}
    where month < date_trunc('month', {{ as_of_date() }})::date
    {%- if incremental %}
      and account_id in (select account_id from changed)
    {%- endif %}
    group by account_id
),
facts as (
    select
        m.account_id,
        m.mrr_now,
        m.mrr_window_ago,
        m.renewal_date,
        m.past_due_subscriptions,
        h.last_paid_month,
        h.last_paid_month is not null as paid_before
    from moments as m
    left join history as h on h.account_id = m.account_id
)
{{ replace_rows('facts', ['account_id'], plan, 'select account_id from changed' if incremental else none) }}
