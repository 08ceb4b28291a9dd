{#- The `where` config of the project's tests may name two placeholders (dbt renders a test's
    `where` with var() only, so they are filled in here):
    - __as_of_date__: the run's as_of_date, with the macro the models use (marts: a run tests
      the rows of its night);
    - __last_written_at__: the moment of the model's last build, its `built_at` in
      audit.dbt_incremental_state (incremental staging and intermediate models: a run tests
      the rows it wrote; index on _written_at). A build stamps its rows' _written_at and its
      built_at with the same now(), inside one transaction, so a build that wrote no rows
      leaves nothing to test. Before issue 15's third pass this was max(_written_at): a night
      that wrote no row of int_backtest_accounts tested the rows of its last full build
      (about a million at 100,000 accounts and 365 days: 1.5-2.2 s a night, growing with the
      history). int_backtest_scores (dbt's delete+insert) records its built_at too (meta
      stamps_written_at, macro after_build). A model without a state row falls back to
      max(_written_at).
    So the tests' cost follows the night, not the history. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__last_written_at__' in where -%}
            {#- a literal, not a subquery: the planner estimates a parameter's rows from the
                column's distinct values and would scan the whole table -#}
            {%- set last = run_query(
                "select coalesce((select built_at from audit.dbt_incremental_state"
                " where model = '" ~ incremental_state_key(relation) ~ "'),"
                " (select max(_written_at) from " ~ relation ~ "))::text"
                ).columns[0].values()[0] if execute else none -%}
            {%- set where = where | replace('__last_written_at__',
                "timestamptz '" ~ last ~ "'" if last is not none else 'null') -%}
        {%- endif -%}
        {%- set where = where | replace('__as_of_date__', as_of_date()) -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') as dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
