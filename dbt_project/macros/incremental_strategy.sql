{#- The incremental strategy of the staging and intermediate models: `replace_keys`.

    The batch a run computes (dbt's temp relation) holds the rows to write plus "drop" rows
    (_drop = true) for keys whose rows must go without replacement. Every target row whose
    key (unique_key, one or several columns) is in the batch is deleted, then the batch's
    rows that are not drops are inserted: a key's rows are replaced as a whole (all the
    versions of a subscription, all the months of an account...).

    With meta `regroup_column` (the column downstream models group this model's rows by, e.g.
    account_id), the run also records whether a key lost a group: a current row of the key
    whose group is not among the key's new rows (a record moved to another account, or
    dropped). Downstream per-group models find the groups to recompute from the rows a run
    wrote (_written_at), which cannot name a group that lost its last row of the key: such a
    run sets the model's regrouped_at, and its dependants rebuild (macro derived_plan).

    A rebuild (the plan's mode, read from the pending state) re-creates the table from its batch,
    the whole table as of the run's night, with the columns the model has now (a table built
    by an older version of the model included); the post-hook creates its indexes. -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- set group = (config.get('meta') or {}).get('regroup_column') -%}
    {%- set mode = run_query(
        "select pending ->> 'mode' from audit.dbt_incremental_state where model = '"
        ~ incremental_state_key(target) ~ "' and pending_invocation = '" ~ invocation_id ~ "'"
    ).columns[0].values() -%}
    {%- if mode | length == 0 -%}
        {%- do exceptions.raise_compiler_error('no incremental plan of this dbt run for ' ~ target) -%}
    {%- endif -%}
    {%- if mode[0] == 'rebuild' -%}
        {%- set fresh = adapter.get_columns_in_relation(batch)
            | rejectattr('name', 'equalto', '_drop') | map(attribute='quoted') | join(', ') %}
drop table {{ target }};
create table {{ target }} as
select {{ fresh }} from {{ batch }} where not _drop
    {%- else -%}
    {%- if group %}
update audit.dbt_incremental_state
set pending = pending || '{"regrouped": true}'::jsonb
where model = '{{ incremental_state_key(target) }}'
  and pending_invocation = '{{ invocation_id }}'
  and (
      -- (key, group) pairs of the table that the batch's rows no longer have; a count, not
      -- exists: the planner would pick a fast-start nested loop for an exists
      select count(*)
      from (
          select {% for k in keys %}t.{{ k }}, {% endfor %}t.{{ group }}
          from {{ target }} as t
          join (select distinct {{ keys | join(', ') }} from {{ batch }}) as s
              on {% for k in keys %}t.{{ k }} = s.{{ k }}{% if not loop.last %} and {% endif %}{% endfor %}
          except
          select {% for k in keys %}{{ k }}, {% endfor %}{{ group }}
          from {{ batch }}
          where not _drop
      ) as lost
  ) > 0;
    {%- endif %}
delete from {{ target }} as t
using (select distinct {{ keys | join(', ') }} from {{ batch }}) as s
where {% for k in keys %}t.{{ k }} = s.{{ k }}{% if not loop.last %} and {% endif %}{% endfor %};
insert into {{ target }} ({{ columns }})
select {{ columns }} from {{ batch }} where not _drop
    {%- endif %}
{%- endmacro %}

{#- The final select of an incremental staging or intermediate model: the rows of CTE `rows`
    stamped with the night and the moment that wrote them (_written_as_of, _written_at;
    downstream models find what changed by _written_at, the dbt tests check the rows of the
    night by _written_as_of), and in an incremental run the drops: every key of `scope` (a
    query of key columns: the keys this run recomputes) that `rows` no longer has. A rebuild's
    rows replace the whole table (the strategy empties it first). -#}
{% macro replace_rows(rows, keys, plan, scope=none) -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set stamp = as_of_date() ~ " as _written_as_of, now() as _written_at" -%}
    {%- if plan.mode == 'full' %}
select *, {{ stamp }} from {{ rows }}
    {%- elif plan.mode == 'rebuild' or scope is none %}
select *, {{ stamp }}, false as _drop from {{ rows }}
    {%- else %}
select *, {{ stamp }}, n.{{ keys[0] }} is null as _drop
from (select distinct {{ keys | join(', ') }} from ({{ scope }}) as scope) as s
full join {{ rows }} as n using ({{ keys | join(', ') }})
    {%- endif %}
{%- endmacro %}

{#- What a night recomputes of a table with one row per (month, account) (int_mrr_monthly,
    int_account_months): every account's rows of a month the table has no rows of yet (the
    first night of a month), and the months of the accounts `accounts` selects (those whose
    inputs a run changed): every month, or with `changed_from` the months whose month_end_at
    is at or after the account's changed_from (then `accounts` selects account_id and
    changed_from, a timestamptz). `parts`: the where clause of each branch of the model's union
    (one branch and no clause unless the plan is incremental), over `int_months` as m and
    the account column `account_column`; `replaced`: the (month, account_id) keys the
    night's rows replace (replace_rows' scope). -#}
{% macro month_account_scope(plan, accounts, account_column, changed_from=false) -%}
    {%- set months -%}
        select month from {{ ref('int_months') }}
        where month > (select coalesce(max(month), '-infinity'::date) from {{ this }})
           or month < (select coalesce(min(month), 'infinity'::date) from {{ this }})
    {%- endset -%}
    {%- if changed_from -%}
        {%- set recomputed = 'exists (select from (' ~ accounts ~ ') as a where a.account_id = '
                             ~ account_column ~ ' and m.month_end_at >= a.changed_from)' -%}
        {%- set replaced = 'select month, account_id from ' ~ this ~ ' where month in (' ~ months
                           ~ ') union select t.month, t.account_id from ' ~ this ~ ' as t join ('
                           ~ accounts ~ ') as a on a.account_id = t.account_id left join '
                           ~ ref('int_months') ~ ' as m on m.month = t.month'
                           ~ ' where m.month_end_at is null or m.month_end_at >= a.changed_from' -%}
    {%- else -%}
        {%- set recomputed = account_column ~ ' in (' ~ accounts ~ ')' -%}
        {%- set replaced = 'select month, account_id from ' ~ this ~ ' where month in (' ~ months
                           ~ ') or account_id in (' ~ accounts ~ ')' -%}
    {%- endif -%}
    {%- set parts = [none] if plan.mode != 'incremental' else [
        'm.month in (' ~ months ~ ')',
        'm.month not in (' ~ months ~ ') and ' ~ recomputed] -%}
    {{- return({'parts': parts, 'replaced': replaced}) -}}
{%- endmacro %}
