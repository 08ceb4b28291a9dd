{#- The versions of a raw entity visible at the end of as_of_date, one row per version.
    Visible: exported on or before as_of_date and (where the entity has updated_at) stamped
    before the end of that day. A version delivered twice (same key and updated_at) keeps the
    later export, then the later line of the file: the contract's delta rule.
    DISTINCT ON (not row_number() = 1) so that the planner estimates the row count from the
    key's statistics, which keeps joins on these views hash joins. -#}
{% macro visible_versions(relation, key, version_column='updated_at') -%}
    select distinct on (r.{{ key }}{% if version_column %}, r.{{ version_column }}{% endif %})
        r.*
    from {{ relation }} as r
    where r._export_date <= {{ as_of_date() }}
    {%- if version_column %}
      and r.{{ version_column }} < {{ as_of_end() }}
    {%- endif %}
    order by r.{{ key }}{% if version_column %}, r.{{ version_column }}{% endif %},
        r._export_date desc, r._line_number desc
{%- endmacro %}

{#- The current version of each record visible at the end of as_of_date: the greatest
    updated_at; a tie goes to the later export, then to the later line. -#}
{% macro current_versions(relation, key, version_column='updated_at') -%}
    select distinct on (r.{{ key }})
        r.*
    from {{ relation }} as r
    where r._export_date <= {{ as_of_date() }}
    {%- if version_column %}
      and r.{{ version_column }} < {{ as_of_end() }}
    {%- endif %}
    order by r.{{ key }}, {% if version_column %}r.{{ version_column }} desc, {% endif -%}
        r._export_date desc, r._line_number desc
{%- endmacro %}
