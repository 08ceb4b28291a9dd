{#- A mart that is a copy of an incremental intermediate model (health_score_backtest_accounts
    of int_backtest_accounts) catches up with it instead of copying it whole every night
    (issue 15: the whole copy cost 1.5 s a night at 100,000 accounts and 365 days, 2.7 s at
    730, growing with the history).

    The mart's own rows say how far it has caught up: `stamp_column` is the source's
    _written_at, and every row the source wrote after the mart's newest stamp is missing or
    out of date in the mart. That holds whichever table the mart is: the WAP shadow is the
    schema published two nights ago (customer_health.publishing.wap), so its copy catches up
    with two nights of writes, and a night whose gate failed left a copy that is still true of
    the source. A night replaces, by `keys`, the mart's rows of the source rows written since
    (pre-hook catch_up_replace, then dbt's append of the model's rows), or copies the source
    whole after emptying the mart when one of these holds:
    - the mart is empty;
    - the source was rebuilt or moved a record (rebuilt_at, regrouped_at in
      audit.dbt_incremental_state) after the mart's newest stamp: a rebuild can drop rows
      (an evaluation date no longer wanted), which no written row names;
    - the mart's columns are not the model's (its code changed). A column the model drops
      stays in the table (the marts' on_schema_change is append_new_columns), so the mart
      would be copied whole every night: after dropping one, run
      `dbt build --full-refresh -s health_score_backtest_accounts` once.
    The source's incremental writes only add or replace rows (they never drop one), which is
    what makes the stamp enough. -#}
{% macro catch_up_plan(source, stamp_column) -%}
    {%- if not (incremental_planning() and is_incremental()) -%}
        {{- return({'whole': true, 'since': none}) -}}
    {%- endif -%}
    {%- set found = run_query(
        "select m.newest::text, coalesce(s.rebuilt_at > m.newest or s.regrouped_at > m.newest, true)"
        " from (select max(" ~ adapter.quote(stamp_column) ~ ") as newest from " ~ this ~ ") as m"
        " left join audit.dbt_incremental_state as s"
        " on s.model = '" ~ incremental_state_key(source) ~ "' and s.as_of_date is not null"
        ).rows[0] -%}
    {%- set held = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- set wanted = model.columns.keys() | list -%}
    {%- set whole = found[0] is none or found[1] or (held | sort) != (wanted | sort) -%}
    {{- return({'whole': whole, 'since': none if whole else found[0]}) -}}
{%- endmacro %}

{#- The model's filter on the source (alias-free): the rows written since the mart's newest
    stamp, or every row. -#}
{% macro catch_up_rows(plan) -%}
    {%- if plan.since is not none -%}
        where _written_at > timestamptz '{{ plan.since }}'
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook: make room for the rows the model appends (empty the mart, or delete the rows the
    source rewrote since, by `keys`). Rendered when the hook runs, after the model's SQL was
    compiled and before anything was written: the plan is the same. -#}
{% macro catch_up_replace(source, stamp_column, keys) -%}
    {%- if incremental_planning() and is_incremental() -%}
        {%- set plan = catch_up_plan(source, stamp_column) -%}
        {%- if plan.whole -%}
            truncate {{ this }}
        {%- else -%}
            delete from {{ this }} as t
            using {{ source }} as s
            where s._written_at > timestamptz '{{ plan.since }}'
            {%- for k in keys %}
              and t.{{ k }} = s.{{ k }}
            {%- endfor %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
