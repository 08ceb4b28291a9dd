-- The four health components per (not deleted) account at the end of as_of_date, each 0-100
-- or NULL where the account has no data for it; see models/marts/_marts.yml for formulas.
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
    where responded_on > {{ d }} - {{ var('sentiment_window_days') }}
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
        n.responses,
        round(100.0 * (n.promoters - n.detractors) / nullif(n.responses, 0), 1) as nps,
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
),
parts as (
    select
        f.*,
        -- engagement: half recency (100 today, 0 at the window's length), half frequency
        -- (100 at engagement_full_touches touches within the window)
        case when f.touched then
            0.5 * greatest(0, 100 - 100.0 * f.days_since_last_touch
                                      / {{ var('engagement_window_days') }})
            + 0.5 * least(100, 100.0 * f.touches_in_window / {{ var('engagement_full_touches', 12) }})
        end as engagement_raw,
        -- support: mean of the parts present: load, resolution time, CSAT
        case when coalesce(f.tickets_total, 0) > 0 then
            greatest(0, 100 - 10 * f.tickets_in_window - 15 * f.open_high_urgent)
        end as support_load,
        case when f.avg_hours_to_resolve is not null then
            greatest(0, 100 - 100.0 * f.avg_hours_to_resolve / 168)
        end as support_resolution,
        case when f.avg_csat is not null then (f.avg_csat - 1) * 25 end as support_csat
    from facts as f
)
select
    account_id,
    segment,
    days_since_last_touch,
    touches_in_window,
    tickets_in_window,
    open_high_urgent,
    avg_csat,
    responses as nps_responses,
    nps,
    failed_payments,
    overdue_invoices,
    past_due_subscriptions,
    contracted,
    round(engagement_raw, 1) as engagement_score,
    case when support_load is not null then round(
        (support_load + coalesce(support_resolution, 0) + coalesce(support_csat, 0))
        / (1 + (support_resolution is not null)::int + (support_csat is not null)::int),
        1)
    end as support_score,
    case when responses > 0 then round((nps + 100) / 2, 1) end as sentiment_score,
    case when has_billing then greatest(0,
        100
        - 25 * least(failed_payments, 2)
        - 15 * least(overdue_invoices, 3)
        - case when past_due_subscriptions > 0 then 30 else 0 end
        - case when contracted then 20 else 0 end
    ) end as billing_score
from parts
