{{ config(materialized='table') }}
-- How well the health score predicted churn, per evaluation date, segment and horizon.
-- Computed incrementally in int_backtest_auc (issue 15); the mart is that table's copy,
-- published with the other marts (write, audit, publish).
select
    evaluation_date,
    segment,
    horizon_days,
    accounts_scored,
    accounts_churned,
    churn_rate,
    healthy_accounts,
    healthy_churned,
    churn_rate_healthy,
    at_risk_accounts,
    at_risk_churned,
    churn_rate_at_risk,
    critical_accounts,
    critical_churned,
    churn_rate_critical,
    lift_at_risk,
    lift_critical,
    warning_precision,
    warning_recall,
    auc,
    auc_ci_low,
    auc_ci_high,
    auc_engagement,
    auc_support,
    auc_sentiment,
    auc_billing
from {{ ref('int_backtest_auc') }}
