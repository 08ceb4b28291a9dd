"""customer_health_nightly: every night at 02:00 UTC, the previous day's exports.

A run's logical date D is the export date it reads and the `as_of_date` of the marts
it builds (the data interval D 02:00 -> D+1 02:00 ends when the run starts).

Flow: prepare the warehouse -> wait for both export folders to be complete -> load
each file (one task per system and entity, so a failure names one file and a retry
redoes one file). The steps themselves live in `customer_health.nightly`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task, task_group

from customer_health import nightly, settings
from customer_health.contract import SYSTEMS, entities

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": settings.task_retries(),
    "retry_delay": timedelta(seconds=settings.retry_delay_seconds()),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=1),
}
WAIT_TIMEOUT = timedelta(seconds=settings.export_wait_timeout_seconds())


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

    prepared = prepare_warehouse()
    for system in SYSTEMS:
        prepared >> wait_for_export(system) >> load_system(system)


customer_health_nightly()
