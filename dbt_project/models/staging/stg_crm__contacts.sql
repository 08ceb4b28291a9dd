-- The current version of each contact; deleted contacts dropped. Personal data (full_name,
-- email) is deliberately not carried past the raw layer: no model needs it. Incremental: a
-- night recomputes the contacts with a newly visible raw row (macro staging_source).
{{ config(
    unique_key='contact_id',
    indexes=[{'columns': ['contact_id']}, {'columns': ['_written_at']}],
    meta={'regroup_column': 'account_id'},
) }}
{%- set raw = source('raw', 'crm_contacts') %}
{%- set plan = staging_plan(raw) %}
with current_version as (
    {{ current_versions(staging_source(raw, 'contact_id', plan), 'contact_id') }}
),
staged as (
    select
        contact_id,
        account_id,
        title,
        is_primary,
        created_at,
        updated_at
    from current_version
    where not is_deleted
)
{{ replace_rows('staged', ['contact_id'], plan, staging_changed_keys(raw, 'contact_id', plan)) }}
