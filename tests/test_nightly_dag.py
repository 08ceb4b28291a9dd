"""The nightly DAG end to end, through `chw run` (Airflow's dag.test()) on generated data:
good nights publish marts, reports and docs; a re-run gives the same marts; a night that
fails a raw or a marts gate leaves yesterday's marts and reports exactly as they were,
names the suite, expectation and observed value, and tells the data engineers.

The nights share one warehouse and run in order (each takes about a minute), so the
module builds the good history once and each failure test checks it is left intact.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from dag_runs import (
    WebhookReceiver,
    append_export_rows,
    chw,
    marts_snapshot,
    rewrite_export_file,
    tree_digest,
)

from customer_health.generate import generate_landing

pytestmark = pytest.mark.dag_run

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
#: Signed on D2: in the CRM export of D2, with no activity, ticket, answer or billing record.
NEW_ACCOUNT = {
    "account_id": "ACC-9000000", "account_name": "Brand New Co", "industry": "",
    "segment": "smb", "region": "emea", "account_team": "emea-growth",
    "owner_email": "amara.taylor@ourcompany.example", "created_at": "2026-11-02T08:00:00Z",
    "updated_at": "2026-11-02T08:00:00Z", "is_deleted": "false",
}


@dataclass
class History:
    url: str
    home: Path
    landing: Path
    marts: dict[str, list[tuple]]
    outputs: dict[date, str]

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, fresh_database_factory) -> History:
    """Two good nights, D1 and D2, run through the DAG into one warehouse; D2 brings a
    brand-new account."""
    home = tmp_path_factory.mktemp("home")
    landing = tmp_path_factory.mktemp("landing")
    generate_landing(landing, accounts=40, start=D1, days=3, seed=3, history_days=60)
    append_export_rows(landing / "crm" / D2.isoformat(), "accounts.csv", [NEW_ACCOUNT])
    url = fresh_database_factory()
    outputs = {}
    for day in (D1, D2):
        proc = chw(["run", "--date", str(day), "--landing", str(landing)], home, url)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[day] = proc.stderr
    return History(url, home, landing, marts_snapshot(url), outputs)


def _latest(history: History) -> str:
    return (history.reports_dir / "latest").resolve().name


#: Retries as a deployment has them (fast): a failure a retry would repeat must not use them.
RETRIES = {"CHW_TASK_RETRIES": "2", "CHW_RETRY_DELAY": "1"}


def _tries(history: History, day: date, task_id: str) -> int:
    """How often the newest run of `day` started `task_id` (Airflow's log of the run)."""
    return _newest_log(history, day).count(f"starting task_id={task_id} ")


def test_good_nights_publish_marts_reports_and_docs(history: History) -> None:
    assert "nightly run for 2026-11-02: success (20 tasks)" in history.outputs[D2]
    assert "load_crm.load_activities" in history.outputs[D2]  # progress names the tasks
    logs = list((history.home / "logs" / "runs").glob("customer_health_nightly_2026-11-02_*"))
    assert len(logs) == 1 and "starting task_id=publish_marts" in logs[0].read_text()
    with psycopg.connect(history.url) as conn:
        dates = [r[0] for r in conn.execute(
            "select distinct as_of_date from marts.customer_health order by 1").fetchall()]
        ledger = conn.execute("select count(*), count(*) filter (where status = 'loaded')"
                              " from audit.load_ledger where export_date = %s", (D2,)).fetchone()
        results = conn.execute("select count(*), bool_and(success) from audit.quality_results"
                               " where as_of_date = %s and severity = 'block'", (D2,)).fetchone()
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}
    assert dates == [D1, D2]  # the dated history: one snapshot per night
    assert ledger[0] >= 4 and ledger[0] == ledger[1]
    assert results[0] > 50 and results[1] is True
    assert {"marts", "marts_shadow"} <= schemas
    assert _latest(history) == "2026-11-02"
    night = history.reports_dir / "2026-11-02"
    for page in ("index.html", "glossary.html", "quality.html", "dbt-docs/index.html"):
        assert (night / page).is_file(), page
    assert not (night / "quality").exists()  # GX Data Docs are not published
    assert list((night / "teams").glob("*.html"))
    index = (night / "index.html").read_text()
    assert 'href="quality.html"' in index and 'href="dbt-docs/index.html"' in index
    assert "customer_health" in (night / "dbt-docs" / "index.html").read_text()


