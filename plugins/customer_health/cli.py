"""`chw`: the command line of Customer Health Workflows.

Heavy imports (Airflow, dbt, pandas) happen inside the commands that need them,
so `chw --help` answers at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import click

from customer_health import settings
from customer_health.progress import Progress, say


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date of the form YYYY-MM-DD") from exc


DATE = {"callback": _parse_date, "metavar": "YYYY-MM-DD"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Customer Health Workflows: nightly customer health from CRM and billing exports.

    State lives under CHW_HOME (default .chw/ in the checkout). The warehouse is the
    Airflow connection chw_warehouse, else CHW_WAREHOUSE_URL; with neither, an embedded
    PostgreSQL is started there when a command needs it.
    """
    from customer_health.orchestration.airflow_env import configure_local_airflow

    # before anything imports Airflow (the warehouse's connection is looked up through it):
    # Airflow's home is CHW_HOME/airflow unless AIRFLOW_HOME says otherwise (created by
    # whatever runs Airflow here, not by a command that drives a deployment)
    configure_local_airflow(create_home=False)


def environment_help(width: int = 74) -> str:
    """`chw --help`'s closing section: every variable of settings.ENV_VARS, its default
    and meaning (click's `\\b` keeps the layout as written)."""
    import textwrap

    lines = ["\b", "Environment variables (defaults in brackets):"]
    for var in settings.ENV_VARS:
        default = f" [{var.default}]" if var.default else ""
        lines.append(f"  {var.name}{default}")
        lines += textwrap.wrap(var.meaning, width, initial_indent="      ",
                               subsequent_indent="      ")
    return "\n".join(lines)


main.epilog = environment_help()


# --- sample data ---------------------------------------------------------------------------


def _invoice_only_share_option(default: float):
    return click.option(
        "--invoice-only-share",
        default=default,
        show_default=True,
        type=click.FloatRange(0.0, 1.0),
        help="Share of accounts that buy order by order without a subscription (their "
        "P(alive) comes from the BG/NBD model: mart customer_purchase_propensity).",
    )


@main.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Landing area to write: <out>/<system>/<date>/<entity>.csv",
)
@click.option(
    "--accounts",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="Number of customer accounts to simulate.",
)
@click.option("--start", required=True, **DATE, help="Date of the first (full) export.")
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1),
    help="Number of nightly exports to write, the first one included.",
)
@click.option(
    "--seed",
    default=42,
    show_default=True,
    type=int,
    help="Random seed: the same seed writes the same bytes.",
)
@click.option(
    "--crm-format",
    default=None,
    help="Write the CRM's files as this exporter does: contract, salesforce, hubspot or a "
    "declaration file (default: CHW_CRM_FORMAT, else contract; docs/exporters.md).",
)
@click.option(
    "--billing-format",
    default=None,
    help="Write the billing files as this exporter does: contract, stripe or a "
    "declaration file (default: CHW_BILLING_FORMAT, else contract; docs/exporters.md).",
)
@_invoice_only_share_option(default=0.0)
def generate(out: Path, accounts: int, start: date, days: int, seed: int,
             crm_format: str | None, billing_format: str | None,
             invoice_only_share: float) -> None:
    """Write simulated CRM and billing exports (the contract's files, or an exporter's)."""
    from customer_health.generate import generate_landing

    formats = _generate_formats(crm_format, billing_format)
    bar = Progress(days, "generate")
    summary = generate_landing(
        out,
        accounts=accounts,
        start=start,
        days=days,
        seed=seed,
        progress=lambda done, _total: bar.update(done),
        invoice_only_share=invoice_only_share,
        **formats,
    )
    click.echo(
        f"wrote {summary.total_rows:,} rows in {summary.seconds:.1f}s "
        f"({summary.total_rows / max(summary.seconds, 1e-9):,.0f} rows/s) to {out}"
    )


def _generate_formats(crm: str | None, billing: str | None) -> dict[str, str]:
    """The formats to write: the options given, else the configured ones."""
    from customer_health.loading.formats import DeclarationError, load_format

    chosen = {}
    for system, value in (("crm", crm), ("billing", billing)):
        try:
            name = settings.export_format(system, value)
            if name != "contract":
                load_format(name, system)
        except (ValueError, DeclarationError) as exc:
            raise click.ClickException(str(exc)) from None
        chosen[f"{system}_format"] = name
    return chosen


