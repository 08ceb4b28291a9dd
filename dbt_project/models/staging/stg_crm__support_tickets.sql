-- The current version of each support ticket.
with current_version as (
    {{ current_versions(source('raw', 'crm_support_tickets'), 'ticket_id') }}
)
select
    ticket_id,
    account_id,
    contact_id,
    lower(trim(priority)) as priority,
    lower(trim(status)) as status,
    opened_at,
    first_response_at,
    resolved_at,
    csat_score,
    updated_at
from current_version
