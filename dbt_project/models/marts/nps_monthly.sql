{{ config(
    unique_key='month',
) }}
-- One row per month per account_team (the team owning the account at the month's end),
-- plus account_team = 'all'. Responses of deleted accounts are left out.
with responses as (
    select
        date_trunc('month', r.responded_on)::date as month,
        am.account_team,
        r.score
    from {{ ref('stg_crm__nps_responses') }} as r
    join {{ ref('int_account_months') }} as am
        on am.account_id = r.account_id
       and am.month = date_trunc('month', r.responded_on)::date
    {%- if is_incremental() %}
    -- the months an incremental run writes (month_window_filter)
    where r.responded_on >= (date_trunc('month', {{ as_of_date() }}) - interval '1 month')::date
    {%- endif %}
),
counted as (
    select
        month,
        coalesce(account_team, 'all') as account_team,
        count(*) as responses,
        count(*) filter (where {{ nps_promoter('score') }}) as promoters,
        count(*) filter (where not {{ nps_promoter('score') }} and not {{ nps_detractor('score') }})
            as passives,
        count(*) filter (where {{ nps_detractor('score') }}) as detractors
    from responses
    group by grouping sets ((month, account_team), (month))
)
select
    c.month,
    c.account_team,
    c.responses,
    c.promoters,
    c.passives,
    c.detractors,
    round(100.0 * (c.promoters - c.detractors) / c.responses, 1) as nps,
    {{ as_of_date() }} as as_of_date
from counted as c
{{ month_window_filter('c.month') }}
