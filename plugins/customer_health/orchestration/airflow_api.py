"""Driving nights on a running Airflow deployment through its REST API (v2, Airflow 3).

`chw run` and `chw backfill` use this instead of the embedded `dag.test()` when
CHW_AIRFLOW_API_URL is set (e.g. http://localhost:8080 for the docker-compose
deployment). Authentication: CHW_AIRFLOW_API_TOKEN (a JWT), or CHW_AIRFLOW_API_USER and
CHW_AIRFLOW_API_PASSWORD exchanged at `POST /auth/token`.

A night whose DAG run already exists (same logical date) and has finished is cleared and
run again, as "Clear" in the UI would; one still queued or running (the scheduler's own)
is waited for; otherwise a run is triggered. Either way the call waits for the
run to finish and reports each task's state, like the embedded runner.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

API_URL_ENV = "CHW_AIRFLOW_API_URL"
FINISHED = {"success", "failed"}


class AirflowApiError(RuntimeError):
    """The API refused a call or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal, None when unreachable


@dataclass
class RemoteRun:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str] = field(default_factory=dict)
    ui_url: str = ""

    @property
    def succeeded(self) -> bool:
        # A run without tasks (a date before the DAG's start_date) ends "success" at once.
        return self.state == "success" and bool(self.tasks)


def configured() -> bool:
    return bool(os.environ.get(API_URL_ENV, "").strip())


class AirflowApi:
    def __init__(self, base_url: str | None = None, token: str | None = None,
                 user: str | None = None, password: str | None = None,
                 timeout: float = 30) -> None:
        self.base_url = (base_url or os.environ.get(API_URL_ENV, "")).rstrip("/")
        if not self.base_url:
            raise AirflowApiError(f"{API_URL_ENV} is not set")
        self.timeout = timeout
        self._token = token or os.environ.get("CHW_AIRFLOW_API_TOKEN") or None
        self._user = user or os.environ.get("CHW_AIRFLOW_API_USER") or None
        self._password = password or os.environ.get("CHW_AIRFLOW_API_PASSWORD") or ""

    # --- HTTP --------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None,
                 query: dict[str, str] | None = None, auth: bool = True) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise AirflowApiError(f"{method} {path}: HTTP {exc.code} {detail}",
                                  exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise AirflowApiError(f"cannot reach the Airflow API at {self.base_url}: {exc}"
                                  ) from None
        return json.loads(payload) if payload else None

    def token(self) -> str:
        if self._token:
            return self._token
        if self._user:
            body = {"username": self._user, "password": self._password}
            self._token = self._request("POST", "/auth/token", body, auth=False)["access_token"]
        else:  # a deployment whose simple auth manager makes everyone admin
            self._token = self._request("GET", "/auth/token", auth=False)["access_token"]
        return self._token

    # --- runs --------------------------------------------------------------------------

    def find_run(self, dag_id: str, logical_date: datetime) -> dict | None:
        stamp = logical_date.isoformat()
        found = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns",
                              query={"logical_date_gte": stamp, "logical_date_lte": stamp})
        runs = found.get("dag_runs") or []
        return runs[0] if runs else None

    def start_night(self, dag_id: str, logical_date: datetime, conf: dict) -> str:
        """Trigger the night, or clear its existing run; returns the run id."""
        dag = self._request("GET", f"/api/v2/dags/{dag_id}")
        if dag.get("is_paused"):
            raise AirflowApiError(f"{dag_id} is paused in the deployment at {self.base_url}:"
                                  " unpause it (Airflow UI, or `airflow dags unpause`) first")
        existing = self.find_run(dag_id, logical_date)
        if existing is None:
            try:
                run = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                                    {"logical_date": logical_date.isoformat(), "conf": conf})
                return run["dag_run_id"]
            except AirflowApiError as exc:
                # 409: the scheduler (catchup) created the night's run since find_run
                existing = self.find_run(dag_id, logical_date) if exc.status == 409 else None
                if existing is None:
                    raise
        run_id = existing["dag_run_id"]
        if str(existing.get("state")) not in FINISHED:
            return run_id  # the scheduler's run of that night is under way: wait for it
        self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/clear",
                      {"dry_run": False, "only_failed": False})
        return run_id

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        found = self._request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances",
            query={"limit": "1000"})
        return {ti["task_id"]: str(ti.get("state")) for ti in found.get("task_instances", [])}

    def wait(self, dag_id: str, run_id: str, poll_seconds: float = 10,
             timeout_seconds: float = 6 * 3600,
             on_change: Callable[[str, str], None] | None = None) -> RemoteRun:
        deadline = time.monotonic() + timeout_seconds
        seen: dict[str, str] = {}
        while True:
            run = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")
            states = self.task_states(dag_id, run_id)
            for task_id, state in sorted(states.items()):
                if seen.get(task_id) != state and on_change is not None:
                    on_change(task_id, state)
            seen = states
            state = str(run.get("state"))
            if state in FINISHED:
                return RemoteRun(dag_id, run_id, state, states,
                                 f"{self.base_url}/dags/{dag_id}/runs/{_quote(run_id)}")
            if time.monotonic() > deadline:
                raise AirflowApiError(f"run {run_id} of {dag_id} still {state} after "
                                      f"{timeout_seconds:.0f}s")
            time.sleep(poll_seconds)


def _quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")
