-- The back-test's evaluation dates: var backtest_evaluation_dates (a list, or a comma-separated
-- string from the command line), or (null) the first of each
-- month from the first month after the history starts (the earliest subscription version's
-- updated_at); one row per date and horizon (macro backtest_horizons) that has passed by
-- as_of_date.
{%- set explicit = var('backtest_evaluation_dates', none) %}
{%- if explicit is string %}
{%- set explicit = explicit.split(',') | map('trim') | reject('equalto', '') | list %}
{%- endif %}
{%- for d in explicit or [] %}
{%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', d | string) %}
{{ exceptions.raise_compiler_error("var backtest_evaluation_dates: YYYY-MM-DD dates, got " ~ d) }}
{%- endif %}
{%- endfor %}
with candidates as (
    {%- if explicit %}
    select d::date as evaluation_date
    from unnest(array[{% for d in explicit %}'{{ d }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as d
    {%- else %}
    select m::date as evaluation_date
    from (
        select {{ utc_date('min(updated_at)') }} as first_day
        from {{ source('raw', 'billing_subscriptions') }}
        where _export_date <= {{ as_of_date() }}
    ) as bounds,
        generate_series(
            date_trunc('month', bounds.first_day)::timestamp + interval '1 month',
            {{ as_of_date() }}::timestamp,
            interval '1 month'
        ) as m
    {%- endif %}
)
select distinct c.evaluation_date, h.horizon_days
from candidates as c
cross join unnest(array[{{ backtest_horizons() | join(', ') }}]) as h (horizon_days)
where c.evaluation_date + h.horizon_days <= {{ as_of_date() }}
