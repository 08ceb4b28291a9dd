{{ config(
    unique_key='month',
    indexes=[{'columns': ['month']}, {'columns': ['as_of_date']}],
) }}
-- One row per account per month in which it has MRR > 0 or had MRR > 0 the month before.
-- A run writes the month of as_of_date and the month before (every month on a full build);
-- as_of_date says from which night's data a row was computed. An incremental run reads the
-- MRR and teams of those two months (and the month before) only, and the first paid month of
-- the accounts that pay in one of them and did not the month before.
with mrr as (
    select m.month, m.account_id, m.mrr
    from {{ ref('int_mrr_monthly') }} as m
    where m.account_id in (select account_id from {{ ref('stg_crm__accounts') }})
    {%- if is_incremental() %}
      and m.month >= (date_trunc('month', {{ as_of_date() }}) - interval '2 months')::date
    {%- endif %}
),
paying as (
    select month, account_id, mrr from mrr where mrr > 0
),
first_paid as (
    select account_id, min(month) as first_paid_month
    {%- if is_incremental() %}
    -- only the accounts that may start paying in a month written (paying, and not in the
    -- month before it): 'new' or 'reactivation' needs their first paid month; reading every
    -- account's months grew with the history (issue 15)
    from {{ ref('int_mrr_monthly') }}
    where mrr > 0 and account_id in (
        select cur.account_id
        from paying as cur
        left join paying as prev
            on prev.account_id = cur.account_id
           and prev.month = (cur.month - interval '1 month')::date
        where prev.account_id is null
          and cur.month >= (date_trunc('month', {{ as_of_date() }}) - interval '1 month')::date
    )
    {%- else %}
    from paying
    {%- endif %}
    group by account_id
),
keys as (
    select month, account_id from paying
    union
    select (month + interval '1 month')::date, account_id
    from paying
    where month < date_trunc('month', {{ as_of_date() }})::date
),
movements as (
    select
        k.month,
        k.account_id,
        coalesce(cur.mrr, 0) as mrr,
        coalesce(prev.mrr, 0) as previous_mrr,
        f.first_paid_month
    from keys as k
    left join paying as cur on cur.account_id = k.account_id and cur.month = k.month
    left join paying as prev
        on prev.account_id = k.account_id
       and prev.month = (k.month - interval '1 month')::date
    left join first_paid as f on f.account_id = k.account_id
)
select
    mv.month,
    mv.account_id,
    am.account_team,
    am.segment,
    mv.mrr,
    mv.previous_mrr,
    mv.mrr - mv.previous_mrr as mrr_change,
    case
        when mv.mrr > 0 and mv.previous_mrr = 0 and mv.month = mv.first_paid_month then 'new'
        when mv.mrr > 0 and mv.previous_mrr = 0 then 'reactivation'
        when mv.mrr > mv.previous_mrr and mv.previous_mrr > 0 then 'expansion'
        when mv.mrr > 0 and mv.mrr < mv.previous_mrr then 'contraction'
        when mv.mrr = 0 and mv.previous_mrr > 0 then 'churn'
        else 'retained'
    end as movement,
    {{ as_of_date() }} as as_of_date
from movements as mv
join {{ ref('int_account_months') }} as am
    on am.account_id = mv.account_id and am.month = mv.month
    {%- if is_incremental() %}
   and am.month >= (date_trunc('month', {{ as_of_date() }}) - interval '1 month')::date
    {%- endif %}
{{ month_window_filter('mv.month') }}
