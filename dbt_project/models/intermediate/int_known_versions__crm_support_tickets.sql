-- The spans of evaluation dates over which each support ticket version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='ticket_id',
    indexes=[{'columns': ['ticket_id']}, {'columns': ['_written_at']}],
) }}
{{ known_versions_model(source('raw', 'crm_support_tickets'), 'ticket_id',
    ['account_id', 'priority', 'status', 'opened_at', 'resolved_at', 'csat_score']) }}
