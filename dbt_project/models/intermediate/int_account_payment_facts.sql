-- Billing facts per account at the end of as_of_date: payments, invoices, lifetime revenue
-- (paid invoice amounts less refunded payments, in the reporting currency).
-- Incremental (macro derived_plan): a night recomputes the accounts whose customer, payments
-- or invoices a run wrote since this table's last build, and those whose figures the date
-- alone moves: a payment, invoice, due date or payment date that falls after the end of the
-- table's night, or a failed payment that left the billing window.
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='account_id',
    indexes=[{'columns': ['account_id']}],
) }}
{%- set customers_all = ref('stg_billing__customers') %}
{%- set payments_all = ref('stg_billing__payments') %}
{%- set invoices_all = ref('stg_billing__invoices') %}
{%- set plan = derived_plan([customers_all, payments_all, invoices_all],
                            seeds=[ref('currency_rates')]) %}
{%- set shift = (var('billing_window_days') | int) - 1 %}
{%- set since_end = day_end(plan.since) %}
{%- set accounts -%}
    select account_id from {{ customers_all }} where _written_at > {{ plan.since_at }}
    union
    select account_id from {{ customers_all }}
    where customer_id in (
        select customer_id from {{ payments_all }}
        where _written_at > {{ plan.since_at }}
           or (attempted_at >= {{ since_end }} and attempted_at < {{ as_of_end() }})
           or (status = 'failed'
               and attempted_at >= {{ utc_start("date '" ~ plan.since ~ "' - " ~ shift) }}
               and attempted_at < {{ utc_start(as_of_date() ~ ' - ' ~ shift) }})
        union
        select customer_id from {{ invoices_all }}
        where _written_at > {{ plan.since_at }}
           or (issued_at >= {{ since_end }} and issued_at < {{ as_of_end() }})
           or (due_at >= {{ since_end }} and due_at < {{ as_of_end() }})
           or (paid_at >= {{ since_end }} and paid_at < {{ as_of_end() }})
    )
{%- endset %}
with customers as (
    select customer_id, account_id from {{ customers_all }}
    {%- if plan.mode == 'incremental' %}
    where account_id in ({{ accounts }})
    {%- endif %}
),
payments as (
    select
        c.account_id,
        p.status,
        p.attempted_at,
        {{ utc_date('p.attempted_at') }} as attempted_on,
        {{ to_reporting('p.amount') }} as amount_reporting
    from {{ payments_all }} as p
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
    from {{ invoices_all }} as i
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
),
facts as (
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
)
{{ replace_rows('facts', ['account_id'], plan, accounts) }}
