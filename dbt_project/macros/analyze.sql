{#- Fresh planner statistics and block-range summaries of the raw layer, at the start of
    every run. Without statistics PostgreSQL guesses a handful of rows and picks nested loops
    that take minutes instead of seconds, so a raw table is analyzed when it never was or when
    a tenth of it changed since (the first, full export; a night's delta changes far less, and
    analyzing two years of activities costs more than the night's staging). The loader appends
    a night's rows after the BRIN index's last summarized range; summarizing them makes the
    incremental staging models' reads of a night (`_export_date > ...`) touch only that night's
    pages instead of the whole table (a non-owner cannot summarize: then the index still
    answers, less sharply). dbt also analyzes each table it (re)builds (macro after_build). -#}
{% macro analyze_raw() -%}
    {%- if execute -%}
    do $analyze$
    declare t record;
    begin
        for t in
            select s.schemaname, s.relname
            from pg_stat_user_tables as s
            where s.schemaname = 'raw'
              and (coalesce(s.last_analyze, s.last_autoanalyze) is null
                   or s.n_mod_since_analyze > 0.1 * greatest(s.n_live_tup, 1))
        loop
            execute format('analyze %I.%I', t.schemaname, t.relname);
        end loop;
        for t in
            select i.indexrelid::regclass as index
            from pg_index as i
            join pg_class as c on c.oid = i.indexrelid
            join pg_am as am on am.oid = c.relam
            join pg_namespace as n on n.oid = c.relnamespace
            where n.nspname = 'raw' and am.amname = 'brin'
        loop
            begin
                perform brin_summarize_new_values(t.index);
            exception when insufficient_privilege then
                null;
            end;
        end loop;
    end
    $analyze$
    {%- endif -%}
{%- endmacro %}

{#- Session settings of the build's connections (see var work_mem). -#}
{% macro session_settings() -%}
    set work_mem = '{{ var("work_mem", "128MB") }}'
{%- endmacro %}
