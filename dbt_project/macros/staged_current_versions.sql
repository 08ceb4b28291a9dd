{#- An incremental staging table of current versions: a night's run merges only the raw rows
    that can change the answer instead of re-sorting the whole history.

    Rows that can matter for as_of_date D after a run for L (the table's last as_of_date):
    loaded since that run (`_loaded_at`), or stamped at or after the end of L (a version
    exported early with a later updated_at); always only those visible at the end of D.
    A candidate replaces the staged version when (updated_at, _export_date, _line_number) is
    greater: the contract's delta rule.
    A run for a date before L (a backfill) rebuilds the table as of D from the whole history
    (the table is emptied first), so the next night's run catches up in the same way.
    `columns` is the select list (over alias r) that types and renames the raw columns. -#}
{% macro staged_current_versions(relation, key, columns) -%}
    {%- set last = none -%}
    {%- if is_incremental() and execute -%}
        {%- set found = run_query(
            "select max(_staged_as_of)::text, max(_staged_at)::text from " ~ this) -%}
        {%- set last = found.columns[0].values()[0] -%}
        {%- set staged_at = found.columns[1].values()[0] -%}
    {%- endif -%}
    {%- set rebuild = (not is_incremental()) or last is none or last > as_of_date_str() -%}
    {#- only when this invocation builds the model (not dbt compile / docs generate) -#}
    {%- if rebuild and is_incremental() and execute and flags.WHICH in ('run', 'build') -%}
        {%- do run_query("truncate table " ~ this) -%}
    {%- endif %}
    with candidates as (
        select distinct on (r.{{ key }}) r.*
        from {{ relation }} as r
        where r._export_date <= {{ as_of_date() }}
          and r.updated_at < {{ as_of_end() }}
        {%- if not rebuild %}
          and (r._loaded_at > timestamptz '{{ staged_at }}'
               or r.updated_at >= (timestamp '{{ last }}' + interval '1 day') at time zone 'UTC')
        {%- endif %}
        order by r.{{ key }}, r.updated_at desc, r._export_date desc, r._line_number desc
    )
    select
        {{ columns }},
        r.updated_at,
        r._export_date,
        r._line_number,
        {{ as_of_date() }} as _staged_as_of,
        now() as _staged_at
    from candidates as r
    {%- if not rebuild %}
    left join {{ this }} as cur on cur.{{ key }} = r.{{ key }}
    where cur.{{ key }} is null
       or (r.updated_at, r._export_date, r._line_number)
          > (cur.updated_at, cur._export_date, cur._line_number)
    {%- endif %}
{%- endmacro %}
