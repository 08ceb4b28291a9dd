-- The spans of evaluation dates over which each invoice version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='invoice_id',
    indexes=[{'columns': ['invoice_id']}, {'columns': ['_written_at']}],
) }}
{{ known_versions_model(source('raw', 'billing_invoices'), 'invoice_id',
    ['customer_id', 'status', 'issued_at', 'due_at']) }}
