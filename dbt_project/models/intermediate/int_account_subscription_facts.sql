-- Subscription facts per account at the end of as_of_date: MRR now and billing_window_days
-- earlier, the nearest renewal of a live subscription, past-due subscriptions, and the
-- month-end MRR history used to tell churned accounts.
{% set before = "(" ~ as_of_end() ~ " - interval '" ~ var('billing_window_days') ~ " days')" %}
with moments as (
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
    from {{ ref('int_subscription_intervals') }} as s
    group by s.account_id
),
history as (
    select
        account_id,
        max(month) filter (where mrr > 0) as last_paid_month
    from {{ ref('int_mrr_monthly') }}
    where month < date_trunc('month', {{ as_of_date() }})::date
    group by account_id
)
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
