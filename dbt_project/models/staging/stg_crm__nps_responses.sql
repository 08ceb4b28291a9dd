-- NPS responses never change: the latest delivery of each response_id wins (later export,
-- then later line). Responses given after the end of as_of_date are not visible yet.
with current_version as (
    {{ current_versions(source('raw', 'crm_nps_responses'), 'response_id', version_column=none) }}
)
select
    response_id,
    account_id,
    contact_id,
    score,
    responded_at,
    {{ utc_date('responded_at') }} as responded_on
from current_version
where responded_at < {{ as_of_end() }}
