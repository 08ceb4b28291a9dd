"""The CLI answers --help on every command, `chw warehouse url` names the server in use,
an unreachable warehouse is one line on stderr, and `chw sql` keeps the password off
psql's command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_health import cli
from customer_health.cli import main
from customer_health.orchestration.airflow_runner import TaskOutcome


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from _all_commands(command, path)


def test_every_command_has_help() -> None:
    runner = CliRunner()
    paths = list(_all_commands(main))
    expected = {
        ("generate",),
        ("load",),
        ("run",),
        ("backfill",),
        ("demo",),
        ("sql",),
        ("warehouse",),
        ("warehouse", "url"),
    }
    assert expected <= set(paths)
    for path in [(), *paths]:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_help_lists_every_environment_variable() -> None:
    """`chw --help` ends with the variables of settings.ENV_VARS (what .env.example
    points to), each with its default, in lines a terminal shows whole."""
    from customer_health.settings import ENV_VARS

    output = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    section = output[output.index("Environment variables"):]
    for var in ENV_VARS:
        assert f"  {var.name}" in section, var.name
        if var.default:
            assert f"{var.name} [{var.default}]" in section
    assert max(len(line) for line in section.splitlines()) <= 80


def test_demo_options_have_help() -> None:
    output = CliRunner().invoke(main, ["demo", "--help"], terminal_width=100).output
    for option in ("--accounts", "--seed", "--history-days", "--built-nights", "--nights"):
        line = next(x for x in output.splitlines() if x.strip().startswith(option))
        text = line.split("  ", 2)[-1].strip()  # after the option and its metavar
        assert text and not text.startswith("["), line  # a help text, not only the default


def test_warehouse_url_prints_the_configured_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHW_WAREHOUSE_URL", "postgresql://someone@db.example:5433/wh")
    result = CliRunner().invoke(main, ["warehouse", "url"])
    assert result.exit_code == 0
    assert result.output.strip() == "postgresql://someone@db.example:5433/wh"


def test_bad_dates_are_refused_with_a_clear_message() -> None:
    result = CliRunner().invoke(main, ["run", "--date", "2026-13-01"])
    assert result.exit_code == 2
    assert "'2026-13-01' is not a date of the form YYYY-MM-DD" in result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize("args", [
    ["load", "--date", "2026-11-02"],
    ["sql", "-c", "select 1"],
    ["warehouse", "status"],
    ["warehouse", "grant-analyst"],
    ["run", "--date", "2026-11-02"],
    ["backfill", "--start", "2026-11-02", "--end", "2026-11-03"],
    ["report", "--date", "2026-11-02", "--no-docs"],
])
def test_an_unreachable_warehouse_is_one_line_naming_host_port_and_cause(
        args: list[str], tmp_path: Path) -> None:
    port = _closed_port()
    env = {**os.environ, "CHW_HOME": str(tmp_path),
           "CHW_WAREHOUSE_URL": f"postgresql://chw:s3cret@127.0.0.1:{port}/chw"}
    env.pop("CHW_AIRFLOW_API_URL", None)
    proc = subprocess.run([sys.executable, "-m", "customer_health.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"chw: cannot reach the warehouse at 127.0.0.1:{port}: connection refused"]
    assert "s3cret" not in proc.stdout + proc.stderr


def test_chw_sql_keeps_the_password_off_the_command_line(
        warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "psql.json"
    stub = tmp_path / "psql"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, os, stat, sys\n"
        "passfile = os.environ.get('PGPASSFILE')\n"
        "json.dump({'argv': sys.argv, 'pgpassword': os.environ.get('PGPASSWORD'),\n"
        "           'passfile': open(passfile).read() if passfile else None,\n"
        "           'mode': stat.S_IMODE(os.stat(passfile).st_mode) if passfile else None,\n"
        "           'path': passfile},\n"
        f"          open({str(record)!r}, 'w'))\n")
    stub.chmod(0o755)
    params = conninfo_to_dict(warehouse_url)
    params["password"] = "s3cr:et\\x"  # the server trusts 127.0.0.1: any password connects
    monkeypatch.setenv("CHW_WAREHOUSE_URL", make_conninfo(**params))
    monkeypatch.setenv("PGPASSWORD", "stale")
    monkeypatch.setattr(cli, "_psql_path", lambda: str(stub))
    result = CliRunner().invoke(main, ["sql", "-c", "select 1"])
    assert result.exit_code == 0, result.output
    seen = json.loads(record.read_text())
    assert not any("s3cr" in arg for arg in seen["argv"])
    assert seen["argv"][-2:] == ["-c", "select 1"]
    assert conninfo_to_dict(seen["argv"][1])["dbname"] == params["dbname"]
    assert seen["pgpassword"] is None
    assert seen["passfile"] == "*:*:*:*:s3cr\\:et\\\\x\n"  # libpq's escapes of : and \
    assert seen["mode"] == 0o600
    assert not Path(seen["path"]).exists()  # removed when psql is done


def test_a_failed_task_keeps_the_error_line_of_a_warehouse_outage() -> None:
    error = (
        "Traceback (most recent call last):\n"
        '  File "/x/nightly.py", line 70, in prepare_warehouse\n'
        "    with psycopg.connect(warehouse_url(), autocommit=True) as conn:\n"
        "psycopg.OperationalError: connection failed: connection to server at"
        ' "10.0.0.1", port 5432 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?"
    )
    summary = TaskOutcome("prepare_warehouse", "failed", 1, error).error_summary
    assert summary.splitlines() == [
        'psycopg.OperationalError: connection failed: connection to server at "10.0.0.1",'
        " port 5432 failed: Connection refused",
        "Is the server running on that host and accepting TCP/IP connections?"]


@pytest.mark.parametrize(("task_id", "finishes"), [("publish_marts", True), ("dbt_build", False)])
def test_a_stop_request_lets_a_publishing_task_finish_and_interrupts_any_other(
        task_id: str, finishes: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's side of a stop (SIGUSR1 from `chw`): a publishing task under way ends
    whole, any other is interrupted at once; either way no further task starts."""
    from customer_health.orchestration import airflow_runner as runner

    monkeypatch.setattr(runner, "_STATE", runner._ChildState())
    previous = signal.signal(signal.SIGUSR1, runner._on_stop_request)
    done: list[str] = []

    def task(*, ti) -> str:
        os.kill(os.getpid(), signal.SIGUSR1)  # the stop arrives while the task runs
        for _ in range(100):
            time.sleep(0.001)  # the handler runs between two bytecodes of this loop
        done.append(ti.task_id)
        return "result"

    run_task = runner._stoppable_run_task(task)
    try:
        with pytest.raises(runner.NightStopped):
            run_task(ti=SimpleNamespace(task_id=task_id))
        assert done == ([task_id] if finishes else [])
        with pytest.raises(runner.NightStopped):  # and nothing starts after it
            run_task(ti=SimpleNamespace(task_id="notify_published"))
        assert done == ([task_id] if finishes else [])
    finally:
        signal.signal(signal.SIGUSR1, previous)
