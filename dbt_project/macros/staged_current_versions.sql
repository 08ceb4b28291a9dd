{#- Incremental staging (plans: macro staging_plan; strategy: replace_keys).

    Two ways to catch up from the table's night L to the run's night D:

    staged_current_versions (current version of each record, no filter: activities, tickets,
    invoices, payments, subscriptions, customers): the night's newly visible raw rows (exported
    after L, found by pruning raw's partitions by _export_date, plus "pending" rows if any, in
    the nights the plan names) are merged: a record's newest of them replaces its staged version when
    (updated_at, _export_date, _line_number) is greater, the contract's delta rule. Exact,
    because between L and D raw rows only become visible, never disappear (otherwise the
    plan is a rebuild).

    staging_source + staging_changed_keys (models whose rows are any function of a record's
    raw versions: every version with its validity interval, or a current version that a filter
    may drop): the records that have a newly visible raw row are recomputed from all their raw
    rows; those that no longer give a row are dropped. -#}

{#- The keys of the records with a raw row that becomes visible between the plan's night
    (plan.since) and as_of_date. -#}
{% macro staging_changed_keys(relation, key, plan) -%}
    select r.{{ key }} from {{ relation }} as r
    where r._export_date > date '{{ plan.since }}' and r._export_date <= {{ as_of_date() }}
    {%- if plan.pending %}
    union
    select r.{{ key }} from {{ relation }} as r
    where r._export_date in ({{ plan.pending }})
      and r.{{ plan.time_column }} >= {{ day_end(plan.since) }}
      and r.{{ plan.time_column }} < {{ as_of_end() }}
    {%- endif %}
{%- endmacro %}

{#- The raw rows that become visible between the plan's night (plan.since) and as_of_date:
    exported after it, or exported on or before it with the time column at or after its end
    (the plan's "pending" nights). -#}
{% macro newly_visible_rows(relation, plan) -%}
    select * from {{ relation }} as r
    where r._export_date > date '{{ plan.since }}' and r._export_date <= {{ as_of_date() }}
      and r.{{ plan.time_column }} < {{ as_of_end() }}
    {%- if plan.pending %}
    union all
    select * from {{ relation }} as r
    where r._export_date in ({{ plan.pending }})
      and r.{{ plan.time_column }} >= {{ day_end(plan.since) }}
      and r.{{ plan.time_column }} < {{ as_of_end() }}
    {%- endif %}
{%- endmacro %}

{#- The raw rows a staging model reads: all of them, or in an incremental run those of the
    records with a newly visible row. -#}
{% macro staging_source(relation, key, plan) -%}
    {%- if plan.mode == 'incremental' -%}
        (select * from {{ relation }} where {{ key }} in (
            {{ staging_changed_keys(relation, key, plan) }}))
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- `columns`: the select list (over alias r) that types and renames the raw columns, without
    updated_at, which is added with the provenance the merge compares. -#}
{% macro staged_current_versions(relation, key, columns) -%}
    {%- set plan = staging_plan(relation) -%}
    with candidates as (
        select distinct on (r.{{ key }}) r.*
        from (
            {%- if plan.mode == 'incremental' %}
            {{ newly_visible_rows(relation, plan) }}
            {%- else %}
            select * from {{ relation }} as r
            where r._export_date <= {{ as_of_date() }}
              and r.updated_at < {{ as_of_end() }}
            {%- endif %}
        ) as r
        order by r.{{ key }}, r.updated_at desc, r._export_date desc, r._line_number desc
    ),
    staged as (
        select
            {{ columns }},
            r.updated_at,
            r._export_date,
            r._line_number
        from candidates as r
        {%- if plan.mode == 'incremental' %}
        left join {{ this }} as cur on cur.{{ key }} = r.{{ key }}
        where cur.{{ key }} is null
           or (r.updated_at, r._export_date, r._line_number)
              > (cur.updated_at, cur._export_date, cur._line_number)
        {%- endif %}
    )
    {{ replace_rows('staged', [key], plan) }}
{%- endmacro %}
