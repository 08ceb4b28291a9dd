-- The current version of each activity (touchpoint), as of the end of as_of_date. The
-- largest entity, so staged incrementally (macro staged_current_versions): a night merges
-- only what was loaded since the last run. Free-text subject is not carried.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='activity_id',
) }}
{{ staged_current_versions(source('raw', 'crm_activities'), 'activity_id', "
        r.activity_id,
        r.account_id,
        r.contact_id,
        lower(trim(r.activity_type)) as activity_type,
        lower(trim(r.direction)) as direction,
        r.occurred_at,
        " ~ utc_date('r.occurred_at') ~ " as occurred_on,
        r.owner_email") }}