# --- warehouse -----------------------------------------------------------------------------


@main.group()
def warehouse() -> None:
    """The warehouse in use: its URI, and the embedded server's life cycle."""


@warehouse.command("url")
def warehouse_url() -> None:
    """Print the connection of the warehouse in use (`chw warehouse status` says where it
    came from)."""
    from customer_health import warehouse as wh
    from customer_health.warehouse_connection import configured

    target = configured()
    if target is not None:
        click.echo(target.conninfo)
        return
    paths = wh.embedded_paths()
    try:
        url = wh.embedded_url(paths)
    except wh.WarehouseError:
        raise click.ClickException(
            f"the embedded warehouse in {paths.root} has never been started: "
            "run `chw warehouse start` (or `chw demo`)"
        ) from None
    click.echo(url)
    if not wh.embedded_running(paths):
        say("note: the embedded warehouse is stopped; `chw warehouse start` keeps it running")


def _configured_source() -> str:
    from customer_health.warehouse_connection import configured

    target = configured()
    return f"the warehouse is configured ({target.source if target else '?'})"


@warehouse.command("start")
def warehouse_start() -> None:
    """Start the embedded warehouse and keep it running until `chw warehouse stop`."""
    from customer_health import warehouse as wh

    if not wh.is_embedded():
        raise click.ClickException(f"{_configured_source()}: there is no embedded server to start")
    url = wh.acquire_embedded()
    wh.pin_embedded(True)
    wh.release_embedded()
    click.echo(url)


@warehouse.command("stop")
def warehouse_stop() -> None:
    """Stop the embedded warehouse cleanly."""
    from customer_health import warehouse as wh

    if not wh.is_embedded():
        raise click.ClickException(f"{_configured_source()}: there is no embedded server to stop")
    was_running = wh.stop_embedded()
    click.echo("stopped" if was_running else "was not running")


@warehouse.command("status")
def warehouse_status() -> None:
    """Say which warehouse is in use and whether it answers."""
    from customer_health import warehouse as wh
    from customer_health.warehouse_connection import configured

    target = configured()
    if target is not None:
        version = wh.check_connection(target.conninfo)
        click.echo(f"configured warehouse {wh.redact(target.conninfo)} ({target.source}):"
                   f" PostgreSQL {version}")
        return
    paths = wh.embedded_paths()
    state = "running" if wh.embedded_running(paths) else "stopped"
    click.echo(f"embedded warehouse in {paths.root}: {state}")


@warehouse.command("grant-analyst")
def warehouse_grant_analyst() -> None:
    """Create (or repair) the read-only role chw_analyst: SELECT on marts, nothing else.

    Whatever was granted before is revoked (schemas, tables, sequences, default
    privileges, role memberships); PUBLIC loses TEMP and CREATE in the warehouse. The
    role cannot log in; grant it to an analyst's login role:
    `chw sql -c "grant chw_analyst to alice"`.
    """
    from customer_health.publishing.analyst_role import AnalystRoleError, grant_analyst
    from customer_health.warehouse import warehouse_session

    with warehouse_session() as url:
        try:
            result = grant_analyst(url)
        except AnalystRoleError as exc:
            raise click.ClickException(str(exc)) from None
    for line in result.describe():
        click.echo(line)


def _psql_path() -> str:
    from customer_health.warehouse import _bin

    bundled = _bin("psql")
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("-c", "--command", "query", help="Run this SQL and exit, instead of a session.")
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def sql(query: str | None, psql_args: tuple[str, ...]) -> None:
    """Open psql on the warehouse (or run one query with -c).

    The password never appears on psql's command line (which every local user can
    read): psql gets the connection without it and reads it from a passfile of its
    own (mode 600, removed when psql exits)."""
    import tempfile

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from customer_health.warehouse import warehouse_session

    with warehouse_session() as url, tempfile.TemporaryDirectory(prefix="chw-psql-") as tmp:
        params = conninfo_to_dict(url)
        password = params.pop("password", None)
        env = dict(os.environ)
        if password:
            env.pop("PGPASSWORD", None)  # libpq would prefer it to the passfile
            passfile = Path(tmp) / "pgpass"
            escaped = password.replace("\\", "\\\\").replace(":", "\\:")
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"*:*:*:*:{escaped}\n")
            env["PGPASSFILE"] = str(passfile)
        args = [_psql_path(), make_conninfo(**params), "-v", "ON_ERROR_STOP=1", *psql_args]
        if query is not None:
            args += ["-c", query]
        code = subprocess.call(args, env=env)
    sys.exit(code)


