{{ config(
    unique_key='month',
) }}
-- One row per month and segment, plus segment = 'all', built from revenue_movements.
-- A month's segment is each account's segment at that month's end.
with movements as (
    select rm.* from {{ ref('revenue_movements') }} as rm
    {{ month_window_filter('rm.month') }}
),
by_segment as (
    select
        month,
        segment,
        sum(previous_mrr) as starting_mrr,
        sum(mrr) filter (where movement = 'new') as new_mrr,
        sum(mrr_change) filter (where movement = 'expansion') as expansion_mrr,
        sum(mrr) filter (where movement = 'reactivation') as reactivation_mrr,
        -sum(mrr_change) filter (where movement = 'contraction') as contraction_mrr,
        sum(previous_mrr) filter (where movement = 'churn') as churned_mrr,
        sum(mrr) as ending_mrr,
        count(*) filter (where previous_mrr > 0) as logos_start,
        count(*) filter (where movement in ('new', 'reactivation')) as logos_new,
        count(*) filter (where movement = 'churn') as logos_churned
    from movements
    group by grouping sets ((month, segment), (month))
),
cohort_12m as (
    -- accounts with MRR > 0 twelve months earlier: their MRR then and now
    select
        now_.month,
        coalesce(then_.segment, 'all') as segment,
        sum(then_.mrr) as mrr_then,
        sum(coalesce(cur.mrr, 0)) as mrr_now
    from (select distinct month from movements) as now_
    join {{ ref('revenue_movements') }} as then_
        on then_.month = (now_.month - interval '12 months')::date and then_.mrr > 0
        {%- if is_incremental() %}
       -- an incremental run writes the month of as_of_date and the one before (index on month)
       and then_.month >= (date_trunc('month', {{ as_of_date() }}) - interval '13 months')::date
        {%- endif %}
    left join {{ ref('revenue_movements') }} as cur
        on cur.month = now_.month and cur.account_id = then_.account_id
        {%- if is_incremental() %}
       and cur.month >= (date_trunc('month', {{ as_of_date() }}) - interval '1 month')::date
        {%- endif %}
    group by grouping sets ((now_.month, then_.segment), (now_.month))
)
select
    b.month,
    coalesce(b.segment, 'all') as segment,
    b.starting_mrr,
    coalesce(b.new_mrr, 0) as new_mrr,
    coalesce(b.expansion_mrr, 0) as expansion_mrr,
    coalesce(b.reactivation_mrr, 0) as reactivation_mrr,
    coalesce(b.contraction_mrr, 0) as contraction_mrr,
    coalesce(b.churned_mrr, 0) as churned_mrr,
    b.ending_mrr,
    round((b.starting_mrr - coalesce(b.contraction_mrr, 0) - coalesce(b.churned_mrr, 0))
          / nullif(b.starting_mrr, 0), 4) as grr,
    round((b.starting_mrr + coalesce(b.expansion_mrr, 0) - coalesce(b.contraction_mrr, 0)
           - coalesce(b.churned_mrr, 0)) / nullif(b.starting_mrr, 0), 4) as nrr,
    round(c.mrr_now / nullif(c.mrr_then, 0), 4) as nrr_12m,
    b.logos_start,
    b.logos_new,
    b.logos_churned,
    round(1 - b.logos_churned::numeric / nullif(b.logos_start, 0), 4) as logo_retention,
    {{ as_of_date() }} as as_of_date
from by_segment as b
left join cohort_12m as c
    on c.month = b.month and c.segment = coalesce(b.segment, 'all')
