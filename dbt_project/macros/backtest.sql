{#- The back-test's horizons in days: var backtest_horizon_days, one number (90) or several (a
    list, or a comma-separated string from the command line: "30,90,180"). An account live on
    an evaluation date churned within a horizon when its MRR fell to 0 within that many days;
    every horizon gets its own rows in the back-test marts. -#}
{% macro backtest_horizons() -%}
    {%- set raw = var('backtest_horizon_days') -%}
    {%- if raw is string -%}
        {%- set raw = raw.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- elif raw is number -%}
        {%- set raw = [raw] -%}
    {%- endif -%}
    {%- set horizons = [] -%}
    {%- for h in raw -%}
        {%- if not modules.re.match('^[0-9]+$', h | string) or (h | int) < 0 -%}
            {{ exceptions.raise_compiler_error("var backtest_horizon_days: whole days >= 0, got " ~ h) }}
        {%- endif -%}
        {%- do horizons.append(h | int) if (h | int) not in horizons -%}
    {%- endfor -%}
    {%- if not horizons -%}
        {{ exceptions.raise_compiler_error("var backtest_horizon_days: at least one horizon") }}
    {%- endif -%}
    {{- return(horizons | sort) -}}
{%- endmacro %}

{#- The columns of int_backtest_scores that are the score (not its bookkeeping, _written_at),
    each prefixed with `alias.` when given: what int_backtest_accounts reads of it, and the
    shape of the scores model's empty night. -#}
{% macro backtest_score_columns(alias=none) -%}
    {%- set columns = ['evaluation_date', 'account_id', 'segment', 'account_team', 'mrr',
                       'engagement_score', 'support_score', 'sentiment_score',
                       'billing_score', 'health_score', 'health_band', 'weights_version'] -%}
    {%- set prefix = alias ~ '.' if alias is not none else '' -%}
    {{- prefix ~ columns | join(', ' ~ prefix) -}}
{%- endmacro %}
