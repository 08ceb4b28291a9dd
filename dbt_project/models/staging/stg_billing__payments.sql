-- The current version of each payment attempt (incremental: macro staged_current_versions).
{{ config(
    unique_key='payment_id',
    indexes=[{'columns': ['payment_id']}, {'columns': ['customer_id']},
             {'columns': ['_written_at']}],
    meta={'regroup_column': 'customer_id'},
) }}
{{ staged_current_versions(source('raw', 'billing_payments'), 'payment_id', "
            r.payment_id,
            r.invoice_id,
            r.customer_id,
            r.amount,
            upper(trim(r.currency)) as currency,
            lower(trim(r.status)) as status,
            r.attempted_at,
            r.failure_code") }}
