-- Billing facts per account at the end of as_of_date: payments, invoices, lifetime revenue
-- (paid invoice amounts less refunded payments, in the reporting currency).
with customers as (
    select customer_id, account_id from {{ ref('stg_billing__customers') }}
),
payments as (
    select
        c.account_id,
        p.status,
        p.attempted_at,
        {{ utc_date('p.attempted_at') }} as attempted_on,
        {{ to_reporting('p.amount') }} as amount_reporting
    from {{ ref('stg_billing__payments') }} as p
    join customers as c on c.customer_id = p.customer_id
    {{ join_rates('p.currency') }}
    {{ join_reporting_rate() }}
    where p.attempted_at < {{ as_of_end() }}
),
invoices as (
    select
        c.account_id,
        i.status,
        i.due_at,
        i.paid_at,
        {{ to_reporting('i.amount_paid') }} as paid_reporting
    from {{ ref('stg_billing__invoices') }} as i
    join customers as c on c.customer_id = i.customer_id
    {{ join_rates('i.currency') }}
    {{ join_reporting_rate() }}
    where i.issued_at < {{ as_of_end() }}
),
payment_facts as (
    select
        account_id,
        max(attempted_at) filter (where status = 'succeeded') as last_payment_at,
        max(attempted_at) filter (where status = 'failed') as last_failed_payment_at,
        count(*) filter (
            where status = 'failed'
              and attempted_on > {{ as_of_date() }} - {{ var('billing_window_days') }}
        ) as failed_payments_in_window,
        coalesce(sum(amount_reporting) filter (where status = 'refunded'), 0) as refunded
    from payments
    group by account_id
),
invoice_facts as (
    select
        account_id,
        count(*) filter (
            where status = 'open' and due_at < {{ as_of_end() }}
        ) as overdue_invoices,
        min(paid_at) filter (where status = 'paid' and paid_at < {{ as_of_end() }})
            as first_paid_at,
        coalesce(
            sum(paid_reporting) filter (where status = 'paid' and paid_at < {{ as_of_end() }}),
            0
        ) as paid_invoices
    from invoices
    group by account_id
)
select
    c.account_id,
    pf.last_payment_at,
    pf.last_failed_payment_at,
    coalesce(pf.failed_payments_in_window, 0) as failed_payments_in_window,
    coalesce(inv.overdue_invoices, 0) as overdue_invoices,
    inv.first_paid_at,
    coalesce(inv.paid_invoices, 0) - coalesce(pf.refunded, 0) as lifetime_revenue
from (select distinct account_id from customers) as c
left join payment_facts as pf on pf.account_id = c.account_id
left join invoice_facts as inv on inv.account_id = c.account_id
