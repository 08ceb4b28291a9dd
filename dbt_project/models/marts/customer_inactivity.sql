{{ config(
    unique_key='as_of_date',
    indexes=[{'columns': ['as_of_date']}],
) }}
-- One row per (not deleted) account per as_of_date: how long since we last touched it.
{% set d = as_of_date() %}
with base as (
    select
        a.account_id,
        a.account_name,
        a.account_team,
        a.owner_email,
        t.last_touch_at,
        t.last_touch_type,
        {{ d }} - {{ utc_date('t.last_touch_at') }} as days_since_last_touch,
        {{ d }} - {{ utc_date('t.last_outbound_at') }} as days_since_last_outbound,
        {{ d }} - {{ utc_date('t.last_inbound_at') }} as days_since_last_inbound,
        {{ d }} - {{ utc_date('p.last_payment_at') }} as days_since_last_payment,
        p.last_payment_at,
        p.last_failed_payment_at,
        coalesce(p.overdue_invoices, 0) as overdue_invoices,
        coalesce(p.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(s.mrr_now, 0) as mrr,
        coalesce(s.paid_before, false) as paid_before,
        s.last_paid_month,
        coalesce(s.past_due_subscriptions, 0) as past_due_subscriptions,
        s.renewal_date
    from {{ ref('stg_crm__accounts') }} as a
    left join {{ ref('int_account_touchpoints') }} as t on t.account_id = a.account_id
    left join {{ ref('int_account_payment_facts') }} as p on p.account_id = a.account_id
    left join {{ ref('int_account_subscription_facts') }} as s on s.account_id = a.account_id
),
flags as (
    select
        b.*,
        case
            when b.days_since_last_touch is null then 'never_touched'
            when b.days_since_last_touch <= {{ var('inactivity_active_days') }} then 'active'
            when b.days_since_last_touch <= {{ var('inactivity_cooling_days') }} then 'cooling'
            when b.days_since_last_touch <= {{ var('inactivity_dormant_days') }} then 'dormant'
            else 'lapsed'
        end as inactivity_tier,
        b.paid_before and b.mrr = 0 as is_churned,
        -- top quartile of lifetime revenue among the accounts with any revenue
        case when b.lifetime_revenue > 0 then
            percent_rank() over (
                partition by b.lifetime_revenue > 0 order by b.lifetime_revenue
            ) >= 0.75
        else false end as top_revenue_quartile
    from base as b
),
decided as (
    select
        f.*,
        f.is_churned
            and (f.last_paid_month + interval '1 month')::date
                >= {{ d }} - {{ var('win_back_days') }}
            and f.top_revenue_quartile as win_back_candidate
    from flags as f
)
select
    {{ d }} as as_of_date,
    account_id,
    account_name,
    account_team,
    owner_email,
    last_touch_at,
    last_touch_type,
    days_since_last_touch,
    days_since_last_outbound,
    days_since_last_inbound,
    days_since_last_payment,
    inactivity_tier,
    is_churned,
    win_back_candidate,
    case
        when not is_churned
             and last_failed_payment_at >= {{ as_of_end() }} - interval '30 days'
             and (last_payment_at is null or last_failed_payment_at > last_payment_at)
            then 'Call about the failed payment'
        when not is_churned and (overdue_invoices > 0 or past_due_subscriptions > 0)
            then 'Call about the overdue invoice'
        when win_back_candidate then 'Plan a win-back offer'
        when is_churned then 'Ask why they left and keep in touch'
        when renewal_date <= {{ d }} + 90 and inactivity_tier <> 'active'
            then 'Book a renewal conversation'
        when inactivity_tier in ('lapsed', 'never_touched')
            then 'Re-introduce yourself and book a call'
        when inactivity_tier = 'dormant' then 'Schedule a check-in'
        when inactivity_tier = 'cooling' then 'Send a useful update or a check-in e-mail'
        else 'No action needed'
    end as recommended_action
from decided