# --- loading -------------------------------------------------------------------------------


@main.command()
@click.option("--date", "day", default=None, **DATE, help="Export date to load (one night).")
@click.option("--start", "first", default=None, **DATE,
              help="First export date of a range to load, night by night (with --end).")
@click.option("--end", "last", default=None, **DATE,
              help="Last export date of the range (inclusive).")
@click.option(
    "--landing", default=None, help="Landing area (folder or fsspec URL); default CHW_LANDING."
)
@click.option(
    "--system",
    type=click.Choice(["crm", "billing"]),
    default=None,
    help="Load one system only (default: both).",
)
def load(day: date | None, first: date | None, last: date | None, landing: str | None,
         system: str | None) -> None:
    """Load one night's export folders (--date), or a range of nights in order
    (--start/--end, e.g. a history when onboarding), into the warehouse's raw layer.

    A range stops at the first night with a rejected file or an incomplete folder; the
    nights before it stay loaded, the nights after it are not loaded. Exit status 1 then."""
    if (day is None) == (first is None and last is None) or (first is None) != (last is None):
        raise click.UsageError("give --date, or --start and --end")
    if day is not None:
        _load_night(day, landing, system)
    else:
        assert first is not None and last is not None
        if last < first:
            raise click.BadParameter("--end is before --start")
        _load_range(first, last, landing, system)


def _load_night(day: date, landing: str | None, system: str | None) -> None:
    from customer_health.loading import LoadError, format_results, load_export
    from customer_health.warehouse import warehouse_session

    with warehouse_session() as url:
        try:
            results = load_export(url, landing or settings.landing(), day, system=system)
        except LoadError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(format_results(results))
    if any(r.status == "rejected" for r in results):
        sys.exit(1)


def _load_range(first: date, last: date, landing: str | None, system: str | None) -> None:
    from customer_health.loading import format_results, load_range
    from customer_health.warehouse import warehouse_session

    bar = Progress((last - first).days + 1, "load")
    with warehouse_session() as url:
        result = load_range(url, landing or settings.landing(), first, last, system=system,
                            night_done=lambda night, _files: bar.step(night.isoformat()))
    if not result.ok:
        stopped = [r for r in result.results if r.export_date == result.stopped_at]
        if stopped:
            click.echo(format_results(stopped))
        say(f"load stopped at {result.stopped_at}: {result.reason}")
        say(f"{len(result.loaded)} night(s) before it loaded; the nights after it were not")
        sys.exit(1)
    click.echo(f"loaded {len(result.loaded)} nights {first}..{last}: "
               f"{result.rows_loaded:,} rows in {result.seconds:.0f}s "
               f"({result.nights_per_minute():.1f} nights per minute)")


# --- the nightly pipeline ------------------------------------------------------------------


def _run_nightly(day: date, landing: str | None) -> bool:
    """Run the nightly DAG for one date, showing progress; True when it succeeded.

    Embedded (`dag.test()` in this process) unless CHW_AIRFLOW_API_URL names a running
    deployment, which then runs the night itself. `landing` None: this machine's
    CHW_LANDING (or CHW_HOME/landing) here, the deployment's own landing area there."""
    from customer_health.orchestration import airflow_api

    if airflow_api.configured():
        return _run_nightly_remote(day, landing)
    landing = landing or settings.landing()
    from customer_health.orchestration.airflow_runner import (
        NIGHTLY_DAG_ID,
        DagImportError,
        NightStopped,
        NotScheduled,
        RunnerError,
        nightly_logical_date,
        run_dag,
    )

    say(f"nightly run for {day} (landing area {landing})")
    started: list[str] = []

    def on_event(event) -> None:
        if event.kind == "started":
            started.append(event.task_id)
            say(f"  [{len(started):>2}] {event.task_id} ...", event.console)

    try:
        outcome = run_dag(NIGHTLY_DAG_ID, nightly_logical_date(day), {"landing": landing},
                          on_event)
    except (DagImportError, NotScheduled, RunnerError) as exc:
        raise click.ClickException(str(exc)) from None
    except NightStopped as exc:
        during = f" during {exc.interrupted} (marked failed)" if exc.interrupted else ""
        say(f"nightly run for {day}: STOPPED by {exc.signal_name}{during}; no task of it is"
            " left running and nothing was half-published")
        if exc.log_path:
            say(f"  full Airflow log: {exc.log_path}")
        raise
    if outcome.succeeded:
        say(f"nightly run for {day}: success ({len(outcome.tasks)} tasks); log {outcome.log_path}")
        return True
    say(f"nightly run for {day}: {outcome.state.upper()}")
    for task in outcome.tasks:
        if task.state == "failed":
            say(f"  failed task: {task.task_id} (try {task.try_number})")
            if task.error_summary:
                for line in task.error_summary.splitlines():
                    say(f"    {line}")
    not_run = [
        t.task_id for t in outcome.tasks if t.state in ("upstream_failed", "skipped", "None")
    ]
    if not_run:
        say(f"  not run because of it: {', '.join(not_run)}")
    say(f"  full Airflow log: {outcome.log_path}")
    return False


