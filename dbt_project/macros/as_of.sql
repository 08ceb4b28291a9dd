{#- The run's logical date and the instant the day ends (UTC).
    Every "as of" figure uses data visible at the end of as_of_date: raw rows exported on or
    before it and events/versions stamped before its end. -#}
{% macro as_of_date_str() -%}
    {%- set raw = var('as_of_date', none) -%}
    {%- if raw is none or raw | string | trim == '' or raw | string | lower == 'none' -%}
        {{- return(modules.datetime.datetime.now(modules.pytz.utc).date().isoformat()) -}}
    {%- endif -%}
    {%- set text = raw | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var as_of_date must be YYYY-MM-DD, got " ~ text) }}
    {%- endif -%}
    {{- return(modules.datetime.date.fromisoformat(text).isoformat()) -}}
{%- endmacro %}

{% macro as_of_date() -%}
    date '{{ as_of_date_str() }}'
{%- endmacro %}

{#- The first instant after as_of_date (exclusive upper bound of "at or before the end of D"). -#}
{% macro as_of_end() -%}
    (timestamp '{{ as_of_date_str() }}' + interval '1 day') at time zone 'UTC'
{%- endmacro %}

{#- The UTC calendar date of a timestamptz, whatever the session's time zone. -#}
{% macro utc_date(ts) -%}
    (({{ ts }}) at time zone 'UTC')::date
{%- endmacro %}

{#- The first instant (timestamptz) of a UTC calendar date expression. -#}
{% macro utc_start(d) -%}
    (({{ d }})::timestamp at time zone 'UTC')
{%- endmacro %}

{% macro reporting_currency() -%}
    {{- return((var('reporting_currency', 'USD') or 'USD') | string | trim | upper) -}}
{%- endmacro %}
