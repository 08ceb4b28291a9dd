-- NPS responses never change: the latest delivery of each response_id wins (later export,
-- then later line). Responses given after the end of as_of_date are not visible yet.
-- Incremental: a night recomputes the responses delivered since the table's night, or
-- given since its end (macro staging_source).
{{ config(
    unique_key='response_id',
    indexes=[{'columns': ['response_id']}, {'columns': ['responded_at']},
             {'columns': ['_written_at']}],
    meta={'regroup_column': 'account_id'},
) }}
{%- set raw = source('raw', 'crm_nps_responses') %}
{%- set plan = staging_plan(raw) %}
with current_version as (
    {{ current_versions(staging_source(raw, 'response_id', plan), 'response_id',
                        version_column=none) }}
),
staged as (
    select
        response_id,
        account_id,
        contact_id,
        score,
        responded_at,
        {{ utc_date('responded_at') }} as responded_on
    from current_version
    where responded_at < {{ as_of_end() }}
)
{{ replace_rows('staged', ['response_id'], plan,
                staging_changed_keys(raw, 'response_id', plan)) }}
