-- Point-in-time health scores: for every evaluation date (int_backtest_dates) and every account
-- live on it (MRR > 0, not deleted), the components, score and band it had at the end of that
-- date, computed from raw as it was known then: only versions exported on or before the date
-- and stamped before its end (the version spans of int_known_versions__*, kept and
-- extended night by night), so nothing exported or updated later leaks in. Set-based over all dates at once (no replay of past nights). The facts mirror the
-- nightly intermediate models; the formulas are the very macros the nightly mart uses
-- (health_component_scores, health_score, health_band; macros/health_score.sql), and the
-- weights those in force now (int_health_weights): the back-test judges today's rules.
-- Incremental on evaluation_date: a date's score never changes once the date has passed (only
-- rows exported by then count), so a night computes only the dates it has no rows of yet with
-- today's weights (a new date whose horizon passed, or every date after a change of weights).
-- After a change of the formula or a window var: dbt run --full-refresh -s int_backtest_scores.
-- No nested loops, and on a night of a few new dates no merge joins (for this model's
-- transaction only): macro backtest_scores_settings.
{{ config(
    materialized='incremental',
    pre_hook='{{ backtest_scores_settings() }}',
    incremental_strategy='delete+insert',
    unique_key='evaluation_date',
    on_schema_change='append_new_columns',
    meta={'stamps_written_at': true},
    indexes=[{'columns': ['evaluation_date']}, {'columns': ['account_id']},
             {'columns': ['_written_at']}],
) }}
-- depends_on: {{ ref('int_known_versions__billing_subscriptions') }}, {{ ref('stg_billing__subscriptions') }}
{#- _written_at: the moment the run that computed a date's rows wrote them, which the post-hook
    records as the model's built_at (macro after_build); the tests check the rows of the
    last build only, none when it computed nothing (whole-table tests cost 1.1-2.5 s of every
    night at 100,000 accounts and grew with the dates). -#}
{%- set e = 'd.evaluation_date' %}
{#- probe: a night with a few new dates finds whether each account was ever touched by an
    index probe per account and date instead of reading every activity version (6.4 s of
    18.7 at 100,000 accounts x 365 days, growing with the history: 0.3 s probed), and its
    touches in the window through the index on occurred_at (2.7 s -> 1.4 s, flat); so are
    its NPS responses and failed payments (indexes on responded_at and attempted_at:
    macro probe_window). -#}
{%- set todo_dates = backtest_score_todo() %}
{%- set todo = todo_dates is none or todo_dates | length > 0 %}
{%- set probe = backtest_scores_probe(todo_dates) %}
{%- if probe and todo %}
{%- set probe_dates = [todo_dates | first, todo_dates | last] %}
{%- endif %}
{%- if not todo %}
-- nothing to compute tonight (columns named: a table built before _written_at lacks it)
select {{ backtest_score_columns() }}, now() as _written_at
from {{ this }} where false
{%- else %}
with dates as (
    {%- if todo_dates is none %}
    select distinct evaluation_date from {{ ref('int_backtest_dates') }}
    {%- else %}
    -- the dates this table holds no rows of with the weights in force (macro backtest_score_todo)
    select d::date as evaluation_date
    from unnest(array[{% for d in todo_dates %}'{{ d }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as d
    {%- endif %}
),
accounts as (
    select d.evaluation_date, a.account_id, lower(trim(a.segment)) as segment, a.account_team
    from dates as d
    join {{ ref('int_known_versions__crm_accounts') }} as a
        on {{ known_on('a', e) }}
    where not a.is_deleted
),
customers as (
    select d.evaluation_date, c.customer_id, c.account_id
    from dates as d
    join {{ ref('int_known_versions__billing_customers') }} as c
        on {{ known_on('c', e) }}
),
-- engagement: touches in the window (the latest of them gives the recency); an account touched
-- before but not within the window has recency 0 (days_since_last_touch = the window)
activities as (
    select
        account_id,
        {{ utc_date('occurred_at') }} as occurred_on,
        greatest(known_from, {{ utc_date('occurred_at') }}) as counts_from,
        known_to
    from {{ ref('int_known_versions__crm_activities') }} as v
    {%- if probe %}
    -- only the window's (the conditions of touches imply these bounds): read by the index on
    -- occurred_at, the same rows however long the history
    where {{ probe_window('occurred_at', 'engagement_window_days', probe_dates[0], probe_dates[1]) }}
    {%- endif %}
),
touches as (
    select
        d.evaluation_date,
        a.account_id,
        count(*) as touches_in_window,
        max(a.occurred_on) as last_touch_on
    from activities as a
    join dates as d
        on d.evaluation_date >= a.counts_from
       and (a.known_to is null or d.evaluation_date < a.known_to)
       and {{ in_window('a.occurred_on', e, 'engagement_window_days') }}
    group by d.evaluation_date, a.account_id
),
touched as (
    {%- if probe %}
    -- touched on the date: some activity version current then counts on or before it
    -- (the same set as the union below; index on account_id, first match only)
    select a.evaluation_date, a.account_id
    from accounts as a
    cross join lateral (
        select 1
        from {{ ref('int_known_versions__crm_activities') }} as v
        where v.account_id = a.account_id
          and greatest(v.known_from, {{ utc_date('v.occurred_at') }}) <= a.evaluation_date
          and (v.known_to is null or a.evaluation_date < v.known_to)
        limit 1
    ) as hit
    {%- else %}
    -- an activity that stays current touches its account from the date it counts on
    select d.evaluation_date, t.account_id
    from (
        select account_id, min(counts_from) as touched_from
        from activities where known_to is null group by account_id
    ) as t
    join dates as d on d.evaluation_date >= t.touched_from
    union
    -- (rare) versions later replaced, e.g. moved to another account, while they are current
    select d.evaluation_date, a.account_id
    from activities as a
    join dates as d on d.evaluation_date >= a.counts_from and d.evaluation_date < a.known_to
    {%- endif %}
),
tickets as (
    select
        d.evaluation_date,
        t.account_id,
        {{ ticket_facts(e) }}
    from dates as d
    join (
        select
            account_id,
            lower(trim(priority)) as priority,
            lower(trim(status)) as status,
            opened_at,
            resolved_at,
            csat_score,
            known_from,
            known_to
        from {{ ref('int_known_versions__crm_support_tickets') }} as v
    ) as t
        on {{ known_on('t', e) }} and t.opened_at < {{ end_of_day(e) }}
    group by d.evaluation_date, t.account_id
),
nps as (
    select
        d.evaluation_date,
        r.account_id,
        count(*) as responses,
        count(*) filter (where {{ nps_promoter('r.score') }}) as promoters,
        count(*) filter (where {{ nps_detractor('r.score') }}) as detractors
    from dates as d
    join {{ ref('int_known_versions__crm_nps_responses') }} as r
        on {{ known_on('r', e) }}
       and r.responded_at < {{ end_of_day(e) }}
       and {{ in_window(utc_date('r.responded_at'), e, 'sentiment_window_days') }}
    {%- if probe %}
    where {{ probe_window('r.responded_at', 'sentiment_window_days', probe_dates[0], probe_dates[1]) }}
    {%- endif %}
    group by d.evaluation_date, r.account_id
),
failed_payments as (
    select d.evaluation_date, c.account_id, count(*) as failed_payments
    from dates as d
    join {{ ref('int_known_versions__billing_payments') }} as p
        on {{ known_on('p', e) }}
       and lower(trim(p.status)) = 'failed'
       and p.attempted_at < {{ end_of_day(e) }}
       and {{ in_window(utc_date('p.attempted_at'), e, 'billing_window_days') }}
    join customers as c on c.evaluation_date = d.evaluation_date and c.customer_id = p.customer_id
    {%- if probe %}
    where {{ probe_window('p.attempted_at', 'billing_window_days', probe_dates[0], probe_dates[1]) }}
    {%- endif %}
    group by d.evaluation_date, c.account_id
),
overdue_invoices as (
    select d.evaluation_date, c.account_id, count(*) as overdue_invoices
    from dates as d
    join {{ ref('int_known_versions__billing_invoices') }} as i
        on {{ known_on('i', e) }}
       and lower(trim(i.status)) = 'open'
       and i.issued_at < {{ end_of_day(e) }}
       and i.due_at < {{ end_of_day(e) }}
    join customers as c on c.evaluation_date = d.evaluation_date and c.customer_id = i.customer_id
    group by d.evaluation_date, c.account_id
),
-- subscriptions: every version visible on the date (a version delivered twice keeps the later
-- export), in effect until the next one's updated_at, as stg_billing__subscription_versions;
-- only the versions in effect at the end of the date or billing_window_days earlier count in
-- the facts below.
{%- set window_start = end_of_day(e) ~ " - interval '" ~ var('billing_window_days') ~ " days'" %}
{%- if probe %}
-- A few dates: those versions are the ones updated from the window's start on (index on
-- updated_at, bounded by the dates) and each subscription's last one before it (one probe of
-- the index on (subscription_id, updated_at) per subscription), as known on the date
-- (int_known_versions__billing_subscriptions): the same rows however long the history
-- (issue 15; reading and sorting every subscription row ever exported grew with it).
{%- set version_columns = 'v.subscription_id, v.customer_id, v.updated_at as valid_from,'
    ~ ' v.currency, v.status, v.started_at, v.canceled_at, v.mrr' %}
subscription_versions as (
    select d.evaluation_date, {{ version_columns }}
    from dates as d
    join {{ ref('int_known_versions__billing_subscriptions') }} as v
        on {{ known_on('v', e) }}
       and v.updated_at >= {{ window_start }}
    where v.updated_at >= {{ end_of_day("date '" ~ probe_dates[0] ~ "'") }}
              - interval '{{ var("billing_window_days") }} days'
    union all
    select d.evaluation_date, b.*
    from dates as d
    cross join {{ ref('stg_billing__subscriptions') }} as s
    cross join lateral (
        select {{ version_columns }}
        from {{ ref('int_known_versions__billing_subscriptions') }} as v
        where v.subscription_id = s.subscription_id
          and v.updated_at < {{ window_start }}
          and {{ known_on('v', e) }}
        order by v.updated_at desc
        limit 1
    ) as b
),
{%- else %}
-- Many dates: every version known on each, sorted narrow (the keys of each version's raw
-- row), its terms read back from raw only for the versions that count: issue 15, the wide
-- sort of every version ever exported cost 8.7 s of a new date's 18.7 at 100,000 accounts x
-- 365 days.
subscription_versions as (
    select distinct on (d.evaluation_date, r.subscription_id, r.updated_at)
        d.evaluation_date,
        r.subscription_id,
        r.customer_id,
        r.updated_at as valid_from,
        r._export_date,
        r._source_file,
        r._line_number
    from dates as d
    join {{ source('raw', 'billing_subscriptions') }} as r
        on {{ known_since(source('raw', 'billing_subscriptions')) }} <= d.evaluation_date
    order by d.evaluation_date, r.subscription_id, r.updated_at,
        r._export_date desc, r._line_number desc
),
{%- endif %}
subscription_spans as (
    select
        v.*,
        lead(v.valid_from) over (
            partition by v.evaluation_date, v.subscription_id order by v.valid_from
        ) as valid_to,
        c.account_id
    from subscription_versions as v
    join customers as c on c.evaluation_date = v.evaluation_date and c.customer_id = v.customer_id
),
subscription_intervals as (
    select
        r.evaluation_date,
        r.subscription_id,
        r.account_id,
        r.valid_from,
        r.valid_to,
        upper(trim(r.currency)) as currency,
        lower(trim(r.status)) as status,
        r.started_at,
        r.canceled_at,
        {{ to_reporting('r.mrr') }} as mrr_reporting
    {%- if probe %}
    from subscription_spans as r
    {%- else %}
    from (
        select s.*, r.currency, r.status, r.started_at, r.canceled_at, r.mrr
        from subscription_spans as s
        join {{ source('raw', 'billing_subscriptions') }} as r
            on r._export_date = s._export_date
           and r._source_file = s._source_file
           and r._line_number = s._line_number
    ) as r
    {%- endif %}
    {{ join_rates('upper(trim(r.currency))') }}
    {{ join_reporting_rate() }}
    where r.valid_to is null
       or r.valid_to >= {{ end_of_day('r.evaluation_date') }}
          - interval '{{ var("billing_window_days") }} days'
),
subscriptions as (
    -- mrr now and billing_window_days earlier, past-due subscriptions (int_account_subscription_facts)
    {%- set now = end_of_day('s.evaluation_date') %}
    {%- set before = '(' ~ now ~ " - interval '" ~ var('billing_window_days') ~ " days')" %}
    select
        s.evaluation_date,
        s.account_id,
        sum(case when {{ paying_at(now, 's') }} and s.valid_to is null
                 then s.mrr_reporting else 0 end) as mrr_now,
        sum(case
            when {{ paying_at(before, 's') }}
             and s.valid_from < {{ before }}
             and (s.valid_to is null or s.valid_to >= {{ before }})
            then s.mrr_reporting else 0 end) as mrr_window_ago,
        count(*) filter (
            where s.valid_to is null and s.status = 'past_due'
              and (s.canceled_at is null or s.canceled_at >= {{ now }})
        ) as past_due_subscriptions
    from subscription_intervals as s
    group by s.evaluation_date, s.account_id
),
facts as (
    select
        a.evaluation_date,
        a.account_id,
        a.segment,
        a.account_team,
        s.mrr_now as mrr,
        k.account_id is not null as touched,
        coalesce(a.evaluation_date - t.last_touch_on, {{ var('engagement_window_days') }})
            as days_since_last_touch,
        coalesce(t.touches_in_window, 0) as touches_in_window,
        tk.tickets_total,
        tk.tickets_in_window,
        tk.open_high_urgent,
        tk.avg_hours_to_resolve,
        tk.avg_csat,
        n.responses as nps_responses,
        {{ nps_of('n.responses', 'n.promoters', 'n.detractors') }} as nps,
        true as has_billing,
        coalesce(p.failed_payments, 0) as failed_payments,
        coalesce(i.overdue_invoices, 0) as overdue_invoices,
        s.past_due_subscriptions,
        s.mrr_now < s.mrr_window_ago as contracted
    from accounts as a
    -- live: MRR > 0 on the date (so the account has billing)
    join subscriptions as s
        on s.evaluation_date = a.evaluation_date and s.account_id = a.account_id and s.mrr_now > 0
    left join touched as k on k.evaluation_date = a.evaluation_date and k.account_id = a.account_id
    left join touches as t on t.evaluation_date = a.evaluation_date and t.account_id = a.account_id
    left join tickets as tk
        on tk.evaluation_date = a.evaluation_date and tk.account_id = a.account_id
    left join nps as n on n.evaluation_date = a.evaluation_date and n.account_id = a.account_id
    left join failed_payments as p
        on p.evaluation_date = a.evaluation_date and p.account_id = a.account_id
    left join overdue_invoices as i
        on i.evaluation_date = a.evaluation_date and i.account_id = a.account_id
),
components as (
    select
        f.evaluation_date,
        f.account_id,
        f.segment,
        f.account_team,
        f.mrr,
        {{ health_component_scores() }}
    from facts as f
),
scored as (
    select
        c.*,
        {{ health_score() }} as health_score,
        w.weights_version
    from components as c
    left join {{ ref('int_health_weights') }} as w on w.segment = c.segment
)
select
    evaluation_date,
    account_id,
    segment,
    account_team,
    mrr,
    engagement_score,
    support_score,
    sentiment_score,
    billing_score,
    health_score,
    {{ health_band('health_score') }} as health_band,
    weights_version,
    now() as _written_at
from scored
{%- endif %}
