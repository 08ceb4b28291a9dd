"""The production deployment description (docker-compose.yml, Dockerfile, .env.example).

No Docker engine runs here: these tests read the files and check the facts a deployment
depends on, resolving `${VAR...}` the way Compose does, with the values of `.env.example`
(and a stand-in for each secret it leaves empty).
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from customer_health.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
# Located without importing airflow (whose import initialises its settings).
AIRFLOW_CONFIG_YML = (
    Path(importlib.util.find_spec("airflow").submodule_search_locations[0])
    / "config_templates"
    / "config.yml"
)

#: Airflow's official services and their commands (Airflow 3 docker-compose layout).
OFFICIAL_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
PROJECT_FOLDERS = ("dags", "plugins", "dbt_project", "expectations")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|(^|_)AUTH$")

# `$$` (a literal `$`), `${NAME}`, `${NAME<op><arg>}` with op in :- - :? ? :+ +, or `$NAME`.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation of one string."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        is_set, non_empty = value is not None, bool(value)
        if op in (":-", "-"):
            return value if (non_empty if op == ":-" else is_set) else arg
        if op in (":?", "?"):
            if not (non_empty if op == ":?" else is_set):
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            return arg if (non_empty if op == ":+" else is_set) else ""
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def references(text: str) -> Iterator[tuple[str, str | None, str]]:
    """(name, operator, argument) of every variable a string interpolates."""
    for match in _INTERPOLATION.finditer(text):
        if not match["escaped"]:
            yield match["braced"] or match["bare"], match["op"], match["arg"] or ""


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: {line!r} is not NAME=value"
            values[name.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as written (anchors and merge keys expanded, nothing interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def deploy_env(env_example: dict[str, str]) -> dict[str, str]:
    """`.env` as a deployer fills it in: `.env.example` with every empty secret set."""
    return {
        name: value or f"test-{name.lower().replace('_', '-')}"
        for name, value in env_example.items()
    }


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], deploy_env: dict[str, str]) -> dict[str, Any]:
    return resolve(raw, deploy_env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def common_env(compose: dict[str, Any]) -> dict[str, str]:
    return compose["x-airflow-common"]["environment"]


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        mounts[target] = source
    return mounts


def airflow_services(services: dict[str, Any]) -> list[str]:
    return [name for name in services if name.startswith("airflow-") or name == "flower"]


# --- the official layout ------------------------------------------------------------------


def test_official_airflow_services_run_their_commands(services: dict[str, Any]) -> None:
    commands = {name: services[name].get("command") for name in OFFICIAL_COMMANDS}
    assert commands == OFFICIAL_COMMANDS


def test_airflow_init_migrates_and_creates_the_admin(services: dict[str, Any]) -> None:
    init = services["airflow-init"]
    assert init["entrypoint"] == "/bin/bash"
    assert init["user"] == "0:0"
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "/entrypoint airflow version" in init["command"][1]


def test_every_airflow_service_uses_the_built_image_and_common_environment(
    compose: dict[str, Any], services: dict[str, Any], common_env: dict[str, str]
) -> None:
    common = compose["x-airflow-common"]
    for name in airflow_services(services):
        service = services[name]
        assert service["build"] == ".", name
        assert service["image"] == common["image"], name
        assert {k: service["environment"].get(k) for k in common_env} == common_env, name
        assert service["volumes"] == common["volumes"], name


def test_backing_services_are_redis_and_postgres(services: dict[str, Any]) -> None:
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_executor_is_celery_with_the_redis_service_as_broker(
    services: dict[str, Any], common_env: dict[str, str]
) -> None:
    assert common_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(common_env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    redis_command = services["redis"]["command"]
    required_password = redis_command[redis_command.index("--requirepass") + 1]
    assert broker.password == required_password
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == required_password


@pytest.mark.parametrize(
    ("key", "scheme"),
    [
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql"),
    ],
)
def test_metadata_and_result_backend_are_the_postgres_service(
    services: dict[str, Any], common_env: dict[str, str], key: str, scheme: str
) -> None:
    url = urlsplit(common_env[key])
    postgres = services["postgres"]["environment"]
    assert url.scheme == scheme
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]


def test_execution_api_url_is_the_apiserver_service(
    services: dict[str, Any], common_env: dict[str, str]
) -> None:
    url = urlsplit(common_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (url.scheme, url.hostname, url.path) == ("http", "airflow-apiserver", "/execution/")
    container_ports = {p.rsplit(":", 1)[-1] for p in services["airflow-apiserver"]["ports"]}
    assert str(url.port) in container_ports


def test_airflow_settings_are_options_the_installed_airflow_knows(
    common_env: dict[str, str],
) -> None:
    from airflow.providers.amazon.get_provider_info import get_provider_info as amazon
    from airflow.providers.celery.get_provider_info import get_provider_info as celery

    config = yaml.safe_load(AIRFLOW_CONFIG_YML.read_text())
    known = {(s, o) for s, section in config.items() for o in section["options"]}
    # [celery], [celery_broker_transport_options], [aws]: the providers' own options
    for provider in (celery(), amazon()):
        known |= {(s, o) for s, section in provider.get("config", {}).items()
                  for o in section["options"]}
    used = {
        tuple(key.removeprefix("AIRFLOW__").lower().split("__", 1))
        for key in common_env
        if key.startswith("AIRFLOW__")
    }
    assert used - known == set()


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    one_off = {"airflow-init", "airflow-cli"}
    missing = [n for n, s in services.items() if n not in one_off and not s.get("healthcheck")]
    assert missing == []


def test_scheduler_healthcheck_server_is_enabled(
    services: dict[str, Any], common_env: dict[str, str]
) -> None:
    assert common_env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "http://localhost:8974/health" in services["airflow-scheduler"]["healthcheck"]["test"]


def test_airflow_components_wait_for_backends_and_init(services: dict[str, Any]) -> None:
    for name in OFFICIAL_COMMANDS:
        conditions = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert conditions["postgres"] == "service_healthy", name
        assert conditions["redis"] == "service_healthy", name
        assert conditions["airflow-init"] == "service_completed_successfully", name
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_dependencies_name_defined_services_with_matching_checks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on undefined {dep}"
            if spec["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits on {dep}'s health"


# --- what the DAGs need ---------------------------------------------------------------------


def test_warehouse_service_exists_with_its_own_volume(services: dict[str, Any]) -> None:
    warehouse = services["warehouse"]
    assert warehouse["image"].startswith("postgres:")
    data_volume = volume_mounts(warehouse)["/var/lib/postgresql/data"]
    assert data_volume == "warehouse-db-volume"
    assert volume_mounts(services["postgres"])["/var/lib/postgresql/data"] != data_volume
    # one raw partition per night: queries over years of nights need a larger lock table
    assert warehouse["command"] == ["postgres", "-c", "max_locks_per_transaction=256"]


def test_worker_waits_for_a_healthy_warehouse(services: dict[str, Any]) -> None:
    assert services["airflow-worker"]["depends_on"]["warehouse"]["condition"] == "service_healthy"


def test_every_mount_is_a_repo_folder_or_a_named_volume(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name, service in compose["services"].items():
        for target, source in volume_mounts(service).items():
            if source.startswith((".", "/")):
                assert (ROOT / source).is_dir(), f"{name}: {source} -> {target} is not a folder"
            else:
                assert source in named, f"{name}: volume {source} is not declared"


def test_every_declared_volume_is_mounted(compose: dict[str, Any]) -> None:
    mounted = {s for svc in compose["services"].values() for s in volume_mounts(svc).values()}
    assert set(compose["volumes"]) - mounted == set()


def test_env_vars_needed_by_dags_are_set_for_airflow(common_env: dict[str, str]) -> None:
    needed = {v.name for v in ENV_VARS if v.needed_by_dags}
    assert needed  # the settings module declares them
    assert {name: bool(common_env.get(name)) for name in needed} == dict.fromkeys(needed, True)


def test_compose_defaults_are_the_settings_defaults(raw: dict[str, Any]) -> None:
    """Where the compose file falls back to a default, it is the one settings.py documents."""
    documented = {v.name: v.default for v in ENV_VARS if not re.search(r"[<($]", v.default)}
    defaults = {
        name: arg
        for text in strings(raw)
        for name, op, arg in references(text)
        if name in documented and op in (":-", "-")
    }
    assert defaults == {name: documented[name] for name in defaults}
    assert set(defaults) == {
        name for name in documented if "${" in raw["x-airflow-common"]["environment"].get(name, "")
    }


def test_project_root_is_where_the_project_folders_are_mounted(
    compose: dict[str, Any], common_env: dict[str, str]
) -> None:
    root = common_env["CHW_PROJECT_ROOT"]
    mounts = volume_mounts(compose["x-airflow-common"])
    assert {folder: mounts.get(f"{root}/{folder}") for folder in PROJECT_FOLDERS} == {
        folder: f"./{folder}" for folder in PROJECT_FOLDERS
    }
    assert common_env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{root}/dags"
    assert common_env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{root}/plugins"


def test_plugins_folder_keeps_the_package_modules_out_of_plugin_loading(
    common_env: dict[str, str],
) -> None:
    """Airflow imports every .py file under its plugins folder as a top-level module
    (`settings`, `cli`, `warehouse`...), so plugins/.airflowignore must exclude the package,
    which is imported normally (editable install, plugins folder on sys.path)."""
    from airflow._shared.module_loading import find_path_from_directory

    assert common_env["AIRFLOW__CORE__PLUGINS_FOLDER"].endswith("/plugins")
    package = ROOT / "plugins" / "customer_health"
    loaded = [
        Path(path)
        for path in find_path_from_directory(str(ROOT / "plugins"), ".airflowignore", "glob")
    ]
    assert [p for p in loaded if p.suffix == ".py" and package in p.parents] == []


def test_local_state_lives_on_a_named_volume(
    compose: dict[str, Any], common_env: dict[str, str]
) -> None:
    source = volume_mounts(compose["x-airflow-common"]).get(common_env["CHW_HOME"])
    assert source in compose["volumes"]


def test_landing_reports_and_logs_share_one_bucket_not_a_disk(
    compose: dict[str, Any], common_env: dict[str, str], deploy_env: dict[str, str]
) -> None:
    """What one task writes for another is in the bucket (or the warehouse): a worker on
    another host sees the landing area, the reports and every task's log."""
    bucket = deploy_env["CHW_S3_BUCKET"]
    where = {key: common_env[key] for key in
             ("CHW_LANDING", "CHW_REPORTS_DIR", "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER")}
    assert where == {"CHW_LANDING": f"s3://{bucket}/landing",
                     "CHW_REPORTS_DIR": f"s3://{bucket}/reports",
                     "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{bucket}/logs"}
    assert common_env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "true"
    conn_id = common_env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"]
    assert yaml.safe_load(common_env[f"AIRFLOW_CONN_{conn_id.upper()}"]) == {"conn_type": "aws"}
    assert common_env["AWS_ENDPOINT_URL_S3"].startswith(("http://", "https://"))
    mounted = set(volume_mounts(compose["x-airflow-common"]))
    assert not {"/opt/airflow/landing", "/opt/airflow/reports"} & mounted


