"""The CLI answers --help on every command, and `chw warehouse url` names the server in use."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from customer_health.cli import main


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


def test_warehouse_url_prints_the_configured_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHW_WAREHOUSE_URL", "postgresql://someone@db.example:5433/wh")
    result = CliRunner().invoke(main, ["warehouse", "url"])
    assert result.exit_code == 0
    assert result.output.strip() == "postgresql://someone@db.example:5433/wh"


def test_bad_dates_are_refused_with_a_clear_message() -> None:
    result = CliRunner().invoke(main, ["run", "--date", "2026-13-01"])
    assert result.exit_code == 2
    assert "'2026-13-01' is not a date of the form YYYY-MM-DD" in result.output
