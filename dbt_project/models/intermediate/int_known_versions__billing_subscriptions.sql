-- The spans of evaluation dates over which each subscription version's row (one per
-- subscription and updated_at; a version delivered again replaces it from the redelivery's
-- date) was the one known then (macro known_versions_model), for the back-test
-- (int_backtest_scores): a night that scores a new evaluation date reads the versions in
-- effect within the billing window through the index on updated_at and each subscription's
-- last version before it through the index on (subscription_id, updated_at), instead of
-- sorting every subscription row ever exported (issue 15).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['subscription_id', 'updated_at'],
    indexes=[{'columns': ['subscription_id', 'updated_at']}, {'columns': ['updated_at']},
             {'columns': ['_written_at']}],
) }}
{{ known_versions_model(source('raw', 'billing_subscriptions'), ['subscription_id', 'updated_at'],
    ['customer_id', 'currency', 'status', 'started_at', 'canceled_at', 'mrr'],
    version_column=none) }}
