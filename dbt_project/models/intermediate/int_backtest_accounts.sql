-- One row per evaluation date, horizon (int_backtest_dates) and account live on the date
-- (int_backtest_scores: the score as it was then), with whether it churned within the
-- horizon: its MRR, by the subscription
-- history as known on as_of_date (int_subscription_intervals), fell to 0 at some moment after
-- the end of the evaluation date and before the end of the horizon's last day. A past date's
-- score never changes; its outcome may be corrected by later exports.
-- The rows of mart health_score_backtest_accounts.
-- Incremental (issue 15: rebuilt whole, it cost 16-19 s of every night at 100,000 accounts):
-- a night recomputes the outcomes of the accounts whose subscription intervals a run wrote
-- since this table's last build (macro derived_plan) and writes only the rows whose outcome
-- changed (a past date's score does not change). Rebuilt whole when the evaluation dates,
-- the scores or the weights changed (the plan's inputs), or int_subscription_intervals was
-- rebuilt or moved a subscription to another account.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['evaluation_date', 'horizon_days', 'account_id'],
    indexes=[{'columns': ['evaluation_date', 'horizon_days', 'account_id']},
             {'columns': ['_written_at']}],
) }}
-- depends_on: {{ ref('int_health_weights') }}
{%- set scores_model = ref('int_backtest_scores') %}
{%- set dates_model = ref('int_backtest_dates') %}
{%- set intervals_model = ref('int_subscription_intervals') %}
{%- set inputs = '' %}
{%- if incremental_planning() %}
{%- set inputs = run_query(
    "select coalesce(string_agg(evaluation_date || '/' || horizon_days, ','"
    " order by evaluation_date, horizon_days), '')"
    " || ';' || '" ~ scores_model ~ "'::regclass::oid"
    " || ';' || coalesce((select max(weights_version)::text from " ~ ref('int_health_weights') ~ "), '')"
    " from " ~ dates_model).columns[0].values()[0] %}
{%- endif %}
{%- set plan = derived_plan([intervals_model], inputs=inputs) %}
{%- set incremental = plan.mode == 'incremental' %}
{%- set changed_accounts -%}
    select distinct account_id from {{ intervals_model }} where _written_at > {{ plan.since_at }}
{%- endset %}
with intervals as (
    select * from {{ intervals_model }}
    {%- if incremental %}
    where account_id in ({{ changed_accounts }})
    {%- endif %}
),
changes as (
    -- the moments an account's MRR can change: a version takes effect, a subscription starts
    -- or is canceled
    select distinct s.account_id, m.changed_at
    from intervals as s
    cross join lateral (values (s.valid_from), (s.started_at), (s.canceled_at)) as m (changed_at)
    where m.changed_at is not null
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
    select b.*, d.horizon_days
    from {{ scores_model }} as b
    inner join {{ dates_model }} as d on d.evaluation_date = b.evaluation_date
    {%- if incremental %}
    where b.account_id in ({{ changed_accounts }})
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
    -- only the rows whose outcome changed
    select o.*
    from outcomes as o
    join {{ this }} as t
        on t.evaluation_date = o.evaluation_date
       and t.horizon_days = o.horizon_days
       and t.account_id = o.account_id
    where t.churned_within_horizon is distinct from o.churned_within_horizon
)
{%- endif %}
{{ replace_rows('changed' if incremental else 'outcomes',
                ['evaluation_date', 'horizon_days', 'account_id'], plan) }}
