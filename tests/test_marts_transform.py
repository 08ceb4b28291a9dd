"""How dbt is run: the profile's environment, where files go, and failures that name nodes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from customer_health import settings
from customer_health.modelling import transform


def test_dbt_env_from_a_uri_with_password() -> None:
    env = transform.dbt_env("postgresql://chw:s%40cret@db.example:6543/warehouse?sslmode=require")
    assert env["CHW_DBT_HOST"] == "db.example"
    assert env["CHW_DBT_PORT"] == "6543"
    assert env["CHW_DBT_USER"] == "chw"
    assert env["CHW_DBT_PASSWORD"] == "s@cret"
    assert env["CHW_DBT_DBNAME"] == "warehouse"
    assert env["CHW_DBT_SSLMODE"] == "require"
    assert env["CHW_REPORTING_CURRENCY"] == settings.reporting_currency()


def test_dbt_env_from_a_socket_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHW_REPORTING_CURRENCY", "eur")
    env = transform.dbt_env("postgresql://postgres@/chw?host=/tmp/pg%20sock&port=5433")
    assert (env["CHW_DBT_HOST"], env["CHW_DBT_PORT"]) == ("/tmp/pg sock", "5433")
    assert env["CHW_DBT_PASSWORD"] == ""
    assert env["CHW_REPORTING_CURRENCY"] == "EUR"


def test_profile_holds_no_literal_connection() -> None:
    profile = (settings.dbt_project_dir() / "profiles.yml").read_text()
    for key in ("host", "port", "user", "password", "dbname"):
        line = next(x for x in profile.splitlines() if x.strip().startswith(f"{key}:"))
        assert "env_var(" in line, line


def test_generated_files_stay_out_of_the_checkout(chw_home: Path) -> None:
    target, logs = transform.dbt_paths()
    assert target.is_relative_to(chw_home) and logs.is_relative_to(chw_home)
    command = transform.dbt_command(["build"], date(2026, 11, 1))
    assert command[command.index("--target-path") + 1] == str(target)
    assert '{"as_of_date": "2026-11-01"}' in command


def test_a_failed_node_is_named(fresh_database_factory: Callable[[], str]) -> None:
    url = fresh_database_factory()  # no raw schema: staging cannot be built
    with pytest.raises(transform.DbtRunError) as failure:
        transform.run_dbt(["run", "--select", "stg_crm__accounts"], url, date(2026, 11, 1))
    assert "model.chw.stg_crm__accounts" in str(failure.value)
    assert "2026-11-01" in str(failure.value)
    assert failure.value.failed_nodes == ["model.chw.stg_crm__accounts"]
