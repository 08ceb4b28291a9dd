{#- Fresh planner statistics. The loader has just appended to raw.* and dbt has just
    (re)built a table: without statistics PostgreSQL guesses a handful of rows and picks
    nested loops that take minutes instead of seconds. -#}
{% macro analyze_raw() -%}
    {%- if execute -%}
    do $analyze$
    declare t record;
    begin
        for t in select schemaname, tablename from pg_tables where schemaname = 'raw' loop
            execute format('analyze %I.%I', t.schemaname, t.tablename);
        end loop;
    end
    $analyze$
    {%- endif -%}
{%- endmacro %}

{#- Session settings of the build's connections (see var work_mem). -#}
{% macro session_settings() -%}
    set work_mem = '{{ var("work_mem", "128MB") }}'
{%- endmacro %}
