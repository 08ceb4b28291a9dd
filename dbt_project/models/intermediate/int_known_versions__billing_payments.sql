-- The spans of evaluation dates over which each payment version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='payment_id',
    indexes=[{'columns': ['payment_id']}, {'columns': ['_written_at']},
             {'columns': ['attempted_at']}],
) }}
{{ known_versions_model(source('raw', 'billing_payments'), 'payment_id',
    ['customer_id', 'status', 'attempted_at']) }}
