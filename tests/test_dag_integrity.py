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

    # the gates and dbt sit between loading and publishing, in this order
    def upstream(task_id: str) -> set[str]:
        return dag.task_dict[task_id].upstream_task_ids

    assert {f"load_{e.system}.load_{e.name}" for e in ENTITIES} <= upstream("validate_raw")
    assert upstream("prepare_shadow") == {"validate_raw"}
    assert upstream("dbt_build") == {"prepare_shadow"}
    assert upstream("score_purchase_propensity") == {"dbt_build"}
    assert upstream("validate_marts") == {"score_purchase_propensity"}
    assert upstream("publish_marts") == {"validate_marts"}
    assert upstream("publish_reports") == {"validate_raw", "validate_marts", "publish_marts"}
    assert upstream("notify_published") == {"publish_reports"}
    outlets = {t: {a.name for a in dag.task_dict[t].outlets}
               for t in ("publish_marts", "publish_reports")}
    assert outlets == {"publish_marts": {"customer_health_marts"},
                       "publish_reports": {"customer_health_reports"}}
    from customer_health.orchestration.notify import on_failure

    assert all(t.on_failure_callback == [on_failure] or t.on_failure_callback == on_failure
               for t in dag.tasks)

def test_local_mode_renders_a_task_per_model_through_cosmos(monkeypatch) -> None:
    """CHW_DBT_EXECUTION_MODE=local: Cosmos renders a run task per model and its tests,
    from a manifest parsed once (no `dbt ls` at parse time)."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CHW_DBT_EXECUTION_MODE", "local")
    bag = DagBag(dag_folder=str(settings.dags_folder()))
    assert bag.import_errors == {}
    dag = bag.dags["customer_health_nightly"]
    ids = set(dag.task_dict)
    assert "dbt_build" not in ids
    for model in ("stg_crm__accounts", "int_mrr_monthly", "customer_health", "nps_monthly"):
        assert f"transform.{model}.run" in ids, sorted(ids)
    health = dag.task_dict["transform.customer_health.run"]
    assert "validate_raw" in {t.task_id for t in health.get_flat_relatives(upstream=True)}
    assert dag.task_dict["validate_marts"].upstream_task_ids == {"score_purchase_propensity"}
    scoring_upstream = dag.task_dict["score_purchase_propensity"].upstream_task_ids
    assert any(t.startswith("transform.") for t in scoring_upstream)
    assert health.vars["marts_schema"] == "marts_shadow"


def test_a_model_selector_selects_that_model_only(monkeypatch) -> None:
    """Cosmos selects a model's tests with `--select <model name>`, and dbt reads a bare
    name as a package name first: when the dbt project was called `customer_health`,
    the `customer_health` model's test task ran every test of the project, those of
    models not built yet included, and a first night failed in local mode."""
    import json

    from dbt.cli.main import dbtRunner

    from customer_health.modelling import dbt_cosmos
    from customer_health.warehouse_connection import dbt_env

    manifest = json.loads(dbt_cosmos.manifest_path().read_text())
    project = manifest["metadata"]["project_name"]
    names = {n["name"] for n in manifest["nodes"].values()
             if n["resource_type"] in ("model", "seed", "snapshot")}
    assert project not in names

    monkeypatch.setenv("CHW_DBT_EXECUTION_MODE", "local")
    for key, value in dbt_env("postgresql://nobody@127.0.0.1:1/none").items():
        monkeypatch.setenv(key, value)
    dbt_dir = str(settings.dbt_project_dir())
    listed = dbtRunner().invoke([
        "ls", "--project-dir", dbt_dir, "--profiles-dir", dbt_dir, "--quiet",
        "--target-path", str(dbt_cosmos.manifest_path().parent),
        "--resource-type", "test", "--indirect-selection", "cautious",
        "--select", "customer_health", "--output", "json", "--output-keys", "depends_on"])
    assert listed.success, listed.exception
    parents = [set(json.loads(line)["depends_on"]["nodes"]) for line in listed.result]
    assert parents, "the customer_health model has tests"
    assert all("model.chw.customer_health" in p and "model.chw.account_team_summary" not in p
               for p in parents), parents
