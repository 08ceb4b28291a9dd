-- The current version of each subscription at the end of as_of_date (incremental: macro
-- staged_current_versions).
{{ config(
    unique_key='subscription_id',
    indexes=[{'columns': ['subscription_id']}, {'columns': ['_written_at']}],
    meta={'regroup_column': 'customer_id'},
) }}
{{ staged_current_versions(source('raw', 'billing_subscriptions'), 'subscription_id', "
            r.subscription_id,
            r.customer_id,
            r.plan_code,
            lower(trim(r.billing_interval)) as billing_interval,
            r.quantity,
            r.mrr,
            upper(trim(r.currency)) as currency,
            lower(trim(r.status)) as status,
            r.started_at,
            r.current_term_end,
            r.canceled_at") }}
