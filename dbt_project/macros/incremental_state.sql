{#- Incremental staging and intermediate models: what a night may reuse, and how it knows.

    Every incremental model of staging/ and intermediate/ keeps one row in
    audit.dbt_incremental_state: the night it was last built for (as_of_date), when
    (built_at), when it was last rebuilt whole (rebuilt_at) and when a run last moved a record
    to another group (regrouped_at, see macro get_incremental_replace_keys_sql), a hash of
    what its figures depend on besides the data (settings: its code, the figure vars, the seeds
    it reads) and, for staging, a fingerprint of the raw rows it has read (raw_rows,
    raw_loaded_at: count and latest _loaded_at of the raw rows exported on or before
    as_of_date).

    A run plans at compile time (staging_plan, derived_plan) and gets one of three modes:
    - full: the table does not exist or --full-refresh: dbt creates it from the whole history;
    - rebuild: the table exists but nothing of it may be reused: a run for a date before the
      table's (a backfill), a raw date already read that was re-delivered or changed, changed
      settings, or an upstream model that was rebuilt or moved records since this model's
      last build. The whole table is recomputed as of the run's date;
    - incremental: only what the night can change is recomputed.
    The plan is written as `pending` (with dbt's invocation_id); the strategy
    (macros/incremental_strategy.sql) acts on it and the post-hook (after_build), inside the
    build's transaction, makes it the state. So the state always describes the table as
    committed: a failed build leaves both as they were. -#}

{% macro incremental_state_ddl() -%}
    do $ddl$
    begin
        if to_regclass('audit.dbt_incremental_state') is null then
            create schema if not exists audit;
            create table if not exists audit.dbt_incremental_state (
                model text primary key,
                as_of_date date,
                built_at timestamptz,
                rebuilt_at timestamptz,
                regrouped_at timestamptz,
                settings text,
                raw_rows bigint,
                raw_loaded_at timestamptz,
                pending_invocation text,
                pending jsonb
            );
            comment on table audit.dbt_incremental_state is
                'The night each incremental dbt model was built for and what it read:'
                ' see dbt_project/macros/incremental_state.sql';
        end if;
        -- until issue 15 the figures were kept per partition (one night each)
        drop table if exists audit.raw_partition_figures;
        if to_regclass('audit.raw_night_figures') is null then
            create schema if not exists audit;
            create table if not exists audit.raw_night_figures (
                partition oid not null,
                time_column text not null,
                parent regclass not null,
                export_date date not null,
                rows bigint not null,
                loaded_at timestamptz,
                latest timestamptz,
                primary key (partition, time_column, export_date)
            );
            comment on table audit.raw_night_figures is
                'What each night of each raw partition holds, read once per partition:'
                ' see raw_partition_figures in dbt_project/macros/incremental_state.sql';
        end if;
    end
    $ddl$;
    {{ raw_partition_figures_function() }}
{%- endmacro %}

{#- The column that says when a raw table's row becomes visible: the source's meta
    time_column (_sources.yml), or updated_at. -#}
{% macro raw_time_column(relation) -%}
    {%- for node in graph.get('sources', {}).values()
        if node.source_name == 'raw' and node.identifier == relation.identifier -%}
        {{- return(source_time_column(node)) -}}
    {%- endfor -%}
    {{- return('updated_at') -}}
{%- endmacro %}

{% macro source_time_column(node) -%}
    {{- return(node.meta.get('time_column', 'updated_at')) -}}
{%- endmacro %}

{#- on-run-start: the figures of the raw partitions no plan has met yet, read in the hook's own
    transaction (two models that read one raw table, such as stg_crm__accounts and
    stg_crm__account_versions, would otherwise wait on each other's uncommitted figures). -#}
{% macro refresh_raw_partition_figures() -%}
    {%- if execute -%}
    {%- set calls = [] -%}
    {%- for node in graph.sources.values() if node.source_name == 'raw' -%}
        {%- do calls.append("select count(*) from audit.raw_partition_figures(to_regclass('raw."
            ~ node.identifier ~ "'), '" ~ source_time_column(node) ~ "')"
            ~ " where to_regclass('raw." ~ node.identifier ~ "') is not null") -%}
    {%- endfor -%}
    {{ calls | join(';\n') }}
    {%- endif -%}
{%- endmacro %}

{#- The staging plans' fingerprint of raw, from the partition catalogue instead of the rows.
    A partition of a raw table holds one night (or, once folded, the nights of one month:
    loading/compaction.py), and neither the loader nor the compaction ever changes a
    partition once attached: a re-delivered night is a new partition, a folded month a new
    one with the same rows (a new oid each). So a partition's figures per night (its rows,
    their latest _loaded_at and latest time column) are read once, when a plan first meets
    the partition, and kept in audit.raw_night_figures keyed by its oid; a plan sums the
    figures of the nights up to its date instead of counting the whole table (at 100,000
    accounts and two years of nights, that count cost stg_crm__activities 51 s a night).
    The figures of a replaced or dropped partition are deleted here. A writer other than the
    loader that adds rows to a night a plan has read must replace the night's partition, or
    run dbt with --full-refresh. -#}
{% macro raw_partition_figures_function() -%}
    create or replace function audit.raw_partition_figures(raw regclass, time_column text)
    returns table (export_date date, rows bigint, loaded_at timestamptz, latest timestamptz)
    language plpgsql as $fn$
    declare
        p record;
    begin
        delete from audit.raw_night_figures as f
        where f.parent = raw
          and not exists (select 1 from pg_inherits as i
                          where i.inhparent = raw and i.inhrelid = f.partition);
        for p in
            select i.inhrelid as partition,
                   substring(pg_get_expr(c.relpartbound, c.oid) from '''([0-9-]+)''')::date
                       as first_night
            from pg_inherits as i
            join pg_class as c on c.oid = i.inhrelid
            where i.inhparent = raw
              and not exists (select 1 from audit.raw_night_figures as f
                              where f.partition = i.inhrelid
                                and f.time_column = raw_partition_figures.time_column)
            order by i.inhrelid
        loop
            execute format('insert into audit.raw_night_figures'
                           ' select %s, %L, %s, _export_date, count(*), max(_loaded_at),'
                           ' max(%I) from %s group by _export_date on conflict do nothing',
                           p.partition, time_column, raw::oid, time_column,
                           p.partition::regclass);
            -- an empty partition (a night that delivered no rows) is known too
            insert into audit.raw_night_figures
            values (p.partition, time_column, raw, p.first_night, 0, null, null)
            on conflict do nothing;
        end loop;
        return query
            select f.export_date, f.rows, f.loaded_at, f.latest
            from audit.raw_night_figures as f
            where f.parent = raw and f.time_column = raw_partition_figures.time_column;
    end
    $fn$
{%- endmacro %}

{#- Only the commands that build models plan (and write state); compile, docs and show render
    the full-build SQL. -#}
{% macro incremental_planning() -%}
    {#- a unit test renders the model against its fixtures: nothing to plan -#}
    {{- return(execute and flags.WHICH in ('run', 'build', 'retry')
               and model.resource_type != 'unit_test') -}}
{%- endmacro %}

{% macro incremental_state_key(relation=none) -%}
    {%- set relation = relation if relation is not none else this -%}
    {{- return(relation.schema ~ '.' ~ relation.identifier) -}}
{%- endmacro %}

{#- The figure vars (any change rebuilds every incremental model), the model's own code and the
    content of the seeds it reads. After changing a macro these models use, run
    `dbt build --full-refresh` (dbt cannot see a macro's source). -#}
{% macro incremental_settings(seeds=[]) -%}
    {%- set parts = [model.raw_code, 'currency=' ~ reporting_currency()] -%}
    {%- for name in ['inactivity_active_days', 'inactivity_cooling_days', 'inactivity_dormant_days',
                     'engagement_window_days', 'engagement_full_touches', 'support_window_days',
                     'sentiment_window_days', 'billing_window_days', 'win_back_days',
                     'clv_max_months'] -%}
        {%- do parts.append(name ~ '=' ~ var(name, '')) -%}
    {%- endfor -%}
    {%- for seed in seeds -%}
        {%- set content = run_query(
            "select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from "
            ~ seed ~ " as t") -%}
        {%- do parts.append(seed ~ '=' ~ content.columns[0].values()[0]) -%}
    {%- endfor -%}
    {{- return(local_md5(parts | join('\n'))) -}}
{%- endmacro %}

{#- This model's committed state, or none. Timestamps as text with their offset. -#}
{% macro incremental_state(relation=none) -%}
    {%- set found = run_query(
        "select as_of_date::text, built_at::text, rebuilt_at::text, regrouped_at::text, settings"
        " from audit.dbt_incremental_state where as_of_date is not null and model = '"
        ~ incremental_state_key(relation) ~ "'") -%}
    {%- if found.rows | length == 0 -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set row = found.rows[0] -%}
    {{- return({'as_of_date': row[0], 'built_at': row[1], 'rebuilt_at': row[2],
                'regrouped_at': row[3], 'settings': row[4]}) -}}
{%- endmacro %}

{% macro write_incremental_plan(plan) -%}
    {%- do run_query(
        "insert into audit.dbt_incremental_state as s (model, pending_invocation, pending)"
        " values ('" ~ incremental_state_key() ~ "', '" ~ invocation_id ~ "', '"
        ~ tojson(plan) | replace("'", "''") ~ "'::jsonb)"
        " on conflict (model) do update"
        " set pending_invocation = excluded.pending_invocation, pending = excluded.pending") -%}
{%- endmacro %}

{#- The first instant after the UTC day `day` (text YYYY-MM-DD). -#}
{% macro day_end(day) -%}
    ((timestamp '{{ day }}' + interval '1 day') at time zone 'UTC')
{%- endmacro %}

{#- The plan of a staging model over raw `relation`. A raw row becomes visible for as_of_date D
    when it is exported on or before D and its time column (raw_time_column: updated_at;
    responded_at for NPS) is before the end of D. Between the table's night L and D the
    visible rows change only by rows exported after L, or exported on or before L with the
    time column at or after the end of L ("pending": a version exported before its own time; rare; the plan lists the nights
    holding such rows, as quoted dates, or none). Anything else that changes the raw rows of
    dates up to L (the loader replaces a re-delivered date whole) shows in their fingerprint
    (the rows and latest _loaded_at of the nights up to L: raw_partition_figures) and makes
    the run a rebuild. -#}
{% macro staging_plan(relation) -%}
    {%- set time_column = raw_time_column(relation) -%}
    {%- set d = as_of_date_str() -%}
    {%- if not incremental_planning() -%}
        {{- return({'mode': 'full', 'since': d, 'pending': none, 'time_column': time_column}) -}}
    {%- endif -%}
    {%- set settings = incremental_settings() -%}
    {%- set state = incremental_state() if is_incremental() else none -%}
    {%- set since = state.as_of_date if state is not none else d -%}
    {%- set fingerprint -%}
        with f as (
            select
                coalesce(sum(p.rows) filter (where p.export_date <= date '{{ since }}'), 0)::bigint
                    as rows_since,
                max(p.loaded_at) filter (where p.export_date <= date '{{ since }}')
                    as loaded_since,
                string_agg(quote_literal(p.export_date::text), ', ' order by p.export_date)
                    filter (where p.export_date <= date '{{ since }}'
                              and p.latest >= {{ day_end(since) }}) as pending,
                coalesce(sum(p.rows) filter (where p.export_date <= date '{{ d }}'), 0)::bigint
                    as rows_now,
                max(p.loaded_at) filter (where p.export_date <= date '{{ d }}') as loaded_now
            from audit.raw_partition_figures('{{ relation }}'::regclass, '{{ time_column }}') as p
        )
        select
            coalesce(s.raw_rows = f.rows_since
                     and s.raw_loaded_at is not distinct from f.loaded_since, false),
            f.pending,
            f.rows_now,
            f.loaded_now::text
        from f
        left join audit.dbt_incremental_state as s
            on s.model = '{{ incremental_state_key() }}' and s.as_of_date = date '{{ since }}'
    {%- endset -%}
    {%- set row = run_query(fingerprint).rows[0] -%}
    {%- if not is_incremental() -%}
        {%- set mode = 'full' -%}
    {%- elif state is none or since > d or state.settings != settings or not row[0] -%}
        {%- set mode = 'rebuild' -%}
    {%- else -%}
        {%- set mode = 'incremental' -%}
    {%- endif -%}
    {%- do write_incremental_plan({'mode': mode, 'as_of_date': d, 'settings': settings,
                                   'raw_rows': row[2], 'raw_loaded_at': row[3]}) -%}
    {{- return({'mode': mode, 'since': since, 'pending': row[1], 'time_column': time_column}) -}}
{%- endmacro %}

{#- Whether the rows of `relation` written after `since_at` (a plan's since_at) were all
    written by one run: then per-row bookkeeping such as _written_from describes every change
    since; after several runs a later one may have rewritten a row an earlier one changed. -#}
{% macro written_by_one_run(relation, since_at) -%}
    ((select count(distinct w._written_at) from {{ relation }} as w
      where w._written_at > {{ since_at }}) = 1)
{%- endmacro %}

{#- The plan of an intermediate model built from other incremental models (`upstreams`,
    relations). Incremental when this model was built for a night L <= D with the same
    settings and no upstream was rebuilt or moved a record to another group since; then
    `since_at` (this model's built_at) tells which upstream rows changed: _written_at > since_at.
    `inputs`: a fingerprint of inputs that are not incremental models (e.g. the back-test's
    weights); when it changes, the model rebuilds, as when its settings change. `rebuild`:
    the model itself found that it must rebuild (e.g. an evaluation date it holds is gone). -#}
{% macro derived_plan(upstreams, seeds=[], inputs='', rebuild=false) -%}
    {%- set d = as_of_date_str() -%}
    {%- if not incremental_planning() -%}
        {{- return({'mode': 'full', 'since': d, 'since_at': 'now()'}) -}}
    {%- endif -%}
    {%- set settings = incremental_settings(seeds) ~ inputs -%}
    {%- set state = incremental_state() if is_incremental() else none -%}
    {%- if not is_incremental() -%}
        {%- set mode = 'full' -%}
    {%- elif state is none or state.as_of_date > d or state.settings != settings or rebuild -%}
        {%- set mode = 'rebuild' -%}
    {%- else -%}
        {%- set keys = [] -%}
        {%- for upstream in upstreams -%}
            {%- do keys.append("'" ~ incremental_state_key(upstream) ~ "'") -%}
        {%- endfor -%}
        {%- set fresh = run_query(
            "select count(*) from audit.dbt_incremental_state where model in ("
            ~ keys | join(', ') ~ ") and as_of_date is not null"
            " and rebuilt_at <= timestamptz '" ~ state.built_at ~ "'"
            " and regrouped_at <= timestamptz '" ~ state.built_at ~ "'") -%}
        {%- set mode = 'incremental' if fresh.rows[0][0] == upstreams | length else 'rebuild' -%}
    {%- endif -%}
    {%- do write_incremental_plan({'mode': mode, 'as_of_date': d, 'settings': settings}) -%}
    {%- if mode != 'incremental' -%}
        {{- return({'mode': mode, 'since': d, 'since_at': 'now()'}) -}}
    {%- endif -%}
    {{- return({'mode': mode, 'since': state.as_of_date,
                'since_at': "timestamptz '" ~ state.built_at ~ "'"}) -}}
{%- endmacro %}

{#- Post-hook of every model (dbt_project.yml). An incremental staging or intermediate model
    (strategy replace_keys) commits its plan as its state, inside the build's transaction, and
    is analyzed when it was built whole (a night's merge changes too few rows to move the
    statistics; autovacuum follows the drift); an incremental mart is analyzed when its
    statistics are stale (analyze_if_stale); a table is analyzed. Missing indexes of the
    model's `indexes` config are created (tables built before the config named them). -#}
{% macro after_build() -%}
    {%- if config.get('incremental_strategy') == 'replace_keys' and incremental_planning() %}
    do $state$
    declare
        plan jsonb;
    begin
        select pending into plan from audit.dbt_incremental_state
        where model = '{{ incremental_state_key() }}'
          and pending_invocation = '{{ invocation_id }}';
        if plan is null then
            raise exception 'no incremental plan of this dbt run for %', '{{ this }}';
        end if;
        update audit.dbt_incremental_state
        set as_of_date = (pending ->> 'as_of_date')::date,
            built_at = now(),
            rebuilt_at = case when pending ->> 'mode' = 'incremental' then rebuilt_at else now() end,
            regrouped_at = case
                when pending ->> 'mode' = 'incremental'
                     and not coalesce((pending ->> 'regrouped')::boolean, false)
                    then regrouped_at
                else now()
            end,
            settings = pending ->> 'settings',
            raw_rows = (pending ->> 'raw_rows')::bigint,
            raw_loaded_at = (pending ->> 'raw_loaded_at')::timestamptz,
            pending_invocation = null,
            pending = null
        where model = '{{ incremental_state_key() }}';
        if plan ->> 'mode' <> 'incremental' then
            analyze {{ this }};
        end if;
    end
    $state$;
    {{ ensure_indexes() }}
    {%- elif config.get('materialized') == 'incremental' %}
    {%- if (config.get('meta') or {}).get('stamps_written_at') and incremental_planning() %}
    {#- a model of dbt's own strategies that stamps its rows with now() as _written_at
        (int_backtest_scores) records the moment of its build, so that its tests check the
        rows this build wrote, none when it wrote none (macro get_where_subquery) -#}
    insert into audit.dbt_incremental_state as s (model, built_at)
    values ('{{ incremental_state_key() }}', now())
    on conflict (model) do update set built_at = excluded.built_at;
    {%- endif %}
    {{ analyze_if_stale() }};
    {{ ensure_indexes() }}
    {%- else %}
    analyze {{ this }};
    {{ ensure_indexes() }}
    {%- endif %}
{%- endmacro %}

{#- ANALYZE a table whose statistics are missing or older than a tenth of its rows' changes
    (the rule autovacuum applies), this transaction's changes included: a mart grows by a
    night at a time, and analyzing it every night would cost more than writing the night. -#}
{% macro analyze_if_stale() -%}
    do $analyze$
    begin
        if not exists (
            select 1 from pg_stat_user_tables as s
            where s.relid = '{{ this }}'::regclass
              and coalesce(s.last_analyze, s.last_autoanalyze) is not null
              and s.n_mod_since_analyze + pg_stat_get_xact_tuples_inserted(s.relid)
                  + pg_stat_get_xact_tuples_updated(s.relid)
                  + pg_stat_get_xact_tuples_deleted(s.relid)
                  <= 0.1 * greatest(s.n_live_tup, 1)
        ) then
            analyze {{ this }};
        end if;
    end
    $analyze$
{%- endmacro %}

{% macro ensure_indexes() -%}
    {%- set wanted = config.get('indexes') or [] -%}
    {%- if wanted %}
    do $indexes$
    begin
        {%- for index in wanted %}
        if not exists (
            select 1
            from pg_index as i
            where i.indrelid = '{{ this }}'::regclass
              and (
                  select array_agg(a.attname::text order by k.n)
                  from unnest(i.indkey::int2[]) with ordinality as k (attnum, n)
                  join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
              ) = array['{{ index.columns | join("', '") }}']
        ) then
            create index on {{ this }} ({{ index.columns | join(', ') }});
        end if;
        {%- endfor %}
    end
    $indexes$
    {%- endif %}
{%- endmacro %}

