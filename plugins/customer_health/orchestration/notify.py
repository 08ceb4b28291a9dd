"""Telling the data engineers: a failed task (the DAG's `on_failure_callback`) and a
published night.

Three channels, each configured by an Airflow connection (an AIRFLOW_CONN_* variable, a
secrets backend or the UI) or a variable, each silent when it is not:
- Apprise, connection `chw_alerts_apprise` (conn_type `apprise`, extra `config`: one or
  a list of `{"path": "<apprise URL>", "tag": ...}`): the Apprise provider's
  `AppriseNotifier` reaches Slack, Microsoft Teams (Workflows), PagerDuty, e-mail and
  the other services Apprise knows;
- a webhook, connection `chw_alerts_webhook` (AIRFLOW_CONN_CHW_ALERTS_WEBHOOK as
  `https://hooks.example.com/...` or JSON `{"host": "https://...", "extra": {...}}`):
  a JSON POST, by default `{"text": ..., "dag_id": ..., "task_id": ..., ...}` (Slack-
  and Mattermost-style incoming webhooks show `text`); with the extra
  `"payload": "teams"` a message carrying an Adaptive Card, the one shape the webhooks
  of Microsoft Teams' Workflows (Power Automate) take;
- e-mail to the addresses in CHW_ALERT_EMAILS (comma-separated) with the SMTP
  provider's `SmtpNotifier` through the connection `chw_smtp` (the one the reports use).

The notifiers are called with `notify()`, not as callables: calling one would render
its text as a Jinja template, and an error message is data, not a template.

A notification that cannot be sent is logged, never raised: it must not hide the
failure it reports nor fail a night that succeeded.
"""

from __future__ import annotations

import html
import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from customer_health.reporting.mailer import SMTP_CONN_ID, connection_defined, sender_of

log = logging.getLogger(__name__)

WEBHOOK_CONN_ENV = "AIRFLOW_CONN_CHW_ALERTS_WEBHOOK"
WEBHOOK_CONN_ID = "chw_alerts_webhook"
APPRISE_CONN_ID = "chw_alerts_apprise"
ALERT_EMAILS_ENV = "CHW_ALERT_EMAILS"
#: the webhook connection's extra `payload`: the generic JSON or a Teams Adaptive Card
PAYLOADS = ("json", "teams")
_MAX_ERROR = 2000


def webhook_target() -> tuple[str, str] | None:
    """(URL, payload kind) of the alert webhook, from the environment or Airflow's
    connections; None when it is not configured."""
    value = os.environ.get(WEBHOOK_CONN_ENV, "").strip()
    if value:
        return _target_from_connection_value(value)
    try:
        from airflow.sdk import Connection

        conn = Connection.get(WEBHOOK_CONN_ID)
    except Exception:  # not configured (the SDK raises its own not-found types)
        return None
    extra = conn.extra_dejson or {}
    return (extra.get("url") or _url_from_parts(conn.host, conn.port, conn.schema),
            _payload_kind(extra))


def _payload_kind(extra: dict[str, Any]) -> str:
    kind = str(extra.get("payload") or "json").strip().lower()
    if kind not in PAYLOADS:
        raise ValueError(f"connection {WEBHOOK_CONN_ID}: payload {kind!r} is not one of "
                         f"{', '.join(PAYLOADS)}")
    return kind


def _target_from_connection_value(value: str) -> tuple[str, str]:
    if value.startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return (extra.get("url") or _url_from_parts(data.get("host"), data.get("port"),
                                                    data.get("schema")),
                _payload_kind(extra))
    scheme = urlsplit(value).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{WEBHOOK_CONN_ENV} must be an http(s) URL or JSON, got {scheme!r}")
    return value, "json"


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


def webhook_payload(kind: str, subject: str, text: str, fields: dict[str, Any]) -> dict:
    """The webhook's JSON body: generic (`text` and the fields) or a Teams Adaptive Card."""
    if kind == "teams":
        return teams_card(subject, text, fields)
    return {"text": f"{subject}\n{text}", **fields}


def teams_card(subject: str, text: str, fields: dict[str, Any]) -> dict:
    """A message with one Adaptive Card (1.4), the body Teams' Workflows webhooks take:
    the subject as heading, each line of the text as a wrapped text block, the fields
    (less the error, which the text holds) as facts."""
    failed = fields.get("status") != "published"
    body: list[dict[str, Any]] = [{
        "type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium",
        "wrap": True, "style": "heading", "color": "Attention" if failed else "Good",
    }]
    body += [{"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"}
             for line in text.splitlines() if line.strip()]
    facts = [{"title": key, "value": str(value)} for key, value in fields.items()
             if key != "error" and value not in (None, "")]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    return {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "msteams": {"width": "Full"},
            },
        }],
    }


def send(subject: str, text: str, fields: dict[str, Any],
         context: dict[str, Any] | None = None) -> list[str]:
    """Send to every configured channel; returns the channels that took it. A night's
    `fields["status"] == "published"` is good news; anything else is a failure."""
    sent = []
    for channel, deliver in (("apprise", _send_apprise), ("webhook", _send_webhook),
                             ("email", _send_email)):
        try:
            if deliver(subject, text, fields, context or {}):
                sent.append(channel)
        except Exception as exc:  # noqa: BLE001 - logged: a failed alert must not raise
            log.error("could not send the alert %r through %s: %s", subject, channel, exc)
    if not sent:
        log.info("no alert channel took it (%s, %s, %s): %s", APPRISE_CONN_ID,
                 WEBHOOK_CONN_ID, ALERT_EMAILS_ENV, subject)
    return sent


def _send_webhook(subject: str, text: str, fields: dict[str, Any],
                  context: dict[str, Any]) -> bool:
    target = webhook_target()
    if target is None:
        return False
    url, kind = target
    body = json.dumps(webhook_payload(kind, subject, text, fields)).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - http(s) only
        response.read()
    return True


def _send_apprise(subject: str, text: str, fields: dict[str, Any],
                  context: dict[str, Any]) -> bool:
    if not connection_defined(APPRISE_CONN_ID):
        return False
    from airflow.providers.apprise.notifications.apprise import AppriseNotifier
    from apprise import NotifyType

    failed = fields.get("status") != "published"
    notifier = AppriseNotifier(
        title=subject, body=text, apprise_conn_id=APPRISE_CONN_ID,
        notify_type=NotifyType.FAILURE if failed else NotifyType.SUCCESS)
    with _apprise_problems() as problems:
        notifier.notify(context)
    if problems:  # the hook drops Apprise's result: its log says what went wrong
        raise RuntimeError("; ".join(problems))
    return True


@contextmanager
def _apprise_problems() -> Iterator[list[str]]:
    """The warnings and errors Apprise logs while the block runs (a service it could not
    reach, a URL it could not parse)."""
    problems: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            problems.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    apprise_log = logging.getLogger("apprise")
    apprise_log.addHandler(handler)
    try:
        yield problems
    finally:
        apprise_log.removeHandler(handler)


def _send_email(subject: str, text: str, fields: dict[str, Any],
                context: dict[str, Any]) -> bool:
    recipients = alert_emails()
    if not recipients:
        return False
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=recipients, from_email=sender_of(SMTP_CONN_ID), subject=subject,
        html_content=f'<pre style="font-family:monospace;white-space:pre-wrap">'
                     f"{html.escape(text)}</pre>",
        smtp_conn_id=SMTP_CONN_ID,
    ).notify(context)
    return True


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
    send(subject, text, fields, context)
