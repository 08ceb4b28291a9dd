"""customer_health_nightly: every night at 02:00 UTC, the previous day's exports.

A run's logical date D is the export date it reads and the `as_of_date` of the marts
it builds (the data interval D 02:00 -> D+1 02:00 ends when the run starts).

Flow: prepare the warehouse -> wait for both export folders to be complete -> load
each file (one task per system and entity, so a failure names one file and a retry
redoes one file) -> the raw quality gate -> dbt build of staging, intermediate and
marts, the marts written to the shadow schema `marts_shadow` -> P(alive) of the invoice-only
accounts (BG/NBD, customer_purchase_propensity) beside them -> the marts quality gate
on the shadow -> swap the shadow in as `marts` (write, audit, publish) -> publish the
night's reports with their data-quality page and dbt docs -> tell the data engineers.
Any task's final failure calls `customer_health.orchestration.notify.on_failure`.

dbt runs as one `dbt_build` task whose retries rerun only the failed nodes
(`CHW_DBT_EXECUTION_MODE=build`, the default, chosen by measurement: see
docs/nightly.md), or through Cosmos with a task per model and its tests
(`CHW_DBT_EXECUTION_MODE=local`). The steps live in `customer_health.orchestration.nightly` and
`customer_health.modelling.dbt_cosmos`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from airflow.sdk import (
    Asset,
    CronDataIntervalTimetable,
    Param,
    PokeReturnValue,
    dag,
    task,
    task_group,
)
from cosmos import DbtTaskGroup

from customer_health import settings
from customer_health.contract import SYSTEMS, entities
from customer_health.modelling import dbt_cosmos
from customer_health.orchestration import nightly, notify

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": settings.task_retries(),
    "retry_delay": timedelta(seconds=settings.retry_delay_seconds()),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": notify.on_failure,
}
WAIT_TIMEOUT = timedelta(seconds=settings.export_wait_timeout_seconds())
#: What a good night updates; downstream DAGs (an analyst's own) can be scheduled on them.
MARTS = Asset("customer_health_marts")
REPORTS = Asset("customer_health_reports")


@dag(
    dag_id="customer_health_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime.combine(settings.schedule_start(), time(2, 0), tzinfo=UTC),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["customer-health", "nightly"],
    params={
        "landing": Param(
            nightly.default_landing(),
            type="string",
            description="Landing area: a folder or an fsspec URL",
        )
    },
    doc_md=__doc__,
)
def customer_health_nightly():
    @task(execution_timeout=timedelta(minutes=5))
    def prepare_warehouse() -> None:
        nightly.prepare_warehouse()

    def wait_for_export(system: str):
        @task.sensor(
            task_id=f"wait_for_{system}_export",
            mode="reschedule",
            poke_interval=settings.export_poke_interval_seconds(),
            timeout=WAIT_TIMEOUT.total_seconds() + 3600,  # backstop; the poke names the files
            execution_timeout=None,
            retries=0,
        )
        def wait(params=None, logical_date=None, dag_run=None) -> PokeReturnValue:
            ready = nightly.export_folder_ready(
                params["landing"],
                system,
                nightly.as_of_date(logical_date),
                waiting_since=dag_run.start_date,
                timeout=WAIT_TIMEOUT,
            )
            return PokeReturnValue(is_done=ready)

        return wait()

    def load_system(system: str):
        @task_group(group_id=f"load_{system}")
        def load_group():
            for entity in entities(system):

                @task(task_id=f"load_{entity.name}", execution_timeout=timedelta(hours=2))
                def load(entity_name: str = entity.name, params=None, logical_date=None) -> dict:
                    return nightly.load_entity(
                        params["landing"], system, entity_name, nightly.as_of_date(logical_date)
                    )

                load()

        return load_group()

    if settings.dbt_execution_mode() == "local":
        project, profile, execution, render = dbt_cosmos.cosmos_configs()
        transform = DbtTaskGroup(
            group_id="transform",
            project_config=project,
            profile_config=profile,
            execution_config=execution,
            render_config=render,
            operator_args={
                "vars": {"as_of_date": "{{ ds }}", "marts_schema": "marts_shadow"},
                "interceptors": [dbt_cosmos.point_at_warehouse],
                "execution_timeout": timedelta(hours=1),
            },
        )
    else:

        @task(task_id="dbt_build", execution_timeout=timedelta(hours=2))
        def dbt_build(logical_date=None, ti=None, dag_run=None) -> str:
            return dbt_cosmos.build_marts(
                nightly.as_of_date(logical_date), ti.try_number, dag_run.run_id,
                getattr(dag_run, "clear_number", 0) or 0, getattr(ti, "hostname", None))

        transform = dbt_build()

    @task(execution_timeout=timedelta(minutes=30))
    def validate_raw(params=None, logical_date=None, run_id=None) -> dict:
        return nightly.validate_raw(params["landing"], nightly.as_of_date(logical_date), run_id)

    @task(execution_timeout=timedelta(minutes=30))
    def prepare_shadow(logical_date=None) -> str:
        return nightly.prepare_shadow(nightly.as_of_date(logical_date))

    @task(execution_timeout=timedelta(minutes=30))
    def score_purchase_propensity(logical_date=None) -> str:
        return nightly.score_purchase_propensity(nightly.as_of_date(logical_date))

    @task(execution_timeout=timedelta(minutes=30))
    def validate_marts(logical_date=None, run_id=None) -> dict:
        return nightly.validate_marts(nightly.as_of_date(logical_date), run_id)

    @task(execution_timeout=timedelta(minutes=10), outlets=[MARTS])
    def publish_marts(logical_date=None) -> str:
        return nightly.publish_marts(nightly.as_of_date(logical_date))

    @task(execution_timeout=timedelta(minutes=30), outlets=[REPORTS])
    def publish_reports(raw_gate: dict, marts_gate: dict, logical_date=None) -> dict:
        return nightly.publish(nightly.as_of_date(logical_date), [raw_gate, marts_gate])

    @task(execution_timeout=timedelta(minutes=5))
    def notify_published(published: dict, logical_date=None) -> str:
        return nightly.notify_published(nightly.as_of_date(logical_date), published)

    prepared = prepare_warehouse()
    raw_gate = validate_raw()
    for system in SYSTEMS:
        prepared >> wait_for_export(system) >> load_system(system) >> raw_gate
    marts_gate = validate_marts()
    raw_gate >> prepare_shadow() >> transform >> score_purchase_propensity() >> marts_gate
    reports = publish_reports(raw_gate, marts_gate)
    marts_gate >> publish_marts() >> reports
    notify_published(reports)


customer_health_nightly()
