-- The current version of each activity (touchpoint), as of the end of as_of_date.
-- Incremental (macro staged_current_versions): a night merges the raw rows that became
-- visible since the table's night. Free-text subject is not carried.
{{ config(
    unique_key='activity_id',
    indexes=[{'columns': ['activity_id']}, {'columns': ['occurred_at']},
             {'columns': ['_written_at']},
             {'columns': ['account_id', 'occurred_at', 'activity_id']}],
    meta={'regroup_column': 'account_id'},
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
