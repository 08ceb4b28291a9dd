-- Support ticket facts per account at the end of as_of_date (window: support_window_days).
with tickets as (
    select
        *,
        {{ utc_date('opened_at') }} > {{ as_of_date() }} - {{ var('support_window_days') }}
            as in_window,
        case
            when resolved_at is not null and resolved_at < {{ as_of_end() }}
            then extract(epoch from resolved_at - opened_at) / 3600.0
        end as hours_to_resolve
    from {{ ref('stg_crm__support_tickets') }}
    where opened_at < {{ as_of_end() }}
)
select
    account_id,
    count(*) as tickets_total,
    count(*) filter (where in_window) as tickets_in_window,
    count(*) filter (
        where status in ('open', 'pending') and priority in ('high', 'urgent')
    ) as open_high_urgent,
    count(*) filter (where status in ('open', 'pending')) as open_tickets,
    avg(hours_to_resolve) filter (where in_window) as avg_hours_to_resolve,
    avg(csat_score) filter (where in_window) as avg_csat
from tickets
group by account_id
