-- The current version of each CRM account at the end of as_of_date; deleted accounts dropped.
-- Incremental: a night recomputes the accounts with a newly visible raw row from all their
-- raw rows, and drops those whose current version is now deleted (macro staging_source).
{{ config(
    unique_key='account_id',
    indexes=[{'columns': ['account_id']}, {'columns': ['_written_at']}],
) }}
{%- set raw = source('raw', 'crm_accounts') %}
{%- set plan = staging_plan(raw) %}
with current_version as (
    {{ current_versions(staging_source(raw, 'account_id', plan), 'account_id') }}
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
        _export_date as export_date
    from current_version
    where not is_deleted
)
{{ replace_rows('staged', ['account_id'], plan, staging_changed_keys(raw, 'account_id', plan)) }}
