-- One row per evaluation date, horizon (int_backtest_dates) and account live on the date
-- (int_backtest_scores: the score as it was then), with whether it churned within the
-- horizon: its MRR, by the subscription
-- history as known on as_of_date (int_subscription_intervals), fell to 0 at some moment after
-- the end of the evaluation date and before the end of the horizon's last day. A past date's
-- score never changes; its outcome may be corrected by later exports.
-- The rows of mart health_score_backtest_accounts.
-- Incremental (issue 15: rebuilt whole, it cost 16-19 s of every night at 100,000 accounts,
-- and rebuilding it for each new evaluation date made that night grow with the history): a
-- night computes the rows of the (evaluation date, horizon) pairs it has no rows of yet (a
-- new evaluation date, a new horizon) for every account, and recomputes the outcomes of the
-- accounts whose subscription intervals a run wrote since this table's last build (macro
-- derived_plan), writing only the rows whose outcome changed (a past date's score does not
-- change). Of such an account it recomputes only the pairs whose horizon ends after the first
-- instant its intervals may have changed (changed_since below): a pair's horizon has passed
-- by the night (int_backtest_dates), so a night's ordinary changes, which take effect that
-- night, decide no pair it holds, and a late or corrected version only the pairs from its
-- instant on (issue 15: every pair of a changed account grew with the number of dates).
-- Rebuilt whole when the scores were rebuilt or their weights changed (the plan's
-- inputs), a pair it holds is no longer wanted (a var changed), or int_subscription_intervals
-- was rebuilt or moved a subscription to another account.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['evaluation_date', 'horizon_days', 'account_id'],
    indexes=[{'columns': ['evaluation_date', 'horizon_days', 'account_id']},
             {'columns': ['account_id']},
             {'columns': ['_written_at']}],
) }}
-- depends_on: {{ ref('int_health_weights') }}
{%- set scores_model = ref('int_backtest_scores') %}
{%- set dates_model = ref('int_backtest_dates') %}
{%- set intervals_model = ref('int_subscription_intervals') %}
{%- set inputs = '' %}
{%- set new_pairs = [] %}
{%- set gone_pairs = [] %}
{%- if incremental_planning() %}
{%- set inputs = run_query(
    "select '" ~ scores_model ~ "'::regclass::oid"
    " || ';' || coalesce((select max(weights_version)::text from " ~ ref('int_health_weights') ~ "), '')"
    ).columns[0].values()[0] %}
{%- if is_incremental() %}
{%- set wanted = run_query(
    "select evaluation_date::text || '/' || horizon_days from " ~ dates_model
    ).columns[0].values() | list %}
{#- the pairs this table holds: a skip scan of its (evaluation_date, horizon_days, account_id)
    index, one probe per pair, instead of reading its rows -#}
{%- set held = run_query(
    "with recursive pairs as ("
    " (select evaluation_date, horizon_days from " ~ this
    ~ " order by evaluation_date, horizon_days limit 1)"
    " union all"
    " select n.evaluation_date, n.horizon_days from pairs as p cross join lateral ("
    " select t.evaluation_date, t.horizon_days from " ~ this ~ " as t"
    " where (t.evaluation_date, t.horizon_days) > (p.evaluation_date, p.horizon_days)"
    " order by t.evaluation_date, t.horizon_days limit 1) as n)"
    " select evaluation_date::text || '/' || horizon_days from pairs"
    ).columns[0].values() | list %}
{%- set new_pairs = wanted | reject('in', held) | list %}
{%- set gone_pairs = held | reject('in', wanted) | list %}
{%- endif %}
{%- endif %}
{%- set plan = derived_plan([intervals_model], inputs=inputs, rebuild=gone_pairs | length > 0) %}
{%- set incremental = plan.mode == 'incremental' %}
{#- the accounts whose intervals a run wrote since this table's build and, for each, the
    first instant from which its MRR, or the set of moments at which it is checked
    (zero_moments), may differ from what this table was computed with:
    int_subscription_intervals' _written_from (-infinity when several runs wrote intervals
    since), or a start or cancellation before it that a new version brings and the version
    before it did not have. Any zero moment before that instant is unchanged, so is the
    outcome of a pair whose horizon ends at or before it. moments_from: the earliest moment
    that can decide a pair recomputed (its evaluation date's end lies at most the longest
    horizon before that instant). -#}
{%- set changed_since -%}
    select
        account_id,
        changed_from,
        changed_from - make_interval(days => (select max(horizon_days) from {{ dates_model }}))
            as moments_from
    from (
        select
            n.account_id,
            min(
                case
                    when {{ written_by_one_run(intervals_model, plan.since_at) }}
                    then least(
                        n._written_from,
                        case
                            when n.valid_from >= n._written_from
                             and n.started_at is distinct from p.started_at
                            then n.started_at
                        end,
                        case
                            when n.valid_from >= n._written_from
                             and n.canceled_at is distinct from p.canceled_at
                            then n.canceled_at
                        end)
                    else '-infinity'
                end
            ) as changed_from
        from {{ intervals_model }} as n
        left join {{ intervals_model }} as p
            on p.subscription_id = n.subscription_id and p.valid_to = n.valid_from
        where n._written_at > {{ plan.since_at }}
        group by n.account_id
    ) as a
{%- endset %}
{%- set new_pair_filter -%}
    (d.evaluation_date, d.horizon_days) in (
    {%- for pair in new_pairs %}
        (date '{{ pair.split('/')[0] }}', {{ pair.split('/')[1] | int }}){% if not loop.last %},{% endif %}
    {%- endfor %})
{%- endset %}
{#- the moments that can decide a new pair's outcome: from the end of its earliest date to
    the end of its latest date's horizon (a churn counts only within a pair's horizon) -#}
{%- set new_dates = [] %}
{%- set new_ends = [] %}
{%- for pair in new_pairs %}
{%- do new_dates.append(pair.split('/')[0]) %}
{%- do new_ends.append(modules.datetime.date.fromisoformat(pair.split('/')[0])
                       + modules.datetime.timedelta(days=pair.split('/')[1] | int)) %}
{%- endfor %}
{%- if incremental and new_pairs %}
{%- set window_from = end_of_day("date '" ~ new_dates | min ~ "'") %}
{%- set window_to = end_of_day("date '" ~ new_ends | max ~ "'") %}
{%- endif %}
with
{%- if incremental %}
changed_since as materialized (
    {{ changed_since }}
),
{%- endif %}
intervals as (
    {%- if incremental %}
    -- a changed account's intervals that bring a moment from moments_from on or are in effect
    -- then (and within a new pair's horizon), each with the account's moments_from: a column,
    -- not a join in the queries below, whose estimates of the night's few changed rows are poor
    {%- set bound = 'least(a.moments_from, ' ~ window_from ~ ')' if new_pairs else 'a.moments_from' %}
    select s.*, a.moments_from
    from {{ intervals_model }} as s
    inner join changed_since as a on a.account_id = s.account_id
    where s.valid_to is null or s.valid_to >= {{ bound }}
       or s.started_at >= {{ bound }} or s.canceled_at >= {{ bound }}
    {%- if new_pairs %}
    union all
    -- a new pair's outcome needs only the moments within its horizon and the intervals in
    -- effect then (indexes on valid_from, started_at, canceled_at and valid_to): the same rows
    -- however long the history (issue 15: reading every interval grew with it)
    select *, null::timestamptz as moments_from from {{ intervals_model }}
    where account_id not in (select account_id from changed_since)
      and (
          (valid_from < {{ window_to }} and (valid_to is null or valid_to >= {{ window_from }}))
          or (started_at >= {{ window_from }} and started_at < {{ window_to }})
          or (canceled_at >= {{ window_from }} and canceled_at < {{ window_to }})
      )
    {%- endif %}
    {%- else %}
    select * from {{ intervals_model }}
    {%- endif %}
),
changes as (
    -- the moments an account's MRR can change: a version takes effect, a subscription starts
    -- or is canceled
    select distinct s.account_id, m.changed_at
    from intervals as s
    cross join lateral (values (s.valid_from), (s.started_at), (s.canceled_at)) as m (changed_at)
    where m.changed_at is not null
    {%- if incremental %}
      and (m.changed_at >= s.moments_from
           {%- if new_pairs %}
           or (m.changed_at >= {{ window_from }} and m.changed_at < {{ window_to }})
           {%- endif %})
    {%- endif %}
),
zero_moments as (
    -- changes right after which the account's MRR is 0
    {%- set after = "(c.changed_at + interval '1 microsecond')" %}
    select c.account_id, c.changed_at
    from changes as c
    left join intervals as s
        on s.account_id = c.account_id
       and s.valid_from < {{ after }}
       and (s.valid_to is null or s.valid_to >= {{ after }})
       and {{ paying_at(after, 's') }}
    group by c.account_id, c.changed_at
    having coalesce(sum(s.mrr_reporting), 0) = 0
),
scores as (
    select {{ backtest_score_columns('b') }}, d.horizon_days
    from {{ scores_model }} as b
    inner join {{ dates_model }} as d on d.evaluation_date = b.evaluation_date
    {%- if incremental %}
    inner join changed_since as a on a.account_id = b.account_id
    where {{ end_of_day('d.evaluation_date + d.horizon_days') }} > a.changed_from
    {%- if new_pairs %}
      and not {{ new_pair_filter }}
    union all
    -- every account of a pair new tonight
    select {{ backtest_score_columns('b') }}, d.horizon_days
    from {{ scores_model }} as b
    inner join {{ dates_model }} as d on d.evaluation_date = b.evaluation_date
    where {{ new_pair_filter }}
    {%- endif %}
    {%- endif %}
),
churned as (
    select distinct b.evaluation_date, b.horizon_days, b.account_id
    from scores as b
    join zero_moments as z
        on z.account_id = b.account_id
       and z.changed_at >= {{ end_of_day('b.evaluation_date') }}
       and z.changed_at < {{ end_of_day('b.evaluation_date + b.horizon_days') }}
),
outcomes as (
    select
        b.evaluation_date,
        b.horizon_days,
        b.account_id,
        b.segment,
        b.account_team,
        b.health_score,
        b.health_band,
        b.engagement_score,
        b.support_score,
        b.sentiment_score,
        b.billing_score,
        b.mrr,
        c.account_id is not null as churned_within_horizon,
        b.weights_version
    from scores as b
    left join churned as c
        on c.evaluation_date = b.evaluation_date
       and c.horizon_days = b.horizon_days
       and c.account_id = b.account_id
)
{%- if incremental %},
changed as (
    -- only the rows that are new or whose outcome changed
    select o.*
    from outcomes as o
    left join {{ this }} as t
        on t.evaluation_date = o.evaluation_date
       and t.horizon_days = o.horizon_days
       and t.account_id = o.account_id
    where t.account_id is null
       or t.churned_within_horizon is distinct from o.churned_within_horizon
)
{%- endif %}
{{ replace_rows('changed' if incremental else 'outcomes',
                ['evaluation_date', 'horizon_days', 'account_id'], plan) }}
