{{ config(
    unique_key='as_of_date',
    indexes=[{'columns': ['as_of_date']}],
) }}
-- One row per (not deleted) account per as_of_date.
{% set d = as_of_date() %}
with churn as (
    -- the segment's monthly logo churn over the 12 full months before the month of as_of_date
    select
        segment,
        sum(logos_churned)::numeric / nullif(sum(logos_start), 0) as monthly_churn_rate
    from {{ ref('revenue_retention') }}
    where month >= (date_trunc('month', {{ d }}) - interval '12 months')::date
      and month < date_trunc('month', {{ d }})::date
    group by segment
),
base as (
    select
        a.account_id,
        a.account_team,
        a.segment,
        p.first_paid_at,
        case when p.first_paid_at is not null then
            (extract(year from {{ d }}) - extract(year from {{ utc_date('p.first_paid_at') }})) * 12
            + extract(month from {{ d }}) - extract(month from {{ utc_date('p.first_paid_at') }})
            + 1
        end::int as tenure_months,
        coalesce(p.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(s.mrr_now, 0) as current_mrr,
        ch.monthly_churn_rate
    from {{ ref('stg_crm__accounts') }} as a
    left join {{ ref('int_account_payment_facts') }} as p on p.account_id = a.account_id
    left join {{ ref('int_account_subscription_facts') }} as s on s.account_id = a.account_id
    left join churn as ch on ch.segment = a.segment
)
select
    {{ d }} as as_of_date,
    account_id,
    account_team,
    segment,
    first_paid_at,
    tenure_months,
    lifetime_revenue,
    round(lifetime_revenue / nullif(tenure_months, 0), 2) as avg_monthly_revenue,
    current_mrr,
    round(current_mrr * least(
        {{ var('clv_max_months') }},
        coalesce(1 / nullif(monthly_churn_rate, 0), {{ var('clv_max_months') }})
    ), 2) as predicted_clv,
    round(least(
        {{ var('clv_max_months') }},
        coalesce(1 / nullif(monthly_churn_rate, 0), {{ var('clv_max_months') }})
    ), 1) as expected_lifetime_months
from base
