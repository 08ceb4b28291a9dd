-- The current version of each support ticket (incremental: macro staged_current_versions).
{{ config(
    unique_key='ticket_id',
    indexes=[{'columns': ['ticket_id']}, {'columns': ['_written_at']}],
    meta={'regroup_column': 'account_id'},
) }}
{{ staged_current_versions(source('raw', 'crm_support_tickets'), 'ticket_id', "
            r.ticket_id,
            r.account_id,
            r.contact_id,
            lower(trim(r.priority)) as priority,
            lower(trim(r.status)) as status,
            r.opened_at,
            r.first_response_at,
            r.resolved_at,
            r.csat_score") }}
