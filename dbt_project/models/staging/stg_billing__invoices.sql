-- The current version of each invoice (incremental: macro staged_current_versions).
{{ config(
    unique_key='invoice_id',
    indexes=[{'columns': ['invoice_id']}, {'columns': ['customer_id']},
             {'columns': ['_written_at']}],
    meta={'regroup_column': 'customer_id'},
) }}
{{ staged_current_versions(source('raw', 'billing_invoices'), 'invoice_id', "
            r.invoice_id,
            r.customer_id,
            r.subscription_id,
            r.issued_at,
            r.due_at,
            r.amount_due,
            r.amount_paid,
            upper(trim(r.currency)) as currency,
            lower(trim(r.status)) as status,
            r.paid_at") }}
