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

{#- The first date on which raw row `r` was known. The contract's first export of a system is
    its full history (shared/spec/exports.md): each of its rows was known from its own
    `time_column` (updated_at; responded_at for NPS) as if delivered that night, so a fresh
    install can be back-tested. A row of a later export was known from its export date, or
    from its time_column's date when that is later (visible_versions' rule). -#}
{% macro known_since(relation, r='r', time_column='updated_at') -%}
    case
        when {{ r }}._export_date = (select min(_export_date) from {{ relation }})
        then {{ utc_date(r ~ '.' ~ time_column) }}
        else greatest({{ r }}._export_date, {{ utc_date(r ~ '.' ~ time_column) }})
    end
{%- endmacro %}

{#- Every raw row of an entity with the span of evaluation dates [known_from, known_to) over
    which it is the current version, as known then: on date E a row is known when
    known_since(row) <= E (above), and the current version is the known one with the greatest
    (version_column, _export_date, _line_number), the rule of current_versions. Set-based, for
    the back-test's many dates at once: each row's first known date, then per record the
    running maximum of the versions known so far. A row that is never current has no span;
    known_to is NULL while no later version shows up. Entities without versions (NPS) pass
    version_column=none and their time_column. -#}
{% macro known_versions(relation, key, version_column='updated_at', time_column='updated_at') -%}
    with ranked as (
        select
            r.*,
            {{ known_since(relation, 'r', time_column) }} as _visible_on,
            row_number() over (
                partition by r.{{ key }}
                order by {% if version_column %}r.{{ version_column }}, {% endif -%}
                    r._export_date, r._line_number
            ) as _version_rank
        from {{ relation }} as r
    ),
    steps as (
        select
            {{ key }} as _key,
            _visible_on,
            max(max(_version_rank)) over (partition by {{ key }} order by _visible_on)
                as _current_rank
        from ranked
        group by {{ key }}, _visible_on
    ),
    spans as (
        select
            _key,
            _current_rank,
            _visible_on as known_from,
            lead(_visible_on) over (partition by _key order by _visible_on) as known_to
        from steps
    )
    select v.*, s.known_from, s.known_to
    from spans as s
    join ranked as v on v.{{ key }} = s._key and v._version_rank = s._current_rank
{%- endmacro %}

{#- True when a row of known_versions (alias `v`) is the current version on date `d`. -#}
{% macro known_on(v, d) -%}
    {{ v }}.known_from <= {{ d }} and ({{ v }}.known_to is null or {{ d }} < {{ v }}.known_to)
{%- endmacro %}
