"""How the nightly DAG runs the dbt project through Astronomer Cosmos.

- The DAG is rendered from a dbt manifest (`LoadMode.DBT_MANIFEST`), never by running
  `dbt ls` at every DAG parse: `manifest_path()` runs `dbt parse` once per version of
  the project's files and keeps the manifest under `CHW_HOME/dbt/manifests/<hash>/`.
- The connection comes from `dbt_project/profiles.yml`, which reads `CHW_DBT_*`
  environment variables only. Each dbt task's interceptor (`point_at_warehouse`) puts
  them, for the warehouse the task would use (customer_health.warehouse_connection), into
  the operator's `env` after its fields are rendered, so no secret is rendered into a
  template field or stored in Airflow's database, and `os.environ` is left as it was.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

from customer_health import settings
from customer_health.failures import fails_at_once

#: The files whose content decides the manifest (everything dbt parses).
_PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py"}


def project_fingerprint(project_dir: Path | None = None) -> str:
    project_dir = project_dir or settings.dbt_project_dir()
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        rel = path.relative_to(project_dir)
        if rel.parts[0] in ("target", "logs", "dbt_packages") or not path.is_file():
            continue
        if path.suffix not in _PROJECT_SUFFIXES:
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def manifest_path() -> Path:
    """A manifest.json of the project as it is now, parsed once per version of its files."""
    fingerprint = project_fingerprint()
    folder = settings.chw_home() / "dbt" / "manifests" / fingerprint
    manifest = folder / "manifest.json"
    if manifest.exists():
        return manifest
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{fingerprint}-", dir=folder.parent))
    try:
        _parse_into(scratch)
        try:
            scratch.rename(folder)  # atomic: another parser may have won the race
        except OSError:
            if not manifest.exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest


def _parse_into(target: Path) -> None:
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir())
    outcome = dbtRunner().invoke([
        "parse", "--project-dir", project, "--profiles-dir", project,
        "--target-path", str(target), "--log-path", str(target / "logs"),
        "--no-send-anonymous-usage-stats", "--quiet",
    ])
    if not outcome.success or not (target / "manifest.json").exists():
        raise RuntimeError(f"dbt parse of {project} failed: {outcome.exception or 'see its log'}")


def point_at_warehouse(context, operator) -> None:
    """Cosmos interceptor of every dbt task: the profile's variables for this warehouse
    go into the operator's own `env` (never `os.environ`), and its dbt run is wrapped so
    that what Cosmos writes into `os.environ` (its OpenLineage step copies the whole
    environment there) is undone when the run ends, even when it fails."""
    from customer_health.warehouse_connection import dbt_env
    from customer_health.warehouse_connection import task_conninfo as warehouse_url

    operator.env = {**(operator.env or {}), **dbt_env(warehouse_url())}
    operator.run_command = _restoring_environ(operator.run_command)


def _restoring_environ(run):
    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        before = dict(os.environ)
        try:
            return run(*args, **kwargs)
        finally:
            for key in [k for k in os.environ if k not in before]:
                del os.environ[key]
            os.environ.update(before)

    return wrapper


def cosmos_configs():
    """(ProjectConfig, ProfileConfig, ExecutionConfig, RenderConfig) for the nightly DAG."""
    from cosmos import (
        ExecutionConfig,
        ExecutionMode,
        InvocationMode,
        LoadMode,
        ProfileConfig,
        ProjectConfig,
        RenderConfig,
        TestBehavior,
        TestIndirectSelection,
    )

    project_dir = settings.dbt_project_dir()
    project = ProjectConfig(
        dbt_project_path=project_dir,
        manifest_path=manifest_path(),
        install_dbt_deps=False,
        partial_parse=True,
    )
    profile = ProfileConfig(
        profile_name="chw", target_name="warehouse",
        profiles_yml_filepath=project_dir / "profiles.yml",
    )
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=InvocationMode.DBT_RUNNER,
        # A model's test task runs only the tests whose every parent is built by then;
        # tests that span several models run in tasks of their own after all of them.
        test_indirect_selection=TestIndirectSelection.CAUTIOUS,
    )
    render = RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.AFTER_EACH,
        should_detach_multiple_parents_tests=True,
    )
    return project, profile, execution, render


@fails_at_once
def build_marts(as_of: date, try_number: int, dag_run_id: str | None = None,
                clear_number: int = 0, hostname: str | None = None) -> str:
    """The `build` mode's one task: `dbt build` for the night, its marts written to the
    shadow schema (customer_health.publishing.wap). A retry runs `dbt retry` (only the nodes that
    failed or were skipped) when this run's previous try, as recorded in the warehouse
    (customer_health.modelling.dbt_state), was a failed build of this night; anything else, e.g. a
    cleared task or a new run of the night, builds everything."""
    import socket

    from customer_health.modelling import dbt_state
    from customer_health.modelling.transform import SHADOW_SCHEMA, dbt_paths, run_dbt
    from customer_health.warehouse_connection import task_conninfo as warehouse_url

    url = warehouse_url()
    key = dbt_state.BuildTry(dag_run_id or f"manual__{as_of.isoformat()}", clear_number,
                             try_number)
    target = dbt_paths()[0]
    target.mkdir(parents=True, exist_ok=True)
    (target / dbt_state.RUN_RESULTS).unlink(missing_ok=True)  # never another run's
    previous = dbt_state.previous_failed_build(url, key, as_of) if try_number > 1 else None
    if previous is not None:
        dbt_state.restore(previous, target)
    command = "retry" if previous is not None else "build"
    success = False
    try:
        result = run_dbt([command], url, as_of, extra_vars={"marts_schema": SHADOW_SCHEMA})
        success = True
    finally:
        dbt_state.record(url, key, as_of, command, success, target,
                         hostname or socket.gethostname())
    what = "retry of the failed nodes" if previous is not None else "build"
    return f"dbt {what} for {as_of}: {len(result.statuses)} node(s) succeeded"
