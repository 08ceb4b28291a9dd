{#- Models land in `staging`, `intermediate`, `marts` and seeds in `seeds`, exactly:
    the custom schema is used as is, never prefixed with the target's schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
