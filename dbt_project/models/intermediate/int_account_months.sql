-- Team and segment of each (not deleted) account at each month's end, from the account's
-- CRM versions; months before the account's first version take its first version.
-- Monthly marts attribute a month to the team that owned the account at that month's end.
-- Incremental (macros derived_plan, month_account_scope): a night computes a month it has no
-- rows of yet (the first night of a month) for every account, and recomputes every month of
-- the accounts whose versions a run wrote since this table's last build; any other account
-- has the same version in effect at the later month end.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['month', 'account_id'],
    indexes=[{'columns': ['account_id', 'month']}, {'columns': ['month']}],
) }}
{%- set account_versions = ref('stg_crm__account_versions') %}
{%- set accounts_now = ref('stg_crm__accounts') %}
{%- set plan = derived_plan([account_versions, accounts_now]) %}
{%- set accounts -%}
    select account_id from {{ account_versions }} where _written_at > {{ plan.since_at }}
    union
    select account_id from {{ accounts_now }} where _written_at > {{ plan.since_at }}
{%- endset %}
{%- set scope = month_account_scope(plan, accounts, 'v.account_id') %}
with versions as (
    select
        v.*,
        row_number() over (partition by v.account_id order by v.valid_from) = 1 as is_first
    from {{ account_versions }} as v
    where v.account_id in (select account_id from {{ accounts_now }})
),
account_months as (
    {%- for part in scope.parts %}
    select
        m.month,
        v.account_id,
        v.account_team,
        v.segment
    from {{ ref('int_months') }} as m
    join versions as v
        on (v.valid_from < m.month_end_at or v.is_first)
       and (v.valid_to is null or v.valid_to >= m.month_end_at)
    {%- if part %}
    where {{ part }}
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)
{{ replace_rows('account_months', ['month', 'account_id'], plan, scope.replaced) }}
