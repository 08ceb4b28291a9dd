-- The spans of evaluation dates over which each activity version was the current one, as
-- known then (macro known_versions_model), for the back-test (int_backtest_scores, which
-- probes it by account_id and occurred_at on a night with a new evaluation date).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='activity_id',
    indexes=[{'columns': ['activity_id']}, {'columns': ['_written_at']},
             {'columns': ['account_id']}, {'columns': ['occurred_at']}],
) }}
{{ known_versions_model(source('raw', 'crm_activities'), 'activity_id',
    ['account_id', 'occurred_at']) }}
