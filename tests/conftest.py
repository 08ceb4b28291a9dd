"""Fixtures that give every test session a real PostgreSQL.

By default an embedded server (the `pgserver` wheel) is started in a temporary
`CHW_HOME`; with `CHW_TEST_WAREHOUSE_URL` set, that server is used instead. Either
way the session works in its own freshly created database, dropped at the end.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_health import settings, warehouse
from customer_health.orchestration.airflow_env import configure_local_airflow

# Airflow reads its configuration once, at its first import, which may come from a test
# module's import: so the session's CHW_HOME and Airflow home are set here, at conftest
# import, before any test module is collected.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="chw-test-home-"))
os.environ["CHW_HOME"] = str(_SESSION_HOME)
os.environ.pop("CHW_WAREHOUSE_URL", None)
os.environ.setdefault("CHW_TASK_RETRIES", "0")
configure_local_airflow()

#: fixtures of a local SMTP server and the chw_smtp connection (tests/mail_helpers.py)
pytest_plugins = ("mail_helpers",)


#: Files of one long test each that would otherwise start late and end a parallel run
#: alone (pytest-xdist --dist loadfile hands out files in collection order): the chain
#: test ended stop 27's make test lane minutes after the other workers were idle.
RUN_FIRST = ("tests/test_marts_incremental.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put RUN_FIRST's files first (stable: the rest keep their order)."""
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in RUN_FIRST)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    warehouse.stop_embedded(warehouse.embedded_paths(_SESSION_HOME / "test-server"))
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


class _ClusterRolesLock:
    """Roles are cluster-wide: on a shared server (`CHW_TEST_WAREHOUSE_URL`) the test modules
    marked `cluster_roles` (they create, widen and repair `chw_analyst`) take turns, one
    module at a time, across pytest-xdist workers and any other pytest session on this
    machine using the same server. The rest of the suite runs beside them. An embedded
    server belongs to one worker, so it needs no lock."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._module: object | None = None

    @staticmethod
    def _path(url: str) -> Path:
        params = conninfo_to_dict(url)
        where = f"{params.get('host') or 'local'}-{params.get('port') or 5432}"
        return Path(tempfile.gettempdir()) / f"chw-test-cluster-roles-{where}.lock"

    def enter(self, item: pytest.Item, url: str) -> None:
        if self._file is None:
            self._file = open(self._path(url), "a")  # noqa: SIM115 (held across tests)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            self._module = item.module

    def leave(self, nextitem: pytest.Item | None) -> None:
        """Hold the lock while the next test is of the same module (its module fixtures
        are torn down in the last test's teardown)."""
        if self._file is None:
            return
        if nextitem is not None and nextitem.module is self._module:
            return
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = self._module = None


_cluster_roles_lock = _ClusterRolesLock()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    shared_server = os.environ.get("CHW_TEST_WAREHOUSE_URL")
    if shared_server and item.get_closest_marker("cluster_roles"):
        _cluster_roles_lock.enter(item, shared_server)
    yield
    _cluster_roles_lock.leave(nextitem)


def _with_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def chw_home() -> Path:
    """The test session's own CHW_HOME, never the checkout's `.chw/`."""
    return _SESSION_HOME


@pytest.fixture(scope="session")
def server_admin_url(chw_home: Path) -> Iterator[str]:
    """A URI with rights to create databases on the session's server."""
    configured = os.environ.get("CHW_TEST_WAREHOUSE_URL")
    if configured:
        yield configured
        return
    paths = warehouse.embedded_paths(chw_home / "test-server")
    url = warehouse.acquire_embedded(paths)
    try:
        yield _with_database(url, "postgres")
    finally:
        warehouse.stop_embedded(paths)


@pytest.fixture(scope="session")
def fresh_database_factory(server_admin_url: str) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        name = f"chw_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        return _with_database(server_admin_url, name)

    yield make
    with psycopg.connect(server_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def warehouse_url(fresh_database_factory: Callable[[], str]) -> str:
    """A fresh, empty database for the whole test session."""
    return fresh_database_factory()


@pytest.fixture
def fresh_database(fresh_database_factory: Callable[[], str]) -> Callable[[], str]:
    """A factory of fresh, empty databases (each dropped at the end of the session)."""
    return fresh_database_factory


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the committed GX context, so tests store nothing in the checkout, with no
    quality overrides of the environment."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(settings.expectations_dir(), root / "expectations",
                    ignore=shutil.ignore_patterns("uncommitted"))
    # the suites read facts of the dbt project (customer_health.modelling.dbt_facts)
    (root / "dbt_project").symlink_to(settings.dbt_project_dir())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHW_PROJECT_ROOT", str(root))
        mp.delenv("CHW_QUALITY_SEVERITY", raising=False)
        mp.delenv("CHW_QUALITY_VOLUME_TOLERANCE", raising=False)
        yield root
