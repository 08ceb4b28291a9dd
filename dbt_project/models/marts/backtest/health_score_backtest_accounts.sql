{{ config(materialized='table') }}
-- One row per evaluation date, horizon (int_backtest_dates) and account live on the date
-- (int_backtest_scores: the score as it was then), with whether it churned within the
-- horizon: its MRR, by the subscription
-- history as known on as_of_date (int_subscription_intervals), fell to 0 at some moment after
-- the end of the evaluation date and before the end of the horizon's last day. Rebuilt whole
-- each night (not keyed by as_of_date): a past date's score never changes, its outcome may be
-- corrected by later exports.
with intervals as (
    select * from {{ ref('int_subscription_intervals') }}
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
    from {{ ref('int_backtest_scores') }} as b
    inner join {{ ref('int_backtest_dates') }} as d on d.evaluation_date = b.evaluation_date
),
churned as (
    select distinct b.evaluation_date, b.horizon_days, b.account_id
    from scores as b
    join zero_moments as z
        on z.account_id = b.account_id
       and z.changed_at >= {{ end_of_day('b.evaluation_date') }}
       and z.changed_at < {{ end_of_day('b.evaluation_date + b.horizon_days') }}
)
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
