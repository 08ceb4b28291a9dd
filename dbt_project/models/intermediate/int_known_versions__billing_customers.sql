-- The spans of evaluation dates over which each billing customer version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='customer_id',
    indexes=[{'columns': ['customer_id']}, {'columns': ['_written_at']}],
) }}
{{ known_versions_model(source('raw', 'billing_customers'), 'customer_id',
    ['account_id']) }}
