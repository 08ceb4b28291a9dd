# Airflow 3 + Customer Health Workflows, pinned by uv.lock.
#
# The base image's Airflow version must equal the apache-airflow pin in uv.lock
# (tests/test_docker_compose.py checks it): the lock then plays the role of Airflow's
# constraints file. Every dependency is installed at its locked version and hash, and
# Airflow itself, pinned by the lock to the image's version, is never re-resolved.
#
# Build: `docker compose build` (or `docker build -t customer-health-workflows .`).

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

# --- 1. uv.lock -> a hash-pinned requirements file (uv only lives in this stage) --------
FROM ${AIRFLOW_IMAGE} AS requirements
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY --chown=airflow:0 pyproject.toml uv.lock README.md /tmp/lock/
# --frozen: export the lock as committed (fail rather than re-lock); --no-dev: runtime only;
# --no-emit-project: the project itself is installed from source below.
RUN cd /tmp/lock && python -m uv export --frozen --no-dev --no-emit-project \
        --format requirements.txt --output-file /tmp/requirements.txt

# --- 2. the runtime image -------------------------------------------------------------
FROM ${AIRFLOW_IMAGE}
ARG PROJECT_ROOT=/opt/airflow/project

COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
# Hash-checked install of the locked set; the check after it fails the build if Airflow moved.
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt \
    && python -c "import os, airflow; assert airflow.__version__ == os.environ['AIRFLOW_VERSION'], \
airflow.__version__"

# The project: package sources (plugins/customer_health), DAGs, dbt project and GX suites.
# docker-compose.yml mounts the same folders over these paths.
RUN mkdir -p ${PROJECT_ROOT}
COPY --chown=airflow:0 pyproject.toml uv.lock README.md ${PROJECT_ROOT}/
COPY --chown=airflow:0 plugins ${PROJECT_ROOT}/plugins
COPY --chown=airflow:0 dags ${PROJECT_ROOT}/dags
COPY --chown=airflow:0 dbt_project ${PROJECT_ROOT}/dbt_project
COPY --chown=airflow:0 expectations ${PROJECT_ROOT}/expectations

# Editable: the installed package (and the `chw` command) is whatever sits in
# ${PROJECT_ROOT}/plugins, so a mounted ./plugins is the code that runs.
# --no-deps: every dependency came from the lock above.
RUN pip install --no-cache-dir --no-deps --editable ${PROJECT_ROOT} \
    && chmod -R g+rwX ${PROJECT_ROOT}

ENV CHW_PROJECT_ROOT=${PROJECT_ROOT} \
    AIRFLOW__CORE__DAGS_FOLDER=${PROJECT_ROOT}/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=${PROJECT_ROOT}/plugins

# Fail the build, not the first night, if the lock broke a component the deployment uses.
RUN python -c "import customer_health.settings, cosmos, dbt.version, great_expectations, \
airflow.providers.postgres.hooks.postgres, \
airflow.providers.celery.executors.celery_executor, \
airflow.providers.amazon.aws.log.s3_task_handler, s3fs, upath, \
airflow.providers.fab.auth_manager.fab_auth_manager" \
    && chw --help > /dev/null
