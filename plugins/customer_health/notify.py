"""Telling the data engineers: a failed task (the DAG's `on_failure_callback`) and a
published night.

Two channels, each configured by an Airflow connection and silent when it is not:
- a webhook, connection `chw_alerts_webhook` (AIRFLOW_CONN_CHW_ALERTS_WEBHOOK as
  `https://hooks.example.com/...` or JSON `{"host": "https://...", "extra": {...}}`):
  a JSON POST `{"text": ..., "dag_id": ..., "task_id": ..., ...}`, the shape Slack-,
  Teams- and Mattermost-style incoming webhooks accept;
- e-mail through the `chw_smtp` connection (the one the reports use) to the addresses
  in CHW_ALERT_EMAILS (comma-separated).

A notification that cannot be sent is logged, never raised: it must not hide the
failure it reports nor fail a night that succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

WEBHOOK_CONN_ENV = "AIRFLOW_CONN_CHW_ALERTS_WEBHOOK"
WEBHOOK_CONN_ID = "chw_alerts_webhook"
ALERT_EMAILS_ENV = "CHW_ALERT_EMAILS"
_MAX_ERROR = 2000


def webhook_url() -> str | None:
    """The alert webhook's URL, from the environment or Airflow's connections."""
    value = os.environ.get(WEBHOOK_CONN_ENV, "").strip()
    if value:
        return _url_from_connection_value(value)
    try:
        from airflow.sdk import Connection

        conn = Connection.get(WEBHOOK_CONN_ID)
    except Exception:  # not configured (the SDK raises its own not-found types)
        return None
    extra = conn.extra_dejson or {}
    return extra.get("url") or _url_from_parts(conn.host, conn.port, conn.schema)


def _url_from_connection_value(value: str) -> str:
    if value.startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return extra.get("url") or _url_from_parts(data.get("host"), data.get("port"),
                                                    data.get("schema"))
    scheme = urlsplit(value).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{WEBHOOK_CONN_ENV} must be an http(s) URL or JSON, got {scheme!r}")
    return value


def _url_from_parts(host: str | None, port: int | None, path: str | None) -> str:
    if not host:
        raise ValueError(f"connection {WEBHOOK_CONN_ID} has no host")
    if "://" not in host:
        host = f"https://{host}"
    if port:
        parts = urlsplit(host)
        host = parts._replace(netloc=f"{parts.hostname}:{port}").geturl()
    return host.rstrip("/") + (f"/{path.lstrip('/')}" if path else "")


def alert_emails() -> list[str]:
    return [a.strip() for a in os.environ.get(ALERT_EMAILS_ENV, "").split(",") if a.strip()]


def send(subject: str, text: str, fields: dict[str, Any]) -> list[str]:
    """Send to every configured channel; returns the channels that took it."""
    sent = []
    url = webhook_url_or_none()
    if url:
        try:
            body = json.dumps({"text": f"{subject}\n{text}", **fields}).encode()
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=20) as response:
                response.read()
            sent.append("webhook")
        except Exception as exc:  # noqa: BLE001 - logged: a failed alert must not raise
            log.error("could not post the alert to the %s webhook: %s", WEBHOOK_CONN_ID, exc)
    recipients = alert_emails()
    if recipients:
        try:
            _send_mail(subject, text, recipients)
            sent.append("email")
        except Exception as exc:  # noqa: BLE001
            log.error("could not e-mail the alert to %s: %s", ", ".join(recipients), exc)
    if not sent:
        log.info("no alert channel configured (%s, %s): %s", WEBHOOK_CONN_ENV,
                 ALERT_EMAILS_ENV, subject)
    return sent


def webhook_url_or_none() -> str | None:
    try:
        return webhook_url()
    except ValueError as exc:
        log.error("alert webhook misconfigured: %s", exc)
        return None


def _send_mail(subject: str, text: str, recipients: list[str]) -> None:
    from customer_health.reporting.delivery import connect_smtp, smtp_from_env

    smtp = smtp_from_env()
    if smtp is None:
        raise RuntimeError(f"{ALERT_EMAILS_ENV} is set but the chw_smtp connection is not")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = smtp.sender
    message["To"] = ", ".join(recipients)
    message.set_content(text)
    with connect_smtp(smtp) as client:
        client.send_message(message, smtp.sender, recipients)


def failure_message(context: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(subject, text, fields) for a failed task, from its Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or str(context.get("run_id", "?"))
    try_number = getattr(ti, "try_number", None)
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}" if error else "no exception recorded"
    if len(error_text) > _MAX_ERROR:
        error_text = error_text[:_MAX_ERROR] + " [...]"
    logical = context.get("logical_date")
    night = logical.date().isoformat() if logical is not None else "?"
    subject = f"[customer health] {dag_id} failed at {task_id} (night {night})"
    log_url = getattr(ti, "log_url", None)
    text = "\n".join(line for line in (
        f"DAG run: {run_id}",
        f"Task: {task_id} (try {try_number})",
        f"Error: {error_text}",
        f"Log: {log_url}" if log_url else "",
        "What to do: docs/nightly.md, 'When a night fails'.",
    ) if line)
    fields = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "night": night,
              "try_number": try_number, "error": error_text}
    return subject, text, fields


def on_failure(context: dict[str, Any]) -> None:
    """The nightly DAG's `on_failure_callback` (runs for a task's last failed try)."""
    subject, text, fields = failure_message(context)
    send(subject, text, fields)