def test_the_storage_and_worker_parts_are_locked_in_main_dependencies() -> None:
    """The image installs `uv export --no-dev`: the Celery executor, the broker client,
    s3fs and the Amazon provider (remote logs) must be main dependencies in uv.lock."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions = {p["name"]: p["version"] for p in lock["package"]}
    project = next(p for p in lock["package"] if p["name"] == "customer-health-workflows")
    main = {d["name"] for d in project["dependencies"]}
    parts = {"apache-airflow-providers-celery", "celery", "redis", "flower", "s3fs",
             "apache-airflow-providers-amazon"}
    assert parts - main == set()
    assert versions["celery"].startswith("5.6.")  # 5.7 removed what the provider imports


def _celery_test_settings() -> set[str]:
    """The variables tests/test_celery.py sets for its deployment (its `_env`)."""
    source = (ROOT / "tests" / "test_celery.py").read_text()
    body = source.split("\ndef _env(", 1)[1].split("\ndef ", 1)[0]
    return set(re.findall(r'"((?:AIRFLOW__|AIRFLOW_CONN_|CHW_|AWS_)[A-Z0-9_]+)":', body))


def test_compose_sets_what_the_celery_test_ran(common_env: dict[str, str]) -> None:
    ran = _celery_test_settings()
    assert {"AIRFLOW__CORE__EXECUTOR", "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT",
            "CHW_LANDING", "CHW_REPORTS_DIR"} <= ran
    # the test's own speed-ups (fast retries, a catchup start) are not deployment settings
    test_only = {"CHW_SCHEDULE_START", "CHW_TASK_RETRIES", "CHW_RETRY_DELAY",
                 "AIRFLOW__CORE__PARALLELISM",
                 "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"}
    assert ran - test_only - set(common_env) == set()


def test_a_dead_worker_s_task_is_retried_and_not_redelivered_while_running(
    common_env: dict[str, str],
) -> None:
    heartbeat = int(common_env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
    visibility = int(common_env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"])
    dag = (ROOT / "dags" / "customer_health_nightly.py").read_text()
    longest = max(int(h) * 3600 for h in
                  re.findall(r"execution_timeout=timedelta\(hours=(\d+)\)", dag))
    assert 60 <= heartbeat <= 300  # Airflow's default is 300 s
    assert visibility > longest  # a running task's message is never handed out again


def test_the_warehouse_is_set_once_as_the_airflow_connection(
    services: dict[str, Any], common_env: dict[str, str], raw: dict[str, Any]
) -> None:
    """One definition of the warehouse (the connection chw_warehouse), not a second one in
    CHW_WAREHOUSE_URL that could name another server; it is the bundled service."""
    from airflow.models.connection import Connection

    defined = {(key, value) for _, key, value in _environments(raw)
               if key in ("CHW_WAREHOUSE_URL", "AIRFLOW_CONN_CHW_WAREHOUSE")}
    assert [key for key, _ in defined] == ["AIRFLOW_CONN_CHW_WAREHOUSE"]
    conn = Connection(conn_id="chw_warehouse", uri=common_env["AIRFLOW_CONN_CHW_WAREHOUSE"])
    warehouse = services["warehouse"]["environment"]
    assert conn.conn_type == "postgres"
    assert (conn.host, conn.port, conn.schema, conn.login, conn.password) == (
        "warehouse",
        5432,
        warehouse["POSTGRES_DB"],
        warehouse["POSTGRES_USER"],
        warehouse["POSTGRES_PASSWORD"],
    )


def test_the_warehouse_connection_keeps_extras_added_in_an_override(
    raw: dict[str, Any],
) -> None:
    """docs/deployment.md: TLS is the connection's query string; every parameter reaches
    the driver (customer_health.warehouse_connection)."""
    from airflow.models.connection import Connection

    from customer_health.warehouse_connection import conninfo_from_connection

    value = raw["x-airflow-common"]["environment"]["AIRFLOW_CONN_CHW_WAREHOUSE"]
    uri = interpolate(value, {"CHW_WAREHOUSE_PASSWORD": "pw"})
    uri += "?sslmode=verify-full&sslrootcert=%2Fcerts%2Fca.pem&connect_timeout=7"
    params = conninfo_to_dict(conninfo_from_connection(Connection(conn_id="chw_warehouse",
                                                                  uri=uri)))
    assert params == {"host": "warehouse", "port": "5432", "user": "chw", "password": "pw",
                      "dbname": "chw", "sslmode": "verify-full",
                      "sslrootcert": "/certs/ca.pem", "connect_timeout": "7"}


@pytest.mark.parametrize("key", ["AIRFLOW_CONN_CHW_SMTP", "AIRFLOW_CONN_CHW_ALERTS_WEBHOOK",
                                 "AIRFLOW_CONN_CHW_ALERTS_APPRISE"])
def test_optional_connections_are_empty_by_default(raw: dict[str, Any], key: str) -> None:
    value = raw["x-airflow-common"]["environment"][key]
    assert interpolate(value, {}) == ""
    assert interpolate(value, {key: "smtp://mail:25"}) == "smtp://mail:25"


# --- secrets ------------------------------------------------------------------------------


def _environments(raw: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    yield from (
        ("x-airflow-common", k, v) for k, v in raw["x-airflow-common"]["environment"].items()
    )
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            yield name, key, value


def _is_required_reference(value: str) -> bool:
    """The whole value is one `${VAR}`/`${VAR:?msg}`: no literal, no default to fall back on."""
    refs = list(references(value))
    return (
        len(refs) == 1
        and refs[0][1] in (None, ":?", "?")
        and re.fullmatch(r"\$\{[^}]*\}", value.strip()) is not None
    )


def test_secret_settings_come_from_the_environment(raw: dict[str, Any]) -> None:
    offenders = [
        f"{where}.{key}"
        for where, key, value in _environments(raw)
        if SECRET_KEY.search(key) and not _is_required_reference(str(value))
    ]
    assert offenders == []


def test_passwords_inside_urls_come_from_the_environment(raw: dict[str, Any]) -> None:
    part = r"\$\{[^}]*\}|[^:/@\s]*"
    userinfo = re.compile(rf"://(?:{part}):(?P<password>{part})@")
    found = 0
    for where, key, value in _environments(raw):
        for match in userinfo.finditer(str(value)):
            found += 1
            assert _is_required_reference(match["password"]), f"{where}.{key}"
    assert found >= 5  # metadata, result backend, broker, warehouse URL, warehouse connection


def test_redis_password_comes_from_the_environment(raw: dict[str, Any]) -> None:
    command = raw["services"]["redis"]["command"]
    assert _is_required_reference(command[command.index("--requirepass") + 1])


def test_no_secret_variable_has_a_default(raw: dict[str, Any]) -> None:
    defaulted = {
        name
        for text in strings(raw)
        for name, op, arg in references(text)
        if SECRET_KEY.search(name) and op in (":-", "-") and arg
    }
    assert defaulted == set()


# --- .env.example -------------------------------------------------------------------------


def test_env_example_declares_every_variable_without_a_default(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    required = {
        name
        for text in strings(raw)
        for name, op, _ in references(text)
        if op not in (":-", "-", ":+", "+")
    }
    assert required - set(env_example) == set()


def test_env_example_declares_only_variables_the_compose_file_uses(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    used = {name for text in strings(raw) for name, _, _ in references(text)}
    assert set(env_example) - used == set()


def test_env_example_holds_no_secret(env_example: dict[str, str]) -> None:
    filled = {k: v for k, v in env_example.items() if SECRET_KEY.search(k) and v}
    assert filled == {}


def test_env_example_values_agree_with_compose_defaults(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    disagreements = {
        (name, arg, env_example[name])
        for text in strings(raw)
        for name, op, arg in references(text)
        if op in (":-", "-") and env_example.get(name) and env_example[name] != arg
    }
    assert disagreements == set()


def test_compose_refuses_to_start_without_each_secret(
    raw: dict[str, Any], env_example: dict[str, str], deploy_env: dict[str, str]
) -> None:
    secrets = sorted(k for k in env_example if SECRET_KEY.search(k))
    assert len(secrets) >= 6
    for secret in secrets:
        with pytest.raises(MissingVariable, match=f"^{secret}: set {secret} in .env$"):
            resolve(raw, {**deploy_env, secret: ""})


# --- the image ----------------------------------------------------------------------------


def _dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), flags=re.M))


def test_dockerfile_base_image_is_the_locked_airflow_version() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}["apache-airflow"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    python = re.search(r"3\.\d+", pyproject["project"]["requires-python"]).group()
    args = _dockerfile_args()
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), flags=re.M)
    assert bases and {interpolate(b, args) for b in bases} == {
        f"apache/airflow:{locked}-python{python}"
    }


def test_dockerfile_installs_the_lock_frozen_hash_checked_without_dev_tools() -> None:
    text = DOCKERFILE.read_text()
    export = re.search(r"uv export([^\n]*\\\n)*[^\n]*", text).group()
    assert {"--frozen", "--no-dev", "--no-emit-project"} <= set(export.split())
    assert "--require-hashes -r /tmp/requirements.txt" in text


def test_dockerfile_exports_the_lock_with_the_projects_uv_version() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION\s*:?=\s*(\S+)$", makefile, flags=re.M).group(1)
    assert _dockerfile_args()["UV_VERSION"] == pinned


def test_dockerfile_project_root_matches_compose(common_env: dict[str, str]) -> None:
    root = _dockerfile_args()["PROJECT_ROOT"]
    assert root == common_env["CHW_PROJECT_ROOT"]
    copied = dict(
        (src, interpolate(dst, {"PROJECT_ROOT": root}))
        for src, dst in re.findall(r"^COPY --chown=\S+ (\w+) (\S+)$", DOCKERFILE.read_text(), re.M)
    )
    assert {f: copied.get(f) for f in PROJECT_FOLDERS} == {
        f: f"{root}/{f}" for f in PROJECT_FOLDERS
    }
