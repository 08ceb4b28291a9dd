-- The current version of each billing customer and the CRM account it belongs to
-- (incremental: macro staged_current_versions). billing_email (personal data) is not carried.
{{ config(
    unique_key='customer_id',
    indexes=[{'columns': ['customer_id']}, {'columns': ['account_id']},
             {'columns': ['_written_at']}],
    meta={'regroup_column': 'account_id'},
) }}
{{ staged_current_versions(source('raw', 'billing_customers'), 'customer_id', "
            r.customer_id,
            r.account_id,
            upper(trim(r.currency)) as currency,
            r.created_at") }}
