-- The rows of mart health_score_backtest. How well the health score predicted churn: per evaluation date, segment (and `all`) and
-- horizon, from health_score_backtest_accounts alone. AUC = P(a random stayer scored higher
-- than a random churner), ties counted half (Mann-Whitney U from mid-ranks), with the 95%
-- confidence interval of Hanley & McNeil (1982); the same AUC for each component alone.
-- Incremental (issue 15: rebuilt whole, it cost 39-41 s of every night at 100,000
-- accounts): a night recomputes the evaluation dates of which int_backtest_accounts wrote
-- rows since this table's last build; all of them when that table was rebuilt.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='evaluation_date',
    indexes=[{'columns': ['evaluation_date']}, {'columns': ['_written_at']}],
) }}
{%- set accounts_model = ref('int_backtest_accounts') %}
{%- set plan = derived_plan([accounts_model]) %}
{%- set changed_dates = "select null::date as evaluation_date where false" %}
{%- if plan.mode == 'incremental' %}
{#- the dates as constants, found first: against a subquery the planner cannot tell how few
    of the table's dates they are, and read all of them (it grows with the history) -#}
{%- set dates = run_query(
    "select distinct evaluation_date::text from " ~ accounts_model
    ~ " where _written_at > " ~ plan.since_at ~ " order by 1").columns[0].values() | list %}
{%- if dates %}
{%- set changed_dates -%}
    select d::date as evaluation_date from unnest(array[
    {%- for d in dates %}'{{ d }}'{% if not loop.last %}, {% endif %}{% endfor -%}
    ]) as d
{%- endset %}
{%- endif %}
{%- endif %}
with accounts as (
    select a.*, g.segment_group
    from {{ accounts_model }} as a
    cross join lateral (values (a.segment), ('all')) as g (segment_group)
    where a.health_score is not null
    {%- if plan.mode == 'incremental' %}
      and a.evaluation_date = any(array[
      {%- for d in dates %}date '{{ d }}'{% if not loop.last %}, {% endif %}{% endfor -%}
      ]::date[])
    {%- endif %}
),
counts as (
    select
        evaluation_date,
        segment_group,
        horizon_days,
        count(*) as accounts_scored,
        count(*) filter (where churned_within_horizon) as accounts_churned,
        count(*) filter (where health_band = 'healthy') as healthy_accounts,
        count(*) filter (where health_band = 'healthy' and churned_within_horizon)
            as healthy_churned,
        count(*) filter (where health_band = 'at_risk') as at_risk_accounts,
        count(*) filter (where health_band = 'at_risk' and churned_within_horizon)
            as at_risk_churned,
        count(*) filter (where health_band = 'critical') as critical_accounts,
        count(*) filter (where health_band = 'critical' and churned_within_horizon)
            as critical_churned
    from accounts
    group by evaluation_date, segment_group, horizon_days
),
rates as (
    select
        c.*,
        c.accounts_churned::numeric / c.accounts_scored as churn_rate,
        c.healthy_churned::numeric / nullif(c.healthy_accounts, 0) as churn_rate_healthy,
        c.at_risk_churned::numeric / nullif(c.at_risk_accounts, 0) as churn_rate_at_risk,
        c.critical_churned::numeric / nullif(c.critical_accounts, 0) as churn_rate_critical,
        (c.at_risk_churned + c.critical_churned)::numeric
            / nullif(c.at_risk_accounts + c.critical_accounts, 0) as warning_precision,
        (c.at_risk_churned + c.critical_churned)::numeric / nullif(c.accounts_churned, 0)
            as warning_recall
    from counts as c
),
measures as (
    -- the score and each component, one row per account and measure with a value
    select a.evaluation_date, a.segment_group, a.horizon_days, a.churned_within_horizon,
        m.measure, m.value
    from accounts as a
    cross join lateral (values
        ('health', a.health_score),
        ('engagement', a.engagement_score),
        ('support', a.support_score),
        ('sentiment', a.sentiment_score),
        ('billing', a.billing_score)
    ) as m (measure, value)
    where m.value is not null
),
ranked as (
    select
        m.*,
        -- mid-rank: tied values share the mean of their ranks
        rank() over (partition by evaluation_date, segment_group, horizon_days, measure
                     order by value)
        + (count(*) over (partition by evaluation_date, segment_group, horizon_days, measure,
                                       value) - 1) / 2.0 as mid_rank
    from measures as m
),
u as (
    select
        evaluation_date,
        segment_group,
        horizon_days,
        measure,
        count(*) filter (where not churned_within_horizon) as stayed,
        count(*) filter (where churned_within_horizon) as churned,
        sum(mid_rank) filter (where not churned_within_horizon) as stayed_rank_sum
    from ranked
    group by evaluation_date, segment_group, horizon_days, measure
),
auc as (
    select
        u.*,
        case when stayed > 0 and churned > 0 then
            (stayed_rank_sum - stayed * (stayed + 1) / 2.0) / (stayed::numeric * churned)
        end as auc
    from u
),
auc_ci as (
    -- Hanley-McNeil: Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A); the stayers are the group
    -- expected to score higher
    select
        a.*,
        sqrt(greatest(0,
            (a.auc * (1 - a.auc)
             + (a.stayed - 1) * (a.auc / (2 - a.auc) - a.auc ^ 2)
             + (a.churned - 1) * (2 * a.auc ^ 2 / (1 + a.auc) - a.auc ^ 2))
            / (a.stayed::numeric * a.churned))) as auc_se
    from auc as a
),
backtest as (
    select
        r.evaluation_date,
        r.segment_group as segment,
        r.horizon_days,
        r.accounts_scored,
        r.accounts_churned,
        round(r.churn_rate, 4) as churn_rate,
        r.healthy_accounts,
        r.healthy_churned,
        round(r.churn_rate_healthy, 4) as churn_rate_healthy,
        r.at_risk_accounts,
        r.at_risk_churned,
        round(r.churn_rate_at_risk, 4) as churn_rate_at_risk,
        r.critical_accounts,
        r.critical_churned,
        round(r.churn_rate_critical, 4) as churn_rate_critical,
        round(r.churn_rate_at_risk / nullif(r.churn_rate, 0), 2) as lift_at_risk,
        round(r.churn_rate_critical / nullif(r.churn_rate, 0), 2) as lift_critical,
        round(r.warning_precision, 4) as warning_precision,
        round(r.warning_recall, 4) as warning_recall,
        round(h.auc, 4) as auc,
        -- (greatest and least skip NULLs: no interval without an AUC)
        case when h.auc is not null then round(greatest(0, h.auc - 1.96 * h.auc_se), 4) end
            as auc_ci_low,
        case when h.auc is not null then round(least(1, h.auc + 1.96 * h.auc_se), 4) end
            as auc_ci_high,
        round(e.auc, 4) as auc_engagement,
        round(s.auc, 4) as auc_support,
        round(n.auc, 4) as auc_sentiment,
        round(b.auc, 4) as auc_billing
    from rates as r
    {%- for alias, measure in [('h', 'health'), ('e', 'engagement'), ('s', 'support'),
                               ('n', 'sentiment'), ('b', 'billing')] %}
    left join auc_ci as {{ alias }}
        on {{ alias }}.evaluation_date = r.evaluation_date
       and {{ alias }}.segment_group = r.segment_group
       and {{ alias }}.horizon_days = r.horizon_days
       and {{ alias }}.measure = '{{ measure }}'
    {%- endfor %}
)
{{ replace_rows('backtest', ['evaluation_date'], plan,
                changed_dates if plan.mode == 'incremental' else none) }}
