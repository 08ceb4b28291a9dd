{#- The health score, stated once: its components' formulas, the weighted mean and (macro
    health_band in health_rules.sql) the band. The nightly mart (int_health_components,
    customer_health) and the back-test (int_backtest_scores) both call these macros, each
    over facts it computes for its own date(s): `d` is a SQL date expression, the literal
    as_of_date of a night or a column such as evaluation_date. Formulas: models/marts/_marts.yml
    and the report's glossary. -#}

{#- The first instant after the UTC calendar date `d` (a date expression or column). -#}
{% macro end_of_day(d) -%}
    {{ utc_start('(' ~ d ~ ') + 1') }}
{%- endmacro %}

{#- True when UTC date `day` (a date expression) lies in the `window_var` days up to `d`. -#}
{% macro in_window(day, d, window_var) -%}
    {{ day }} > ({{ d }}) - {{ var(window_var) }}
{%- endmacro %}

{#- The ticket facts of support_score, over tickets (columns of stg_crm__support_tickets)
    opened before the end of `d`, grouped by the caller. -#}
{% macro ticket_facts(d) -%}
    count(*) as tickets_total,
    count(*) filter (where {{ in_window(utc_date('opened_at'), d, 'support_window_days') }})
        as tickets_in_window,
    count(*) filter (
        where status in ('open', 'pending') and priority in ('high', 'urgent')
    ) as open_high_urgent,
    count(*) filter (where status in ('open', 'pending')) as open_tickets,
    avg(case when resolved_at is not null and resolved_at < {{ end_of_day(d) }}
             then extract(epoch from resolved_at - opened_at) / 3600.0 end)
        filter (where {{ in_window(utc_date('opened_at'), d, 'support_window_days') }})
        as avg_hours_to_resolve,
    avg(csat_score) filter (where {{ in_window(utc_date('opened_at'), d, 'support_window_days') }})
        as avg_csat
{%- endmacro %}

{#- NPS (-100..100, one decimal) of counted responses, promoters and detractors. -#}
{% macro nps_of(responses, promoters, detractors) -%}
    round(100.0 * ({{ promoters }} - {{ detractors }}) / nullif({{ responses }}, 0), 1)
{%- endmacro %}

{#- A subscription version's MRR counts at `moment` (a timestamptz expression) when it is
    active or past_due, has started and is not canceled by then (columns of
    int_subscription_intervals, optionally behind alias `s`). -#}
{% macro paying_at(moment, s='') -%}
    {%- set p = (s ~ '.') if s else '' -%}
    {{ p }}status in ('active', 'past_due')
    and {{ p }}started_at < {{ moment }}
    and ({{ p }}canceled_at is null or {{ p }}canceled_at >= {{ moment }})
{%- endmacro %}

{#- The four component scores (0-100, one decimal, NULL without data) as a select list over
    these fact columns: touched, days_since_last_touch, touches_in_window; tickets_total,
    tickets_in_window, open_high_urgent, avg_hours_to_resolve, avg_csat; nps_responses, nps;
    has_billing, failed_payments, overdue_invoices, past_due_subscriptions, contracted. -#}
{% macro health_component_scores() -%}
    -- engagement: half recency (100 today, 0 at the window's length), half frequency
    -- (100 at engagement_full_touches touches within the window)
    round(case when touched then
        0.5 * greatest(0, 100 - 100.0 * days_since_last_touch / {{ var('engagement_window_days') }})
        + 0.5 * least(100, 100.0 * touches_in_window / {{ var('engagement_full_touches', 12) }})
    end, 1) as engagement_score,
    -- support: mean of the parts present: load, resolution time, CSAT
    case when coalesce(tickets_total, 0) > 0 then round(
        (greatest(0, 100 - 10 * tickets_in_window - 15 * open_high_urgent)
         + coalesce(greatest(0, 100 - 100.0 * avg_hours_to_resolve / 168), 0)
         + coalesce((avg_csat - 1) * 25, 0))
        / (1 + (avg_hours_to_resolve is not null)::int + (avg_csat is not null)::int),
        1)
    end as support_score,
    case when nps_responses > 0 then round((nps + 100) / 2, 1) end as sentiment_score,
    case when has_billing then greatest(0,
        100
        - 25 * least(failed_payments, 2)
        - 15 * least(overdue_invoices, 3)
        - case when past_due_subscriptions > 0 then 30 else 0 end
        - case when contracted then 20 else 0 end
    ) end as billing_score
{%- endmacro %}

{#- The weight of the components present (a missing one's weight is shared by the others),
    over columns <component>_score and <component>_weight. -#}
{% macro present_weight() -%}
    case when engagement_score is not null then engagement_weight else 0 end
    + case when support_score is not null then support_weight else 0 end
    + case when sentiment_score is not null then sentiment_weight else 0 end
    + case when billing_score is not null then billing_weight else 0 end
{%- endmacro %}

{#- health_score: the weighted mean of the components present, one decimal; NULL when none is. -#}
{% macro health_score() -%}
    round(
        (coalesce(engagement_weight * engagement_score, 0)
         + coalesce(support_weight * support_score, 0)
         + coalesce(sentiment_weight * sentiment_score, 0)
         + coalesce(billing_weight * billing_score, 0)) / nullif({{ present_weight() }}, 0),
        1
    )
{%- endmacro %}