def _run_nightly_remote(day: date, landing: str | None) -> bool:
    """The night on the deployment at CHW_AIRFLOW_API_URL: trigger (or clear) and wait.

    Without `landing` the run reads the deployment's own landing area (its CHW_LANDING),
    never a path of this machine."""
    from customer_health.orchestration.airflow_api import AirflowApi, AirflowApiError
    from customer_health.orchestration.airflow_runner import NIGHTLY_DAG_ID, nightly_logical_date

    api = AirflowApi()
    where = landing or "the deployment's own"
    say(f"nightly run for {day} on {api.base_url} (landing area {where})")
    try:
        run_id = api.start_night(NIGHTLY_DAG_ID, nightly_logical_date(day),
                                 {"landing": landing} if landing else {})
        say(f"  dag run {run_id}")
        run = api.wait(NIGHTLY_DAG_ID, run_id, poll_seconds=settings.api_poll_seconds(),
                       on_change=lambda task, state: say(f"  {task}: {state}"))
    except AirflowApiError as exc:
        raise click.ClickException(str(exc)) from None
    if run.succeeded:
        say(f"nightly run for {day}: success ({len(run.tasks)} tasks); {run.ui_url}")
        return True
    if not run.tasks:  # Airflow ends a run without tasks as "success"
        say(f"nightly run for {day}: NO TASK RAN: {day} is before {NIGHTLY_DAG_ID}'s first "
            f"night on the deployment (its CHW_SCHEDULE_START); {run.ui_url}")
        return False
    say(f"nightly run for {day}: {run.state.upper()}")
    for task, state in sorted(run.tasks.items()):
        if state == "failed":
            say(f"  failed task: {task} (its log: {run.ui_url})")
    not_run = sorted(t for t, s in run.tasks.items() if s in ("upstream_failed", "skipped"))
    if not_run:
        say(f"  not run because of it: {', '.join(not_run)}")
    return False


@main.command()
@click.option("--date", "day", required=True, **DATE, help="Logical date of the night to run.")
@click.option(
    "--landing",
    default=None,
    help="Landing area (folder or fsspec URL); default CHW_LANDING or CHW_HOME/landing "
    "(on a deployment: its own).",
)
def run(day: date, landing: str | None) -> None:
    """Run the nightly DAG for one date through Airflow (dag.test), or on the deployment
    named by CHW_AIRFLOW_API_URL."""
    with _warehouse_unless_remote():
        ok = _run_nightly(day, landing)
    sys.exit(0 if ok else 1)


def _warehouse_unless_remote():
    """The embedded warehouse for a local run; nothing when a deployment runs the nights
    (its tasks use its own warehouse)."""
    import contextlib

    from customer_health.orchestration import airflow_api
    from customer_health.warehouse import warehouse_session

    return contextlib.nullcontext() if airflow_api.configured() else warehouse_session()


