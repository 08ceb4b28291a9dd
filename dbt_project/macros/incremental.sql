{#- Month-grained marts: a run for as_of_date D (re)writes the month of D and the month
    before (late corrections to last month land there), but never a month already written
    from a later snapshot, so backfilling an old date leaves newer history as it was.
    Full builds write every month. Use on a relation with columns `month` and `as_of_date`. -#}
{% macro month_window_filter(month_column='month') -%}
    {%- if is_incremental() %}
    {%- set window_start -%}
        (date_trunc('month', {{ as_of_date() }}) - interval '1 month')::date
    {%- endset %}
    where {{ month_column }} >= {{ window_start }}
      and {{ month_column }} not in (
          -- the (at most two) months a later night wrote: one set, computed once (a hashed
          -- subplan), not an anti-join probing the mart's rows of a month for every row
          select written.month from {{ this }} as written
          where written.as_of_date > {{ as_of_date() }}
            and written.month >= {{ window_start }}
          group by written.month
      )
    {%- endif %}
{%- endmacro %}
