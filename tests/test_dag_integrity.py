"""Every DAG of the project imports cleanly and follows the house rules."""

from __future__ import annotations

import pytest

from customer_health import settings


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(settings.dags_folder()))


def test_every_dag_file_imports_without_error(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert "customer_health_nightly" in dagbag.dag_ids


def test_every_dag_has_owner_retries_tags_and_no_cycle(dagbag) -> None:
    assert dagbag.dags, "no DAG found"
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        dag.check_cycle()
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries is not None, f"{dag_id}.{task.task_id} has no retries"
            is_sensor = task.task_type.endswith("SensorOperator")
            assert is_sensor or task.execution_timeout is not None, (
                f"{dag_id}.{task.task_id} has no execution timeout"
            )


def test_nightly_dag_shape(dagbag) -> None:
    dag = dagbag.dags["customer_health_nightly"]
    assert dag.max_active_runs == 1
    assert dag.catchup is True
    ids = set(dag.task_dict)
    assert {"prepare_warehouse", "wait_for_crm_export", "wait_for_billing_export"} <= ids
    # one load task per system and entity, downstream of that system's sensor
    from customer_health.contract import ENTITIES

    for entity in ENTITIES:
        task_id = f"load_{entity.system}.load_{entity.name}"
        assert task_id in ids
        assert f"wait_for_{entity.system}_export" in dag.task_dict[task_id].upstream_task_ids
