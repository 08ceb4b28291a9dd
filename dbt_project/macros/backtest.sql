{#- The back-test's horizons in days: var backtest_horizon_days, one number (90) or several (a
    list, or a comma-separated string from the command line: "30,90,180"). An account live on
    an evaluation date churned within a horizon when its MRR fell to 0 within that many days;
    every horizon gets its own rows in the back-test marts. -#}
{% macro backtest_horizons() -%}
    {%- set raw = var('backtest_horizon_days') -%}
    {%- if raw is string -%}
        {%- set raw = raw.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- elif raw is number -%}
        {%- set raw = [raw] -%}
    {%- endif -%}
    {%- set horizons = [] -%}
    {%- for h in raw -%}
        {%- if not modules.re.match('^[0-9]+$', h | string) or (h | int) < 0 -%}
            {{ exceptions.raise_compiler_error("var backtest_horizon_days: whole days >= 0, got " ~ h) }}
        {%- endif -%}
        {%- do horizons.append(h | int) if (h | int) not in horizons -%}
    {%- endfor -%}
    {%- if not horizons -%}
        {{ exceptions.raise_compiler_error("var backtest_horizon_days: at least one horizon") }}
    {%- endif -%}
    {{- return(horizons | sort) -}}
{%- endmacro %}

{#- The columns of int_backtest_scores that are the score (not its bookkeeping, _written_at),
    each prefixed with `alias.` when given: what int_backtest_accounts reads of it, and the
    shape of the scores model's empty night. -#}
{% macro backtest_score_columns(alias=none) -%}
    {%- set columns = ['evaluation_date', 'account_id', 'segment', 'account_team', 'mrr',
                       'engagement_score', 'support_score', 'sentiment_score',
                       'billing_score', 'health_score', 'health_band', 'weights_version'] -%}
    {%- set prefix = alias ~ '.' if alias is not none else '' -%}
    {{- prefix ~ columns | join(', ' ~ prefix) -}}
{%- endmacro %}

{#- The evaluation dates int_backtest_scores computes tonight, as a list of 'YYYY-MM-DD' (one
    query, at most a few dozen dates; sorted): on an incremental run those of
    int_backtest_dates it holds no rows of with the weights in force (a new date whose horizon
    passed, or all after a change of weights), probed per date by the index on
    evaluation_date; none on a full build (every date) or at parse time. Used by the model
    (its `dates`, written out as literals, and the bounds of its probes) and by its session
    settings (a pre-hook). -#}
{% macro backtest_score_todo() -%}
    {%- if is_incremental() and execute -%}
        {%- set found = run_query(
            "select b.evaluation_date::text from (select distinct evaluation_date from "
            ~ ref('int_backtest_dates') ~ ") as b where not exists (select 1 from " ~ this
            ~ " as t where t.evaluation_date = b.evaluation_date and t.weights_version = ("
            ~ "select max(weights_version) from " ~ ref('int_health_weights') ~ "))"
            ~ " order by 1") -%}
        {{- return(found.columns[0].values() | list) -}}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{#- A night that scores a few dates (a new evaluation date, one a month) probes per account
    (int_backtest_scores); a build of many (the first, a change of weights) reads each source
    once for all dates. -#}
{% macro backtest_scores_probe(todo) -%}
    {{- return(todo is not none and todo | length <= 3) -}}
{%- endmacro %}

{#- int_backtest_scores' planner settings (its pre-hook). No nested loops: every join of a
    many-dates build is dates x keys over whole sets, and PostgreSQL's row estimates of the
    filtered window results collapse to 1, so it picked nested loops that rescanned whole
    subqueries per row (PostgreSQL 16: 135 s where hash joins take under 1 s for 150 accounts
    x 3 dates; docs/marts.md, Speed). On a probing night no merge joins either: the same
    estimates made it sort a million subscription versions three times to merge-join them
    (at 100,000 accounts x 365 days a new date took 14.8 s so, 10.5 s with hash joins). -#}
{% macro backtest_scores_settings() -%}
    set local enable_nestloop = off
    {%- if backtest_scores_probe(backtest_score_todo()) %}; set local enable_mergejoin = off{% endif %}
{%- endmacro %}

{#- On a probing night of int_backtest_scores: the bounds on `column` (a timestamptz) that
    `in_window(utc_date(column), date, window_var)` and `column < end_of_day(date)` imply for
    every date from `first` to `last` ('YYYY-MM-DD'), so an index on the column reads the
    window's rows only, the same rows however long the history. -#}
{% macro probe_window(column, window_var, first, last) -%}
    {{ column }} >= {{ utc_start("date '" ~ first ~ "' - " ~ (var(window_var) - 1)) }}
      and {{ column }} < {{ end_of_day("date '" ~ last ~ "'") }}
{%- endmacro %}
