-- The purchases of the accounts that pay invoice by invoice, without any subscription (usage,
-- one-off orders): one row per account and UTC day with a paid invoice, up to the end of
-- as_of_date. Such an account never churns visibly, it only falls silent; the nightly task
-- score_purchase_propensity fits BG/NBD on these days (customer_health.modelling.
-- purchase_propensity) and writes the mart customer_purchase_propensity.
-- An account with any subscription version visible tonight (even a canceled one) is not
-- invoice-only: its churn is observed, and the health score and the back-test judge it.
with customers as (
    select customer_id, account_id from {{ ref('stg_billing__customers') }}
),
contracted as (
    select distinct c.account_id
    from {{ ref('stg_billing__subscriptions') }} as s
    inner join customers as c on c.customer_id = s.customer_id
),
paid as (
    select
        c.account_id,
        {{ utc_date('i.paid_at') }} as purchased_on
    from {{ ref('stg_billing__invoices') }} as i
    inner join customers as c on c.customer_id = i.customer_id
    where i.status = 'paid'
      and i.paid_at < {{ as_of_end() }}
      and i.subscription_id is null
)
select
    p.account_id,
    a.account_team,
    p.purchased_on,
    count(*) as invoices_paid
from paid as p
inner join {{ ref('stg_crm__accounts') }} as a on a.account_id = p.account_id
where p.account_id not in (select account_id from contracted where account_id is not null)
group by p.account_id, a.account_team, p.purchased_on