@main.command()
@click.option("--start", "first", required=True, **DATE, help="First logical date.")
@click.option("--end", "last", required=True, **DATE, help="Last logical date (inclusive).")
@click.option(
    "--landing", default=None, help="Landing area; default CHW_LANDING (on a deployment: its own)."
)
def backfill(first: date, last: date, landing: str | None) -> None:
    """Run the nightly DAG for each date of a range, in order; stop at the first failure.

    Through dag.test() here, or on the deployment named by CHW_AIRFLOW_API_URL."""
    if last < first:
        raise click.BadParameter("--end is before --start")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    from customer_health.orchestration.airflow_runner import NightStopped

    with _warehouse_unless_remote():
        for day in days:
            try:
                ok = _run_nightly(day, landing)
            except NightStopped:
                say(f"backfill stopped at {day}; nights after it were not run")
                raise
            if not ok:
                say(f"backfill stopped at {day}; nights after it were not run")
                sys.exit(1)
    say(f"backfill {first}..{last}: {len(days)} nights succeeded")


@main.group()
def weights() -> None:
    """The health score's weights (dbt_project/seeds/health_score_weights.csv)."""


@weights.command("fit")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the candidate (default: "
                   "$CHW_HOME/weights/health_score_weights.<version>.csv).")
@click.option("--test-share", type=click.FloatRange(0.05, 0.9), default=1 / 3,
              show_default=True, help="Share of the latest evaluation dates held out.")
@click.option("--c", "c", type=click.FloatRange(min=1e-6), default=1.0, show_default=True,
              help="Inverse strength of the L2 regularisation (scikit-learn's C).")
@click.option("--horizon-days", type=click.IntRange(0), default=None,
              help="The back-test horizon to learn from (default: the longest in the mart).")
def weights_fit(out: Path | None, test_share: float, c: float,
                horizon_days: int | None) -> None:
    """Fit candidate weights per segment from the back-test (marts.health_score_backtest_
    accounts): logistic regression on the earlier evaluation dates, current vs candidate AUC
    on the later ones. Writes a candidate file; never changes the weights in use (adopt one
    by committing it over the seed, docs/operations.md)."""
    import psycopg

    from customer_health.modelling import dbt_facts
    from customer_health.modelling.weights_fit import (
        describe,
        fit_weights,
        load_rows,
        read_weights,
        weights_version,
        write_weights,
    )
    from customer_health.warehouse import warehouse_session

    seed = settings.dbt_project_dir() / "seeds" / "health_score_weights.csv"
    current = read_weights(seed)
    with warehouse_session() as url:
        try:
            rows = load_rows(url, horizon_days=horizon_days)
            result = fit_weights(rows, current, dbt_facts.segments(), test_share, c)
        except (ValueError, psycopg.Error) as exc:
            raise click.ClickException(str(exc)) from None
    for line in describe(result):
        click.echo(line)
    target = out or settings.chw_home() / "weights" / f"health_score_weights.{result.version}.csv"
    write_weights(result.weights, target)
    click.echo(f"current weights {weights_version(current)} ({seed}) unchanged")
    click.echo(f"candidate weights {result.version} written to {target}")


@main.command()
@click.option("--date", "day", required=True, **DATE, help="The night (as_of_date) to render.")
@click.option("--no-docs", is_flag=True, help="Skip the dbt docs (faster).")
def report(day: date, no_docs: bool) -> None:
    """Re-render and publish a night's team reports from the published marts.

    The night's data-quality status comes from audit.quality_results; a night whose
    last check failed is refused, as the DAG would. E-mail goes out only from the DAG.
    """
    from customer_health.orchestration.nightly import DOCS_LINKS, publish_reports_with_docs
    from customer_health.quality.status import stored_status
    from customer_health.reporting import ReportError, publish_reports
    from customer_health.warehouse import warehouse_session

    with warehouse_session() as url:
        status = stored_status(url, day).to_dict()
        try:
            if no_docs:
                result = publish_reports(url, day, quality=status)
            else:
                result = publish_reports_with_docs(url, day, {**status, **DOCS_LINKS})
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"published {len(result.teams)} team report(s) of {day} to {result.night_dir}"
               f" (data quality: {status['status']})")


