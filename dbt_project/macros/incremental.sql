{#- Month-grained marts: a run for as_of_date D (re)writes the month of D and the month
    before (late corrections to last month land there), but never a month already written
    from a later snapshot, so backfilling an old date leaves newer history as it was.
    Full builds write every month. Use on a relation with columns `month` and `as_of_date`. -#}
{% macro month_window_filter(month_column='month') -%}
    {%- if is_incremental() %}
    where {{ month_column }} >= (date_trunc('month', {{ as_of_date() }}) - interval '1 month')::date
      and not exists (
          select 1 from {{ this }} as written
          where written.month = {{ month_column }}
            and written.as_of_date > {{ as_of_date() }}
      )
    {%- endif %}
{%- endmacro %}
