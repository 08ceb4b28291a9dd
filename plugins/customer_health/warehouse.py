"""Which PostgreSQL the project talks to, and the embedded one's life cycle.

With a warehouse configured (the Airflow connection `chw_warehouse`, else
`CHW_WAREHOUSE_URL`: customer_health.warehouse_connection), that server is used and
nothing is started. Without one, an embedded PostgreSQL from the `pgserver` wheel runs
with its data under `CHW_HOME/warehouse/`, listening on 127.0.0.1 on a free port (so dbt, Airflow
connections and GX take an ordinary URI) and on a socket in its data folder.

A command that needs the warehouse holds it with `warehouse_session()`: the first
holder starts the server, and when the last holder lets go the server is stopped
cleanly, unless `chw warehouse start` pinned it to keep running for an analyst.
Two different `CHW_HOME`s have two different servers and share nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from customer_health import settings, warehouse_connection

DATABASE = "chw"
SUPERUSER = "postgres"


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or started; the message says why."""


@dataclass(frozen=True)
class EmbeddedPaths:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def lock(self) -> Path:
        return self.root / "lock"


LOCKS_SETTING = "max_locks_per_transaction=256"


def embedded_paths(home: Path | None = None) -> EmbeddedPaths:
    return EmbeddedPaths((home or settings.chw_home()) / "warehouse")


def _pgserver_bin_path() -> Path:
    with warnings.catch_warnings():  # pgserver warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _bin(name: str) -> Path:
    return _pgserver_bin_path() / name


def _postgres_user() -> pwd.struct_passwd:
    """The `pgserver` system user, made by pgserver's `ensure_user_exists` under a
    machine-wide lock: unlocked, several processes starting embedded servers at once
    (pytest-xdist workers) each ran `useradd`, and one went on with a uid that the next
    `useradd` had already replaced ("initdb: could not look up effective user ID")."""
    from pgserver.utils import ensure_user_exists

    lock_path = Path(tempfile.gettempdir()) / "chw-pgserver-user.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        return ensure_user_exists("pgserver")


