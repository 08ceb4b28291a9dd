{{ config(
    unique_key='as_of_date',
    indexes=[{'columns': ['as_of_date']}],
) }}
-- One row per invoice-only account (paid invoices, no subscription) per as_of_date: its
-- purchase history in BG/NBD's terms. dbt writes the history; the nightly task
-- score_purchase_propensity, right after dbt_build and before the marts gate, fits BG/NBD
-- over the night's rows and fills in p_alive, expected_purchases_90d and the model's
-- parameters (dbt-postgres runs no Python: customer_health.modelling.propensity_mart).
{% set d = as_of_date() %}
with purchases as (
    select
        account_id,
        min(purchased_on) as first_purchase_on,
        max(purchased_on) as last_purchase_on,
        count(*) as purchase_days
    from {{ ref('int_invoice_only_purchases') }}
    group by account_id
),
teams as (
    select distinct on (account_id) account_id, account_team
    from {{ ref('int_invoice_only_purchases') }}
    order by account_id, purchased_on desc
)
select
    {{ d }} as as_of_date,
    p.account_id,
    t.account_team,
    p.first_purchase_on,
    p.last_purchase_on,
    ({{ d }} - p.last_purchase_on)::integer as days_since_last_purchase,
    (p.purchase_days - 1)::integer as repeat_purchases,
    (p.last_purchase_on - p.first_purchase_on)::integer as recency_days,
    ({{ d }} - p.first_purchase_on)::integer as age_days,
    null::double precision as p_alive,
    null::double precision as expected_purchases_90d,
    null::integer as fitted_accounts,
    null::double precision as model_r,
    null::double precision as model_alpha,
    null::double precision as model_a,
    null::double precision as model_b
from purchases as p
inner join teams as t on t.account_id = p.account_id
