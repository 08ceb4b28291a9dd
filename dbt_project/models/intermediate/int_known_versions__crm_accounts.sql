-- The spans of evaluation dates over which each CRM account version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='account_id',
    indexes=[{'columns': ['account_id']}, {'columns': ['_written_at']}],
) }}
{{ known_versions_model(source('raw', 'crm_accounts'), 'account_id',
    ['segment', 'account_team', 'is_deleted']) }}
