{#- The `where` config of the project's tests may name two placeholders (dbt renders a test's
    `where` with var() only, so they are filled in here):
    - __as_of_date__: the run's as_of_date, with the macro the models use (marts: a run tests
      the rows of its night);
    - __last_written_at__: the moment the model's last run wrote its rows, max(_written_at),
      read when the test runs (incremental staging and intermediate models: a run tests the
      rows it wrote; index on _written_at).
    So the tests' cost follows the night, not the history. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__last_written_at__' in where -%}
            {#- a literal, not a subquery: the planner estimates a parameter's rows from the
                column's distinct values and would scan the whole table -#}
            {%- set last = run_query('select max(_written_at)::text from ' ~ relation)
                .columns[0].values()[0] if execute else none -%}
            {%- set where = where | replace('__last_written_at__',
                "timestamptz '" ~ last ~ "'" if last is not none else 'null') -%}
        {%- endif -%}
        {%- set where = where | replace('__as_of_date__', as_of_date()) -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') as dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
