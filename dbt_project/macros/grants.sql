{#- Runs at the end of every dbt invocation: the analyst role (when it exists; see
    customer_health.publishing.analyst_role.grant_analyst) may read every table in `marts`,
    including tables a full refresh has just recreated. Nothing else is granted. -#}
{% macro grant_marts_to_analyst() -%}
    {%- if execute -%}
    do $grant$
    begin
        if exists (select 1 from pg_roles where rolname = 'chw_analyst')
           and exists (select 1 from pg_namespace where nspname = 'marts') then
            execute 'grant usage on schema marts to chw_analyst';
            execute 'grant select on all tables in schema marts to chw_analyst';
        end if;
    end
    $grant$
    {%- endif -%}
{%- endmacro %}
