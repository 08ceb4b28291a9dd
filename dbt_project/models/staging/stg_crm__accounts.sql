-- The current version of each CRM account at the end of as_of_date; deleted accounts dropped.
with current_version as (
    {{ current_versions(source('raw', 'crm_accounts'), 'account_id') }}
)
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
