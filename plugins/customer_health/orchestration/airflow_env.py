"""Airflow's configuration for a local (embedded) run, set before Airflow is imported.

Production Airflow is configured by its own deployment (docker-compose.yml); this
only fills in what is unset, so a machine with nothing configured gets an Airflow
home under `CHW_HOME/airflow` with SQLite metadata and the project's DAG folder.
"""

from __future__ import annotations

import os

from customer_health import settings


def local_airflow_env() -> dict[str, str]:
    home = settings.airflow_home()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder()),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.project_root() / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
    }


def configure_local_airflow(create_home: bool = True) -> None:
    """Set Airflow's environment for this process where it is not set already.

    Must run before the first `import airflow`: Airflow reads its configuration once.
    `create_home=False` only points the environment there: a command that may never run
    Airflow here (one driving a deployment) leaves no Airflow home behind.
    """
    if create_home:
        settings.airflow_home().mkdir(parents=True, exist_ok=True)
    for key, value in local_airflow_env().items():
        os.environ.setdefault(key, value)
