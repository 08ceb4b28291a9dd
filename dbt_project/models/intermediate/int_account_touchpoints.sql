-- Touchpoints (CRM activities) per account at the end of as_of_date, in one pass.
select
    account_id,
    max(occurred_at) as last_touch_at,
    (array_agg(activity_type order by occurred_at desc, activity_id desc))[1]
        as last_touch_type,
    max(occurred_at) filter (where direction = 'outbound') as last_outbound_at,
    max(occurred_at) filter (where direction = 'inbound') as last_inbound_at,
    count(*) as touches_total,
    count(*) filter (
        where occurred_on > {{ as_of_date() }} - {{ var('engagement_window_days') }}
    ) as touches_in_window,
    count(*) filter (
        where occurred_on > {{ as_of_date() }} - {{ var('engagement_window_days') }}
          and direction = 'inbound'
    ) as inbound_in_window
from {{ ref('stg_crm__activities') }}
where occurred_at < {{ as_of_end() }}
group by account_id
