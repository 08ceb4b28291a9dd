-- The current version of each invoice.
with current_version as (
    {{ current_versions(source('raw', 'billing_invoices'), 'invoice_id') }}
)
select
    invoice_id,
    customer_id,
    subscription_id,
    issued_at,
    due_at,
    amount_due,
    amount_paid,
    upper(trim(currency)) as currency,
    lower(trim(status)) as status,
    paid_at,
    updated_at
from current_version
