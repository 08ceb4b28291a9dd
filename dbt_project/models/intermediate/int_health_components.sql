-- The four health components per (not deleted) account at the end of as_of_date, each 0-100
-- or NULL where the account has no data for it: macro health_component_scores, shared with
-- the back-test (int_backtest_scores); see models/marts/_marts.yml for formulas.
{% set d = as_of_date() %}
with accounts as (
    select account_id, segment from {{ ref('stg_crm__accounts') }}
),
nps as (
    select
        account_id,
        count(*) as responses,
        count(*) filter (where {{ nps_promoter('score') }}) as promoters,
        count(*) filter (where {{ nps_detractor('score') }}) as detractors
    from {{ ref('stg_crm__nps_responses') }}
    where {{ in_window('responded_on', d, 'sentiment_window_days') }}
    group by account_id
),
facts as (
    select
        a.account_id,
        a.segment,
        t.last_touch_at is not null as touched,
        t.touches_in_window,
        {{ d }} - {{ utc_date('t.last_touch_at') }} as days_since_last_touch,
        k.tickets_total,
        k.tickets_in_window,
        k.open_high_urgent,
        k.avg_hours_to_resolve,
        k.avg_csat,
        n.responses as nps_responses,
        {{ nps_of('n.responses', 'n.promoters', 'n.detractors') }} as nps,
        s.account_id is not null as has_billing,
        coalesce(p.failed_payments_in_window, 0) as failed_payments,
        coalesce(p.overdue_invoices, 0) as overdue_invoices,
        coalesce(s.past_due_subscriptions, 0) as past_due_subscriptions,
        coalesce(s.mrr_now, 0) < coalesce(s.mrr_window_ago, 0) as contracted
    from accounts as a
    left join {{ ref('int_account_touchpoints') }} as t on t.account_id = a.account_id
    left join {{ ref('int_account_ticket_facts') }} as k on k.account_id = a.account_id
    left join nps as n on n.account_id = a.account_id
    left join {{ ref('int_account_payment_facts') }} as p on p.account_id = a.account_id
    left join {{ ref('int_account_subscription_facts') }} as s on s.account_id = a.account_id
)
select
    account_id,
    segment,
    days_since_last_touch,
    touches_in_window,
    tickets_in_window,
    open_high_urgent,
    avg_csat,
    nps_responses,
    nps,
    failed_payments,
    overdue_invoices,
    past_due_subscriptions,
    contracted,
    {{ health_component_scores() }}
from facts
