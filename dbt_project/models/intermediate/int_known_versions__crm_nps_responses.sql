-- The spans of evaluation dates over which each NPS response version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='response_id',
    indexes=[{'columns': ['response_id']}, {'columns': ['_written_at']},
             {'columns': ['responded_at']}],
) }}
{{ known_versions_model(source('raw', 'crm_nps_responses'), 'response_id',
    ['account_id', 'score', 'responded_at'],
    version_column=none, time_column='responded_at') }}
