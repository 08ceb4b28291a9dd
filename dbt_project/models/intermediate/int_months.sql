-- The calendar months the monthly marts cover: from the first month with a subscription
-- version or an NPS response up to the month of as_of_date. month_end_at is the moment a
-- month's figures are taken: the end of the month, or the end of as_of_date for its month.
-- (The UTC date of the earliest timestamp is the earliest UTC date: the indexes answer.)
with bounds as (
    select least(
        (select {{ utc_date('min(valid_from)') }} from {{ ref('stg_billing__subscription_versions') }}),
        (select {{ utc_date('min(responded_at)') }} from {{ ref('stg_crm__nps_responses') }}),
        {{ as_of_date() }}
    ) as first_day
)
select
    m::date as month,
    least({{ utc_start("m + interval '1 month'") }}, {{ as_of_end() }}) as month_end_at
from bounds,
    generate_series(
        date_trunc('month', bounds.first_day)::timestamp,
        date_trunc('month', {{ as_of_date() }})::timestamp,
        interval '1 month'
    ) as m
