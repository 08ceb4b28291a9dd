-- Every version of every CRM account visible at the end of as_of_date, as validity intervals
-- [valid_from, valid_to): team, segment and owner at any past moment (e.g. a month's end).
with versions as (
    {{ visible_versions(source('raw', 'crm_accounts'), 'account_id') }}
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
    is_deleted,
    updated_at as valid_from,
    lead(updated_at) over (partition by account_id order by updated_at) as valid_to,
    _export_date as export_date
from versions
