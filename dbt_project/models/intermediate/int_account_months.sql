-- Team and segment of each (not deleted) account at each month's end, from the account's
-- CRM versions; months before the account's first version take its first version.
-- Monthly marts attribute a month to the team that owned the account at that month's end.
with versions as (
    select
        v.*,
        row_number() over (partition by v.account_id order by v.valid_from) = 1 as is_first
    from {{ ref('stg_crm__account_versions') }} as v
    where v.account_id in (select account_id from {{ ref('stg_crm__accounts') }})
)
select
    m.month,
    v.account_id,
    v.account_team,
    v.segment
from {{ ref('int_months') }} as m
join versions as v
    on (v.valid_from < m.month_end_at or v.is_first)
   and (v.valid_to is null or v.valid_to >= m.month_end_at)