def test_a_brand_new_account_never_blocks_the_night(history: History) -> None:
    """D2's new account has no data of any component: the night passes its gates and
    publishes the account, unscored, in its team's report."""
    with psycopg.connect(history.url) as conn:
        row = conn.execute(
            "select health_score, health_band, scored_components, missing_components"
            " from marts.customer_health where as_of_date = %s and account_id = %s",
            (D2, NEW_ACCOUNT["account_id"])).fetchone()
        rule = conn.execute(
            "select success, observed_value from audit.quality_results where as_of_date = %s"
            " and suite = 'marts.customer_health'"
            " and expectation = 'score_null_exactly_without_components'", (D2,)).fetchall()
        summary = conn.execute(
            "select accounts_not_scored from marts.account_team_summary"
            " where as_of_date = %s and account_team = 'emea-growth'", (D2,)).fetchone()
    assert row == (None, None, 0, "engagement, support, sentiment, billing")
    assert rule and all(success for success, _ in rule)
    assert summary == (1,)
    page = (history.reports_dir / "2026-11-02" / "teams" / "emea-growth.html").read_text()
    (new_row,) = [r for r in page.split("<tr>") if "ACC-9000000<" in r and "0 of 4" in r]
    assert "Brand New Co" in new_row and "Not scored yet" in new_row


