{#- An amount converted to the reporting currency with the `currency_rates` seed
    (rate_to_usd: the value of one unit in USD; a constant planning rate per currency).
    Expects the seed joined twice: `fx` on the row's currency, `fx_rep` on the reporting one. -#}
{% macro to_reporting(amount, fx_alias='fx') -%}
    round(({{ amount }}) * {{ fx_alias }}.rate_to_usd / fx_rep.rate_to_usd, 2)
{%- endmacro %}

{% macro join_rates(currency_column, fx_alias='fx') -%}
    left join {{ ref('currency_rates') }} as {{ fx_alias }}
        on {{ fx_alias }}.currency = upper({{ currency_column }})
{%- endmacro %}

{% macro join_reporting_rate() -%}
    cross join (
        select rate_to_usd from {{ ref('currency_rates') }}
        where currency = '{{ reporting_currency() }}'
    ) as fx_rep
{%- endmacro %}
