-- The current version of each subscription at the end of as_of_date.
with current_version as (
    {{ current_versions(source('raw', 'billing_subscriptions'), 'subscription_id') }}
)
select
    subscription_id,
    customer_id,
    plan_code,
    lower(trim(billing_interval)) as billing_interval,
    quantity,
    mrr,
    upper(trim(currency)) as currency,
    lower(trim(status)) as status,
    started_at,
    current_term_end,
    canceled_at,
    updated_at
from current_version
