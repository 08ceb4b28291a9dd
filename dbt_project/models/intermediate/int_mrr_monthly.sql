-- MRR per account per month in the reporting currency: the sum over the subscription
-- versions in effect at the month's end (the end of as_of_date for its month) whose status is
-- active or past_due, that have started and are not canceled at that moment. trialing,
-- canceled and unpaid count 0. Accounts with versions in effect but no paying one get mrr 0.
select
    m.month,
    m.month_end_at,
    s.account_id,
    sum(
        case
            when s.status in ('active', 'past_due')
             and s.started_at < m.month_end_at
             and (s.canceled_at is null or s.canceled_at >= m.month_end_at)
            then s.mrr_reporting
            else 0
        end
    ) as mrr
from {{ ref('int_months') }} as m
join {{ ref('int_subscription_intervals') }} as s
    on s.valid_from < m.month_end_at
   and (s.valid_to is null or s.valid_to >= m.month_end_at)
group by m.month, m.month_end_at, s.account_id
