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
        when {{ r }}._export_date = {{ first_export_date(relation) }}
        then {{ utc_date(r ~ '.' ~ time_column) }}
        else greatest({{ r }}._export_date, {{ utc_date(r ~ '.' ~ time_column) }})
    end
{%- endmacro %}

{#- The date of a raw table's first export (its full history), from the partition figures
    (incremental_state.sql): a min(_export_date) over raw would read every row of every
    night, since raw has no index to answer it. -#}
{% macro first_export_date(relation) -%}
    (select min(f.export_date)
     from audit.raw_partition_figures('{{ relation }}'::regclass,
                                      '{{ raw_time_column(relation) }}') as f
     where f.rows > 0)
{%- endmacro %}

{#- Every version of an entity with the span of evaluation dates [known_from, known_to) over
    which it is the current version, as known then: on date E a row is known when
    known_since(row) <= E (above), and the current version is the known one with the greatest
    (version_column, _export_date, _line_number), the rule of current_versions. Set-based, for
    the back-test's many dates at once: per record, the running maximum of the versions
    known so far, one span per change of it (a version that is never current has no span;
    known_to is NULL while no later version shows up). `rows`: a query of raw rows with
    their `_visible_on` (known_since) and the columns `columns`, which the spans carry.
    A span depends only on the versions that are ever current, so a night can recompute a
    record's spans from its stored spans plus its new rows (int_known_versions__*). -#}
{% macro version_spans(rows, key, version_column, columns) -%}
    {#- key: a column, or a list of columns (a record of several, e.g. a subscription version) -#}
    {%- set keys = [key] if key is string else key -%}
    {%- set single = key is string -%}
    with ranked as (
        select
            r.*,
            row_number() over (
                partition by r.{{ keys | join(', r.') }}
                order by {% if version_column %}r.{{ version_column }}, {% endif -%}
                    r._export_date, r._line_number
            ) as _version_rank
        from ({{ rows }}) as r
    ),
    steps as (
        select
            {% if single %}{{ key }} as _key{% else %}{{ keys | join(', ') }}{% endif %},
            _visible_on,
            max(max(_version_rank)) over (partition by {{ keys | join(', ') }} order by _visible_on)
                as _current_rank
        from ranked
        group by {{ keys | join(', ') }}, _visible_on
    ),
    {%- set part = '_key' if single else keys | join(', ') %}
    changes as (
        select
            {{ part }},
            _visible_on,
            _current_rank,
            lag(_current_rank) over (partition by {{ part }} order by _visible_on) as _previous_rank
        from steps
    ),
    spans as (
        select
            {{ part }},
            _current_rank,
            _visible_on as known_from,
            lead(_visible_on) over (partition by {{ part }} order by _visible_on) as known_to
        from changes
        where _previous_rank is distinct from _current_rank
    )
    select {% for c in columns %}v.{{ c }}, {% endfor %}s.known_from, s.known_to
    from spans as s
    join ranked as v on
    {%- if single %} v.{{ key }} = s._key and
    {%- else %}{% for k in keys %} v.{{ k }} = s.{{ k }} and{% endfor %}{% endif %} v._version_rank = s._current_rank
{%- endmacro %}

{#- The body of an int_known_versions__<raw table> model: the version spans (version_spans) of
    the raw rows exported up to as_of_date, kept as a table for the back-test
    (int_backtest_scores), which reads them for each new evaluation date instead of
    recomputing them from all of raw (issue 15: 300 s and more a night at 100,000 accounts).
    Incremental with the staging plan (staging_plan: the nights since the table's night, a
    rebuild when a night it read was re-delivered): a night recomputes the spans of the
    records its raw rows name, from their stored spans and the new rows. `columns`: what the
    back-test reads besides the key. -#}
{% macro known_versions_model(relation, key, columns, version_column='updated_at',
                              time_column='updated_at') -%}
    {%- set plan = staging_plan(relation) -%}
    {%- set keys = [key] if key is string else key -%}
    {%- set carried = keys | list -%}
    {%- for c in [version_column, time_column] + columns + ['_export_date', '_line_number']
        if c and c not in carried -%}
        {%- do carried.append(c) -%}
    {%- endfor -%}
    {%- set night -%}
        r._export_date <= {{ as_of_date() }}
        {%- if plan.mode == 'incremental' %} and r._export_date > date '{{ plan.since }}'{% endif %}
    {%- endset -%}
    {%- set rows -%}
        select {% for c in carried %}r.{{ c }}, {% endfor -%}
            {{ known_since(relation, 'r', time_column) }} as _visible_on
        from {{ relation }} as r
        where {{ night }}
        {%- if plan.mode == 'incremental' %}
        union all
        select {% for c in carried %}t.{{ c }}, {% endfor %}t._visible_on
        from {{ this }} as t
        where {% if key is string %}t.{{ key }}{% else %}(t.{{ keys | join(', t.') }}){% endif %} in (
            select r.{{ keys | join(', r.') }} from {{ relation }} as r where {{ night }})
        {%- endif %}
    {%- endset %}
with spans as (
    {{ version_spans(rows, key, version_column, carried + ['_visible_on']) }}
)
{{ replace_rows('spans', keys, plan) }}
{%- endmacro %}

{#- True when a row of version_spans (alias `v`) is the current version on date `d`. -#}
{% macro known_on(v, d) -%}
    {{ v }}.known_from <= {{ d }} and ({{ v }}.known_to is null or {{ d }} < {{ v }}.known_to)
{%- endmacro %}
