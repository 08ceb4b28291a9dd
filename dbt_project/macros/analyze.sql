{#- Fresh planner statistics of the raw layer, at the start of every run. Without statistics
    PostgreSQL guesses a handful of rows and picks nested loops that take minutes instead of
    seconds, so a night's partition of a raw table is analyzed when it never was or when a
    tenth of it changed since, and a raw table as a whole (the statistics of a query over
    several nights) when it never was or its partitions grew by a tenth since: the first,
    full export; a night's delta adds far less, and analyzing two years of activities costs
    more than the night's staging. dbt also analyzes each table it (re)builds (macro
    after_build). -#}
{% macro analyze_raw() -%}
    {%- if execute -%}
    do $analyze$
    declare t record;
    begin
        for t in
            select s.schemaname, s.relname
            from pg_stat_user_tables as s
            join pg_class as c on c.oid = s.relid
            where s.schemaname = 'raw' and c.relkind = 'r'
              and (coalesce(s.last_analyze, s.last_autoanalyze) is null
                   or s.n_mod_since_analyze > 0.1 * greatest(s.n_live_tup, 1))
        loop
            execute format('analyze %I.%I', t.schemaname, t.relname);
        end loop;
        for t in
            select p.oid::regclass as parent
            from pg_class as p
            join pg_namespace as n on n.oid = p.relnamespace
            where n.nspname = 'raw' and p.relkind = 'p'
              and (p.reltuples < 0
                   or (select coalesce(sum(greatest(c.reltuples, 0)), 0)
                       from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
                       where i.inhparent = p.oid) > 1.1 * p.reltuples)
        loop
            execute format('analyze %s', t.parent);
        end loop;
    end
    $analyze$
    {%- endif -%}
{%- endmacro %}

{#- Session settings of the build's connections (see var work_mem). JIT off: PostgreSQL
    compiles a plan whose estimated cost passes jit_above_cost, and the models' estimates
    (nested loops priced out where a model turns them off) pass it by far; compiling the
    back-test's plan took 8 s of a 40 s query at 20,000 accounts, for no faster execution
    (docs/marts.md, Speed). -#}
{% macro session_settings() -%}
    set work_mem = '{{ var("work_mem", "128MB") }}'; set jit = off
{%- endmacro %}
