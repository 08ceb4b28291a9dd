-- Every version of every subscription visible at the end of as_of_date, with its validity
-- interval [valid_from, valid_to): a version is in effect from its updated_at until the next
-- version's updated_at (open-ended for the latest).
with versions as (
    {{ visible_versions(source('raw', 'billing_subscriptions'), 'subscription_id') }}
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
    updated_at,
    updated_at as valid_from,
    lead(updated_at) over (partition by subscription_id order by updated_at) as valid_to,
    _export_date as export_date
from versions
