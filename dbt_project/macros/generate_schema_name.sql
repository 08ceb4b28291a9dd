{#- Models land in `staging`, `intermediate`, `marts` and seeds in `seeds`, exactly:
    the custom schema is used as is, never prefixed with the target's schema.
    The marts go where var `marts_schema` says (default `marts`): the nightly DAG builds
    them in the shadow schema `marts_shadow` and swaps it in once validated
    (customer_health.publishing.wap). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name | trim == 'marts' -%}
        {{ var('marts_schema', 'marts') | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
