-- The current version of each billing customer and the CRM account it belongs to.
-- billing_email (personal data) is not carried.
with current_version as (
    {{ current_versions(source('raw', 'billing_customers'), 'customer_id') }}
)
select
    customer_id,
    account_id,
    upper(trim(currency)) as currency,
    created_at,
    updated_at
from current_version
