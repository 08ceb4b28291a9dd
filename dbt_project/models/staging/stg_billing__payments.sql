-- The current version of each payment attempt.
with current_version as (
    {{ current_versions(source('raw', 'billing_payments'), 'payment_id') }}
)
select
    payment_id,
    invoice_id,
    customer_id,
    amount,
    upper(trim(currency)) as currency,
    lower(trim(status)) as status,
    attempted_at,
    failure_code,
    updated_at
from current_version
