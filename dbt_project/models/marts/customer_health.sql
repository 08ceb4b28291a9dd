{{ config(
    unique_key='as_of_date',
    indexes=[{'columns': ['as_of_date']}],
) }}
-- One row per (not deleted) account per as_of_date; a run replaces its own date only.
{% set d = as_of_date() %}
with base as (
    select
        a.account_id,
        a.account_name,
        a.account_team,
        a.owner_email,
        a.segment,
        a.region,
        coalesce(s.mrr_now, 0) as mrr,
        s.renewal_date,
        c.engagement_score,
        c.support_score,
        c.sentiment_score,
        c.billing_score,
        c.days_since_last_touch,
        c.touches_in_window,
        c.tickets_in_window,
        c.open_high_urgent,
        c.avg_csat,
        c.nps,
        c.failed_payments,
        c.overdue_invoices,
        c.past_due_subscriptions,
        w.engagement_weight,
        w.support_weight,
        w.sentiment_weight,
        w.billing_weight,
        w.weights_version
    from {{ ref('stg_crm__accounts') }} as a
    join {{ ref('int_health_components') }} as c on c.account_id = a.account_id
    left join {{ ref('int_account_subscription_facts') }} as s on s.account_id = a.account_id
    left join {{ ref('int_health_weights') }} as w on w.segment = a.segment
),
weighted as (
    select
        b.*,
        -- weights of the components present (a missing one's weight is shared by the others)
        {{ present_weight() }} as present_weight,
        coalesce(engagement_weight * (100 - engagement_score), 0) as engagement_gap,
        coalesce(support_weight * (100 - support_score), 0) as support_gap,
        coalesce(sentiment_weight * (100 - sentiment_score), 0) as sentiment_gap,
        coalesce(billing_weight * (100 - billing_score), 0) as billing_gap
    from base as b
),
scored as (
    select
        w.*,
        {{ health_score() }} as health_score,
        greatest(engagement_gap, support_gap, sentiment_gap, billing_gap) as top_gap
    from weighted as w
),
ranked as (
    -- the component that costs the score most (ties: billing, engagement, support,
    -- sentiment); NULL when nothing costs anything or nothing is scored
    select
        s.*,
        case
            when s.top_gap <= 0 or s.top_gap is null then null
            when s.top_gap = s.billing_gap then 'billing'
            when s.top_gap = s.engagement_gap then 'engagement'
            when s.top_gap = s.support_gap then 'support'
            else 'sentiment'
        end as top_risk_component
    from scored as s
)
select
    {{ d }} as as_of_date,
    s.account_id,
    s.account_name,
    s.account_team,
    s.owner_email,
    s.segment,
    s.region,
    s.mrr,
    s.renewal_date,
    s.renewal_date - {{ d }} as days_to_renewal,
    s.engagement_score,
    s.support_score,
    s.sentiment_score,
    s.billing_score,
    s.health_score,
    {{ health_band('s.health_score') }} as health_band,
    {% if is_incremental() -%}
    s.health_score - w7.health_score as score_change_7d,
    s.health_score - w30.health_score as score_change_30d,
    {%- else -%}
    null::numeric as score_change_7d,
    null::numeric as score_change_30d,
    {%- endif %}
    case s.top_risk_component
        when 'billing' then
            case
                when s.failed_payments > 0
                    then 'Failed payments (' || s.failed_payments || ' in the last '
                         || {{ var('billing_window_days') }} || ' days)'
                when s.overdue_invoices > 0
                    then 'Overdue invoices (' || s.overdue_invoices || ' unpaid past due date)'
                when s.past_due_subscriptions > 0 then 'Subscription payment is past due'
                else 'Revenue shrank: MRR is lower than '
                     || {{ var('billing_window_days') }} || ' days ago'
            end
        when 'engagement' then
            case
                when s.days_since_last_touch > {{ var('inactivity_active_days') }}
                    then 'No contact for ' || s.days_since_last_touch || ' days'
                else 'Few touchpoints lately (' || s.touches_in_window || ' in the last '
                     || {{ var('engagement_window_days') }} || ' days)'
            end
        when 'support' then
            case
                when s.open_high_urgent > 0
                    then s.open_high_urgent || ' urgent or high-priority ticket(s) still open'
                when s.avg_csat < 3.5
                    then 'Unhappy with support (CSAT ' || round(s.avg_csat, 1) || ' of 5)'
                else 'Many support tickets (' || s.tickets_in_window || ' in the last '
                     || {{ var('support_window_days') }} || ' days)'
            end
        when 'sentiment' then 'Unhappy survey answers (NPS ' || s.nps || ')'
    end as top_risk_driver,
    s.top_risk_component,
    nullif(concat_ws(', ',
        case when s.engagement_score is null then 'engagement' end,
        case when s.support_score is null then 'support' end,
        case when s.sentiment_score is null then 'sentiment' end,
        case when s.billing_score is null then 'billing' end
    ), '') as missing_components,
    -- how many components the score rests on (0: not scored; the report marks thin evidence)
    (s.engagement_score is not null)::int + (s.support_score is not null)::int
    + (s.sentiment_score is not null)::int + (s.billing_score is not null)::int
        as scored_components,
    s.weights_version
from ranked as s
{% if is_incremental() -%}
left join {{ this }} as w7
    on w7.account_id = s.account_id and w7.as_of_date = {{ d }} - 7
left join {{ this }} as w30
    on w30.account_id = s.account_id and w30.as_of_date = {{ d }} - 30
{%- endif %}
