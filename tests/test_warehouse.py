"""The embedded warehouse: started on demand, stopped when its last holder lets go,
kept running when pinned, and one server per CHW_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from customer_health import warehouse as wh

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("CHW_TEST_WAREHOUSE_URL")),
    reason="the embedded server is exercised in the default (embedded) run",
)


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A folder for a test's own embedded server, outside pytest's temporary root: run as
    root, the server runs as the unprivileged `pgserver` user, which is let into the
    folder's parents; a pytest session that starts meanwhile (CI runs several side by
    side) closes pytest's root to every other user again."""
    folder = Path(tempfile.mkdtemp(prefix="chw-test-server-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _select_one(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select 1").fetchone()[0]


def test_two_homes_get_two_servers_that_share_nothing(server_dir: Path) -> None:
    a, b = wh.embedded_paths(server_dir / "a"), wh.embedded_paths(server_dir / "b")
    url_a, url_b = wh.acquire_embedded(a), wh.acquire_embedded(b)
    try:
        assert url_a != url_b
        with psycopg.connect(url_a, autocommit=True) as conn:
            conn.execute("create table only_in_a (x int)")
            # raw's partitions per night: queries over years of them need a larger lock table
            assert conn.execute("show max_locks_per_transaction").fetchone() == ("256",)
        with psycopg.connect(url_b) as conn:
            found = conn.execute("select to_regclass('public.only_in_a')").fetchone()[0]
        assert found is None
        assert a.pgdata.is_dir() and b.pgdata.is_dir()
    finally:
        assert wh.release_embedded(a) is True
        assert wh.release_embedded(b) is True
    assert not wh.embedded_running(a) and not wh.embedded_running(b)


def test_last_holder_stops_the_server_and_data_survives_a_restart(server_dir: Path) -> None:
    paths = wh.embedded_paths(server_dir)
    url = wh.acquire_embedded(paths)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (42)")
    assert wh.release_embedded(paths) is True
    assert not wh.embedded_running(paths)
    url = wh.acquire_embedded(paths)
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("select x from kept").fetchone()[0] == 42
    finally:
        wh.release_embedded(paths)


def test_a_pinned_server_keeps_running_until_stopped(server_dir: Path) -> None:
    paths = wh.embedded_paths(server_dir)
    url = wh.acquire_embedded(paths)
    wh.pin_embedded(True, paths)
    assert wh.release_embedded(paths) is False
    assert wh.embedded_running(paths)
    assert _select_one(url) == 1
    assert wh.stop_embedded(paths) is True
    assert not wh.embedded_running(paths)


def test_a_server_held_by_another_process_is_not_stopped_under_it(server_dir: Path) -> None:
    paths = wh.embedded_paths(server_dir)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from customer_health import warehouse as wh; "
            f"wh.acquire_embedded(wh.embedded_paths(pathlib.Path({str(server_dir)!r}))); "
            "print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        url = wh.acquire_embedded(paths)
        assert wh.release_embedded(paths) is False  # the other process still holds it
        assert _select_one(url) == 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # The holder exited without releasing: the next release notices it is gone.
    wh.acquire_embedded(paths)
    assert wh.release_embedded(paths) is True


def test_redact_hides_passwords() -> None:
    assert wh.redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "secret" not in wh.redact("host=h user=u password=secret dbname=db")
    assert wh.redact("postgresql://u@h/db") == "postgresql://u@h/db"
