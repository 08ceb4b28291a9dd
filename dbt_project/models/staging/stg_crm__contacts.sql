-- The current version of each contact; deleted contacts dropped. Personal data (full_name,
-- email) is deliberately not carried past the raw layer: no model needs it.
with current_version as (
    {{ current_versions(source('raw', 'crm_contacts'), 'contact_id') }}
)
select
    contact_id,
    account_id,
    title,
    is_primary,
    created_at,
    updated_at
from current_version
where not is_deleted
