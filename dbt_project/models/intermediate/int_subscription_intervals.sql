-- Subscription versions as validity intervals, tied to the CRM account through the billing
-- customer, with MRR converted to the reporting currency.
select
    v.subscription_id,
    v.customer_id,
    c.account_id,
    v.plan_code,
    v.status,
    v.quantity,
    v.mrr,
    v.currency,
    {{ to_reporting('v.mrr') }} as mrr_reporting,
    v.started_at,
    v.current_term_end,
    v.canceled_at,
    v.valid_from,
    v.valid_to
from {{ ref('stg_billing__subscription_versions') }} as v
join {{ ref('stg_billing__customers') }} as c on c.customer_id = v.customer_id
{{ join_rates('v.currency') }}
{{ join_reporting_rate() }}
