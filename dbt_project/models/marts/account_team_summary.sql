{{ config(
    unique_key='as_of_date',
    indexes=[{'columns': ['as_of_date']}],
) }}
-- One row per account_team per as_of_date, from that date's customer_health and
-- customer_inactivity rows.
{% set d = as_of_date() %}
with health as (
    select * from {{ ref('customer_health') }} where as_of_date = {{ d }}
),
inactivity as (
    select * from {{ ref('customer_inactivity') }} where as_of_date = {{ d }}
),
nps as (
    select
        a.account_team,
        count(*) as responses,
        round(100.0 * (count(*) filter (where {{ nps_promoter('r.score') }})
                      - count(*) filter (where {{ nps_detractor('r.score') }}))
              / count(*), 1) as nps
    from {{ ref('stg_crm__nps_responses') }} as r
    join {{ ref('stg_crm__accounts') }} as a on a.account_id = r.account_id
    where r.responded_on > {{ d }} - 90
    group by a.account_team
),
teams as (
    select
        h.account_team,
        count(*) as accounts,
        sum(h.mrr) as mrr,
        sum(h.mrr) * 12 as arr,
        count(*) filter (where h.health_band = 'healthy') as accounts_healthy,
        count(*) filter (where h.health_band = 'at_risk') as accounts_at_risk,
        count(*) filter (where h.health_band = 'critical') as accounts_critical,
        count(*) filter (where h.health_score is null) as accounts_not_scored,
        coalesce(sum(h.mrr) filter (where h.health_band in ('at_risk', 'critical')), 0) * 12
            as arr_at_risk,
        count(*) filter (where h.days_to_renewal between 0 and 90) as renewals_next_90d,
        count(*) filter (
            where h.days_to_renewal between 0 and 90 and h.health_band in ('at_risk', 'critical')
        ) as renewals_next_90d_at_risk,
        count(*) filter (where i.inactivity_tier in ('dormant', 'lapsed')) as inactive_accounts,
        round(avg(h.health_score), 1) as avg_health_score
    from health as h
    left join inactivity as i on i.account_id = h.account_id
    group by h.account_team
)
select
    {{ d }} as as_of_date,
    t.account_team,
    t.accounts,
    t.mrr,
    t.arr,
    t.accounts_healthy,
    t.accounts_at_risk,
    t.accounts_critical,
    t.accounts_not_scored,
    t.arr_at_risk,
    t.renewals_next_90d,
    t.renewals_next_90d_at_risk,
    t.inactive_accounts,
    n.responses as nps_responses_90d,
    n.nps as nps_90d,
    t.avg_health_score,
    {% if is_incremental() -%}
    t.avg_health_score - w7.avg_health_score as avg_health_change_7d
    {%- else -%}
    null::numeric as avg_health_change_7d
    {%- endif %}
from teams as t
left join nps as n on n.account_team = t.account_team
{% if is_incremental() -%}
left join {{ this }} as w7 on w7.account_team = t.account_team and w7.as_of_date = {{ d }} - 7
{%- endif %}