def _run_as_postgres_user(args: list[str], paths: EmbeddedPaths, timeout: float = 60) -> str:
    """Run a PostgreSQL program; as root, under the unprivileged `pgserver` user.

    PostgreSQL refuses to run as root, so (like pgserver itself) we create and use a
    system user for it and open the folders it needs to it.
    """
    user = None
    if os.geteuid() == 0:
        POSTGRES_BIN_PATH = _pgserver_bin_path()
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

        entry = _postgres_user()
        user = "pgserver"
        ensure_prefix_permissions(paths.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        for path in (paths.root, paths.pgdata):
            if path.exists():
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if paths.log.exists():
            os.chown(paths.log, entry.pw_uid, entry.pw_gid)
    proc = subprocess.run(
        args,
        user=user,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        log_tail = paths.log.read_text()[-2000:] if paths.log.exists() else ""
        first = (proc.stderr.strip().splitlines() or [""])[0]
        raise WarehouseError(  # the first line is a whole message: the CLI prints only it
            f"{Path(args[0]).name} failed ({proc.returncode}): {first} (see {paths.log})\n"
            f"{proc.stderr.strip()}\n{log_tail}"
        )
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_state(paths: EmbeddedPaths) -> dict:
    try:
        return json.loads(paths.state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_state(paths: EmbeddedPaths, state: dict) -> None:
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    tmp.replace(paths.state)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster_pid(paths: EmbeddedPaths) -> int | None:
    try:
        pid = int((paths.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def embedded_url(paths: EmbeddedPaths, database: str = DATABASE) -> str:
    port = _read_state(paths).get("port")
    if port is None:
        raise WarehouseError(f"the embedded warehouse in {paths.root} has never been started")
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def embedded_running(paths: EmbeddedPaths | None = None) -> bool:
    return _postmaster_pid(paths or embedded_paths()) is not None


@contextlib.contextmanager
def _locked(paths: EmbeddedPaths) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _start(paths: EmbeddedPaths) -> None:
    """Initialise (first time) and start the embedded server. Caller holds the lock."""
    if not (paths.pgdata / "PG_VERSION").exists():
        paths.pgdata.mkdir(parents=True, exist_ok=True)
        _run_as_postgres_user(
            [
                str(_bin("initdb")),
                "-D",
                str(paths.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            paths,
        )
    state = _read_state(paths)
    port = state.get("port") or _free_port()
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        port = _free_port()  # the remembered port is taken by someone else now
    paths.log.touch()
    socket_dir = str(paths.pgdata)
    if len(socket_dir) > 90:  # a socket path has a ~107 byte limit: TCP only then
        socket_dir = "''"
    # raw.* has one partition per night: a query over years of them takes a lock each
    options = f"-h 127.0.0.1 -p {port} -k {socket_dir} -c {LOCKS_SETTING}"
    _run_as_postgres_user(
        [
            str(_bin("pg_ctl")),
            "-D",
            str(paths.pgdata),
            "-l",
            str(paths.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        paths,
        timeout=90,
    )
    state["port"] = port
    _write_state(paths, state)
    _ensure_database(f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres", DATABASE)


def _stop(paths: EmbeddedPaths) -> None:
    if _postmaster_pid(paths) is None:
        return
    _run_as_postgres_user(
        [str(_bin("pg_ctl")), "-D", str(paths.pgdata), "-w", "-t", "60", "-m", "fast", "stop"],
        paths,
        timeout=90,
    )


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def _holders(state: dict) -> list[int]:
    return [pid for pid in state.get("holders", []) if _pid_alive(pid)]


def acquire_embedded(paths: EmbeddedPaths | None = None) -> str:
    """Start the embedded server if needed and register this process as a holder."""
    paths = paths or embedded_paths()
    with _locked(paths):
        if _postmaster_pid(paths) is None:
            _start(paths)
        state = _read_state(paths)
        holders = _holders(state)
        if os.getpid() not in holders:
            holders.append(os.getpid())
        state["holders"] = holders
        _write_state(paths, state)
    return embedded_url(paths)


def release_embedded(paths: EmbeddedPaths | None = None) -> bool:
    """Unregister this process; stop the server if it was the last holder and not pinned.

    Returns True when the server was stopped.
    """
    paths = paths or embedded_paths()
    with _locked(paths):
        state = _read_state(paths)
        holders = [pid for pid in _holders(state) if pid != os.getpid()]
        state["holders"] = holders
        _write_state(paths, state)
        if holders or state.get("pinned"):
            return False
        _stop(paths)
        return True


def pin_embedded(pinned: bool, paths: EmbeddedPaths | None = None) -> None:
    """Keep the server running between commands (`chw warehouse start`), or not."""
    paths = paths or embedded_paths()
    with _locked(paths):
        state = _read_state(paths)
        state["pinned"] = pinned
        _write_state(paths, state)


def stop_embedded(paths: EmbeddedPaths | None = None) -> bool:
    """Stop the embedded server now, whoever holds it. Returns True if it was running."""
    paths = paths or embedded_paths()
    with _locked(paths):
        state = _read_state(paths)
        state["pinned"] = False
        state["holders"] = []
        _write_state(paths, state)
        was_running = _postmaster_pid(paths) is not None
        _stop(paths)
        return was_running


def is_embedded() -> bool:
    return warehouse_connection.configured() is None


@contextlib.contextmanager
def warehouse_session() -> Iterator[str]:
    """Yield the warehouse's conninfo (customer_health.warehouse_connection) for the
    duration of a command, starting the embedded server when none is configured.

    Unless it came from the Airflow connection itself, the warehouse is also defined as
    the connection (`AIRFLOW_CONN_CHW_WAREHOUSE`) for the duration, so the Airflow tasks
    and dbt this command starts use the warehouse it checked, whatever else Airflow holds.
    """
    target = warehouse_connection.configured()
    if target is not None:
        check_connection(target.conninfo)  # one clear line now, not a traceback in a task later
        with _handed_down(target):
            yield target.conninfo
        return
    url = acquire_embedded()
    try:
        with _handed_down(warehouse_connection.Target(url, "the embedded warehouse")):
            yield url
    finally:
        release_embedded()


@contextlib.contextmanager
def _handed_down(target: warehouse_connection.Target) -> Iterator[None]:
    name = warehouse_connection.CONN_ENV
    previous = os.environ.get(name)
    hand_down = not target.is_connection and not previous
    if hand_down:
        os.environ[name] = warehouse_connection.as_connection_json(target.conninfo)
    try:
        yield
    finally:
        if hand_down:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def check_connection(url: str) -> str:
    """Connect once and return the server's version; a clear error when unreachable."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            return conn.execute("show server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise WarehouseError(connection_failure(url, exc)) from exc


_FAILED_AT = re.compile(r'connection to server (?:at "[^"]*"(?: \([^)]*\))?, port \d+|on socket'
                        r' "[^"]*") failed: (.*)$')


def connection_failure(url: str | None, exc: BaseException) -> str:
    """One line naming where the warehouse was looked for and why it did not answer, e.g.
    `cannot reach the warehouse at 10.0.0.1:5432: connection refused`."""
    from psycopg.conninfo import conninfo_to_dict

    params: dict = {}
    with contextlib.suppress(psycopg.ProgrammingError, TypeError):
        params = conninfo_to_dict(url or "")
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    cause = lines[0] if lines else type(exc).__name__
    cause = cause.removeprefix("connection failed: ")
    if m := _FAILED_AT.search(cause):
        cause = m.group(1)
    cause = re.sub(r"^(FATAL|ERROR):\s+", "", cause)
    if cause[:1].isupper() and cause[1:2].islower():
        cause = cause[0].lower() + cause[1:]  # "Connection refused" -> "connection refused"
    return f"cannot reach the warehouse at {host}:{port}: {cause}"


def redact(url: str) -> str:
    """The URI with any password replaced, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable warehouse URI>"
    if params.get("password"):
        params["password"] = "***"
        if url.startswith(("postgresql://", "postgres://")):
            host = params.get("host", "")
            port = f":{params['port']}" if params.get("port") else ""
            user = params.get("user", "")
            return f"postgresql://{user}:***@{host}{port}/{params.get('dbname', '')}"
        return make_conninfo(**params)
    return url