@main.command()
@click.option(
    "--accounts",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="Number of customer accounts to simulate (fewer: emptier lists, e.g. win-back).",
)
@click.option(
    "--history-days",
    default=60,
    show_default=True,
    type=click.IntRange(2),
    help="Days of exports to generate and load, night by night (the first, full export "
    "also holds two years of history before them).",
)
@click.option(
    "--built-nights",
    default=12,
    show_default=True,
    type=click.IntRange(0),
    help="Earlier nights whose marts are built (dbt models only: no tests, no quality "
    "gates, no reports) before the DAG's nights, so the reports show trends, 7-day "
    "changes and movers; 7 or more fill the movers.",
)
@click.option(
    "--nights",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="How many of the last nights to run through the nightly DAG (every task: "
    "load, checks, dbt build with tests, publish, reports).",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=int,
    help="Random seed of the simulated exports: the same seed, the same accounts and story.",
)
@_invoice_only_share_option(default=0.2)
def demo(accounts: int, history_days: int, built_nights: int, nights: int, seed: int,
         invoice_only_share: float) -> None:
    """Generate a landing area under CHW_HOME, build the marts of its earlier nights and
    run its last few nights through the nightly DAG: reports as a team sees them after
    weeks of use."""
    from customer_health.generate import generate_landing
    from customer_health.orchestration.demo_history import HistoryError, build_history
    from customer_health.warehouse import embedded_paths, is_embedded, redact, warehouse_session

    home = settings.chw_home()
    landing = home / "demo" / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=history_days - 1)
    bar = Progress(history_days, "generating demo exports")
    generate_landing(
        landing,
        accounts=accounts,
        start=start,
        days=history_days,
        seed=seed,
        progress=lambda done, _total: bar.update(done),
        invoice_only_share=invoice_only_share,
        **_generate_formats(None, None),  # the formats the nights will read
    )
    first_night = max(start, end - timedelta(days=nights - 1))
    built_from = max(start, first_night - timedelta(days=built_nights))
    history_note = "no earlier night"
    with warehouse_session() as url:
        before = first_night - timedelta(days=1)
        if before >= start:
            bar = Progress((before - start).days + 1, "loading earlier exports, building "
                           f"the marts of {built_from}..{before}")
            try:
                history = build_history(url, str(landing), start, built_from, before,
                                        progress=lambda done, _total: bar.update(done))
            except HistoryError as exc:
                raise click.ClickException(str(exc)) from None
            history_note = history.describe()
            say(history_note)
        day = first_night
        while day <= end:
            if not _run_nightly(day, str(landing)):
                sys.exit(1)
            day += timedelta(days=1)
        where = redact(url)
    click.echo("")
    click.echo(f"demo done: {accounts} accounts, {history_days} days of exports, nights "
               f"{first_night}..{end} through the DAG")
    click.echo(f"  before them  : {history_note}")
    click.echo(f"  landing area : {landing}")
    latest = settings.reports_dir() / "latest"
    click.echo(f"  reports      : {latest / 'index.html'} (every team's page)")
    click.echo(f"  data quality : {latest / 'quality.html'} (every check of the night)")
    click.echo(f"  marts docs   : {latest / 'dbt-docs' / 'index.html'} (what each column means)")
    if is_embedded():
        click.echo(f"  warehouse    : embedded PostgreSQL in {embedded_paths().root} (stopped now)")
        click.echo("                 `chw sql` opens psql on it; `chw warehouse start` keeps it up")
    else:
        click.echo(f"  warehouse    : {where}")
    click.echo(f"  Airflow home : {settings.airflow_home()}")


def _configured_conninfo() -> str | None:
    from customer_health.warehouse_connection import configured

    try:
        target = configured()
    except Exception:  # noqa: BLE001 - naming the host is a courtesy; the error is reported
        return None
    return target.conninfo if target else None


def _fail(message: str, code: int = 1) -> None:
    """One line on stderr, never a traceback, and a non-zero exit."""
    click.echo(f"chw: {message}", err=True)
    sys.exit(code)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # context managers (the embedded warehouse) still close


def entrypoint() -> None:
    """The `chw` command: click's own error handling, plus one-line errors for an
    unreachable warehouse, and exit 128+N for a run stopped by signal N."""
    import signal

    from customer_health.orchestration.airflow_runner import NightStopped
    from customer_health.warehouse import WarehouseError, connection_failure

    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = main(prog_name="chw", standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        _fail("interrupted", 130)
    except NightStopped as exc:
        sys.exit(exc.exit_code)
    except WarehouseError as exc:
        _fail(str(exc).splitlines()[0])
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            _fail(connection_failure(_configured_conninfo(), exc))
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    entrypoint()
