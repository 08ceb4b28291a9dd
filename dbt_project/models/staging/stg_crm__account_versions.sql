-- Every version of every CRM account visible at the end of as_of_date, as validity intervals
-- [valid_from, valid_to): team, segment and owner at any past moment (e.g. a month's end).
-- Incremental: a night recomputes the accounts with a newly visible raw row from all their
-- raw rows (macro staging_source).
{{ config(
    unique_key='account_id',
    indexes=[{'columns': ['account_id']}, {'columns': ['_written_at']}],
) }}
{%- set raw = source('raw', 'crm_accounts') %}
{%- set plan = staging_plan(raw) %}
with versions as (
    {{ visible_versions(staging_source(raw, 'account_id', plan), 'account_id') }}
),
staged as (
    select
        account_id,
        account_name,
        industry,
        lower(trim(segment)) as segment,
        lower(trim(region)) as region,
        account_team,
        owner_email,
        created_at,
        updated_at,
        is_deleted,
        updated_at as valid_from,
        lead(updated_at) over (partition by account_id order by updated_at) as valid_to,
        _export_date as export_date
    from versions
)
{{ replace_rows('staged', ['account_id'], plan, staging_changed_keys(raw, 'account_id', plan)) }}
