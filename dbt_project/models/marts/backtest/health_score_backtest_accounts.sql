{{ config(materialized='table') }}
-- One row per evaluation date, horizon and account: the score the account had then and whether it
-- churned within the horizon. Computed incrementally in int_backtest_accounts (issue 15); the
-- mart is that table's copy, published with the other marts (write, audit, publish).
select
    evaluation_date,
    horizon_days,
    account_id,
    segment,
    account_team,
    health_score,
    health_band,
    engagement_score,
    support_score,
    sentiment_score,
    billing_score,
    mrr,
    churned_within_horizon,
    weights_version,
    _written_at as computed_at
from {{ ref('int_backtest_accounts') }}
