-- MRR per account per month in the reporting currency: the sum over the subscription
-- versions in effect at the month's end (the end of as_of_date for its month) whose status is
-- active or past_due, that have started and are not canceled at that moment. trialing,
-- canceled and unpaid count 0. Accounts with versions in effect but no paying one get mrr 0.
-- Incremental (macros derived_plan, month_account_scope): a night computes a month it has no
-- rows of yet (the first night of a month) for every account, and recomputes the months of
-- the accounts whose subscription intervals a run wrote since this table's last build, from
-- the month whose end is at or after the first instant those intervals may have changed
-- (their _written_from: usually the month of the night; every month for a subscription
-- recomputed from all its raw rows, or when several runs wrote intervals since), and the
-- month of the night of the accounts whose subscription started or was canceled after the
-- end of the table's night. Any other account and month has the same versions in effect at
-- the month end (a version that takes effect in between is newly visible, so written), hence
-- the same MRR.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['month', 'account_id'],
    indexes=[{'columns': ['account_id']}, {'columns': ['month']}],
) }}
{%- set intervals = ref('int_subscription_intervals') %}
{%- set plan = derived_plan([intervals]) %}
{%- set accounts -%}
    select account_id, min(changed_from) as changed_from
    from (
        select
            account_id,
            case
                when {{ written_by_one_run(intervals, plan.since_at) }}
                then _written_from
                else '-infinity'
            end as changed_from
        from {{ intervals }}
        where _written_at > {{ plan.since_at }}
        union all
        select account_id, {{ day_end(plan.since) }}
        from {{ intervals }}
        where (started_at >= {{ day_end(plan.since) }} and started_at < {{ as_of_end() }})
           or (canceled_at >= {{ day_end(plan.since) }} and canceled_at < {{ as_of_end() }})
    ) as changed
    group by account_id
{%- endset %}
{%- set scope = month_account_scope(plan, accounts, 's.account_id', changed_from=true) %}
with mrr as (
    {%- for part in scope.parts %}
    select
        m.month,
        s.account_id,
        sum(
            case
                when {{ paying_at('m.month_end_at', 's') }}
                then s.mrr_reporting
                else 0
            end
        ) as mrr
    from {{ ref('int_months') }} as m
    join {{ intervals }} as s
        on s.valid_from < m.month_end_at
       and (s.valid_to is null or s.valid_to >= m.month_end_at)
    {%- if part %}
    where {{ part }}
    {%- endif %}
    group by m.month, s.account_id
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)
{{ replace_rows('mrr', ['month', 'account_id'], plan, scope.replaced) }}