def test_re_running_a_night_gives_the_same_marts(history: History) -> None:
    proc = chw(["run", "--date", str(D2), "--landing", str(history.landing)],
               history.home, history.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert marts_snapshot(history.url) == history.marts  # table by table, row by row


def test_a_raw_violation_fails_the_night_and_leaves_yesterday_as_it_was(
        history: History, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(history.landing, landing)
    billing = landing / "billing" / D3.isoformat()
    rewrite_export_file(billing, "subscriptions.csv", lambda row: {**row, "mrr": "-119.00"})
    marts_before = marts_snapshot(history.url)
    reports_before = tree_digest(history.reports_dir / "latest")
    with WebhookReceiver() as hook, WebhookReceiver() as apprise:
        proc = chw(["run", "--date", str(D3), "--landing", str(landing)], history.home,
                   history.url, AIRFLOW_CONN_CHW_ALERTS_WEBHOOK=hook.url,
                   AIRFLOW_CONN_CHW_ALERTS_APPRISE=json.dumps({"conn_type": "apprise", "extra": {
                       "config": {"path": f"json://127.0.0.1:{apprise.server.server_port}/"}}}),
                   **RETRIES)
    assert proc.returncode == 1
    err = proc.stderr
    assert "nightly run for 2026-11-03: FAILED" in err
    # a failed gate fails at once, though the task has retries: a retry would repeat it
    assert _tries(history, D3, "validate_raw") == 1
    assert "AirflowFailException: QualityGateFailed (not retried" in _newest_log(history, D3)
    assert "failed task: validate_raw" in err
    assert "raw.billing_subscriptions" in err and "-119" in err  # suite and observed value
    assert "between(mrr)" in err  # the expectation
    assert "dbt_build" in err.split("not run because of it:")[1]
    # yesterday's marts and reports are exactly as they were; nothing of D3 is published
    assert marts_snapshot(history.url) == marts_before
    assert tree_digest(history.reports_dir / "latest") == reports_before
    assert _latest(history) == "2026-11-02"
    assert not (history.reports_dir / "2026-11-03").exists()
    # and the data engineers were told, once, naming the task and the reason
    assert len(hook.received) == 1
    alert = hook.received[0]
    assert alert["task_id"] == "validate_raw" and alert["night"] == "2026-11-03"
    assert "between(mrr)" in alert["error"] and "validate_raw" in alert["text"]
    # and through Apprise's notifier (json:// here; Slack, Teams, PagerDuty... alike)
    assert [(a["type"], a["title"]) for a in apprise.received] == [
        ("failure", "[customer health] customer_health_nightly failed at validate_raw"
                    " (night 2026-11-03)")]


def test_a_marts_violation_fails_the_night_and_leaves_yesterday_as_it_was(
        history: History) -> None:
    """A fault in the marts themselves, which no raw check can see: a trigger on the shadow
    table stands in for a modelling bug that labels a failing account 'healthy'. Another
    one, in a monthly mart's rows of the night (the gate reads only the months the night
    wrote), moves MRR from contraction to churn: the bridge still adds up, so dbt's tests
    pass, but contraction is negative."""
    with psycopg.connect(history.url, autocommit=True) as conn:
        conn.execute("""
            create function public.chw_test_mislabel() returns trigger language plpgsql as $$
            begin new.health_score := 12; new.health_band := 'healthy'; return new; end $$;
            create trigger chw_test_mislabel before insert on marts_shadow.customer_health
            for each row when (new.as_of_date = date '2026-11-03'
                               and new.health_score is not null)  -- the new account has none
            execute function public.chw_test_mislabel();
            create function public.chw_test_misbook() returns trigger language plpgsql as $$
            begin
                new.contraction_mrr := new.contraction_mrr - 1000000;
                new.churned_mrr := new.churned_mrr + 1000000;
                return new;
            end $$;
            create trigger chw_test_misbook before insert on marts_shadow.revenue_retention
            for each row when (new.as_of_date = date '2026-11-03')
            execute function public.chw_test_misbook();
        """)
    marts_before = marts_snapshot(history.url)
    reports_before = tree_digest(history.reports_dir / "latest")
    try:
        with WebhookReceiver() as hook:
            proc = chw(["run", "--date", str(D3), "--landing", str(history.landing)],
                       history.home, history.url, AIRFLOW_CONN_CHW_ALERTS_WEBHOOK=hook.url,
                       **RETRIES)
    finally:
        with psycopg.connect(history.url, autocommit=True) as conn:
            conn.execute("drop function public.chw_test_mislabel() cascade;"
                         " drop function public.chw_test_misbook() cascade")
    assert proc.returncode == 1
    err = proc.stderr
    assert "failed task: validate_marts" in err
    assert _tries(history, D3, "validate_marts") == 1 and len(hook.received) == 1
    assert "marts.customer_health" in err and "band_matches_score" in err
    assert "marts.revenue_retention" in err and "between(contraction_mrr)" in err
    assert marts_snapshot(history.url) == marts_before
    assert tree_digest(history.reports_dir / "latest") == reports_before
    assert not (history.reports_dir / "2026-11-03").exists()
    with psycopg.connect(history.url) as conn:
        shadow = conn.execute("select count(*) from marts_shadow.customer_health"
                              " where as_of_date = %s and health_score is not null",
                              (D3,)).fetchone()[0]
    assert shadow > 0  # the night was built, only where nobody reads it
    # the observed value: every scored account of the night was mislabelled
    assert f"band_matches_score: observed {shadow}" in err


def test_a_lock_timeout_is_retried_and_the_night_goes_on(history: History) -> None:
    """A transient failure keeps its retries: the night's accounts load meets a lock held
    by someone else (a long ALTER, a stuck session) and times out; the lock is gone by the
    retry, which loads the file, and the night publishes without any alert.

    Runs last: it publishes D3, which the failure tests above expect unpublished."""
    held = threading.Event()
    gave_up = threading.Event()

    def hold_the_lock() -> None:
        with psycopg.connect(history.url) as holder, psycopg.connect(
                history.url, autocommit=True) as watcher:
            holder.execute("lock table raw.crm_accounts in access exclusive mode")
            held.set()
            waited = False
            for _ in range(3000):  # at most five minutes, then let go whatever happened
                waiting = watcher.execute(
                    "select count(*) from pg_locks where not granted"
                    " and relation = 'raw.crm_accounts'::regclass").fetchone()[0]
                waited = waited or waiting > 0
                if waited and not waiting:  # the first try timed out and let go
                    gave_up.set()
                    break
                time.sleep(0.1)
            holder.rollback()

    holder = threading.Thread(target=hold_the_lock, daemon=True)
    holder.start()
    assert held.wait(30)
    with WebhookReceiver() as hook:
        proc = chw(["run", "--date", str(D3), "--landing", str(history.landing)],
                   history.home, history.url, AIRFLOW_CONN_CHW_ALERTS_WEBHOOK=hook.url,
                   PGOPTIONS="-c lock_timeout=2s", **RETRIES)
    holder.join(timeout=60)
    assert gave_up.is_set()
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The first task to need the table met the lock: the accounts load (when D3's file is
    # new) or the raw gate (when an earlier test of this module loaded it already).
    log = _newest_log(history, D3)
    started = re.findall(r"\[DAG TEST\] starting task_id=(\S+) ", log)
    assert {t for t in started if started.count(t) > 1} in (
        {"load_crm.load_accounts"}, {"validate_raw"})
    assert "LockNotAvailable: canceling statement due to lock timeout" in log
    assert not [a for a in hook.received if a.get("status") != "published"]  # no failure alert
    assert _latest(history) == "2026-11-03"


def _newest_log(history: History, day: date) -> str:
    logs = sorted((history.home / "logs" / "runs").glob(f"customer_health_nightly_{day}_*"))
    return logs[-1].read_text()
