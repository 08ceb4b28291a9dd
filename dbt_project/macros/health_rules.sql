{#- The rules the marts share, each stated once: their figures are vars in dbt_project.yml
    (customer_health.modelling.dbt_facts reads the same vars for the marts gate and the report). -#}

{#- health_band of a health_score: healthy from var health_healthy_from, at_risk from
    var health_at_risk_from, critical below; NULL when the score is. -#}
{% macro health_band(score) -%}
    case
        when {{ score }} >= {{ var('health_healthy_from') }} then 'healthy'
        when {{ score }} >= {{ var('health_at_risk_from') }} then 'at_risk'
        when {{ score }} is not null then 'critical'
    end
{%- endmacro %}

{#- An NPS response (0-10) is a promoter from var nps_promoter_from, a detractor up to
    var nps_detractor_to, a passive in between. -#}
{% macro nps_promoter(score) -%}
    {{ score }} >= {{ var('nps_promoter_from') }}
{%- endmacro %}

{% macro nps_detractor(score) -%}
    {{ score }} <= {{ var('nps_detractor_to') }}
{%- endmacro %}

{#- The segments (var segments) as a SQL list of literals, e.g. 'enterprise', 'smb' -#}
{% macro segment_literals() -%}
    {%- for s in var('segments') %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}
