"""Alerts through Airflow's notifiers and the webhook, received by real local servers:
Apprise (its `json://` service) and the webhook by an HTTP server on 127.0.0.1, e-mail by
aiosmtpd. Each channel is silent when unconfigured; a channel that fails is logged and
never raised, and the others still get the alert."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from dag_runs import WebhookReceiver
from mail_helpers import free_port, smtp_uri

from customer_health.orchestration import notify

CHANNEL_VARS = ("AIRFLOW_CONN_CHW_ALERTS_APPRISE", "AIRFLOW_CONN_CHW_ALERTS_WEBHOOK",
                "CHW_ALERT_EMAILS", "AIRFLOW_CONN_CHW_SMTP")
#: an error message that looks like a template: it must arrive as written
ERROR = "QualityGateFailed: raw.billing_subscriptions between(mrr) {{ 7 * 7 }} <b>-119</b>"


@pytest.fixture(autouse=True)
def no_channels(no_smtp_connection, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in CHANNEL_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook


def failure_context() -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="customer_health_nightly", task_id="validate_raw",
                         run_id="scheduled__2026-11-03T00:00:00+00:00", try_number=3,
                         log_url="http://airflow.example/log")
    return {"ti": ti, "exception": RuntimeError(ERROR),
            "logical_date": datetime(2026, 11, 3, tzinfo=UTC)}


def apprise_connection(url: str) -> str:
    return json.dumps({"conn_type": "apprise", "extra": {"config": {"path": url}}})


def test_unconfigured_alerts_are_silent(receiver: WebhookReceiver,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="customer_health.orchestration.notify"):
        notify.on_failure(failure_context())
        assert notify.send("night published", "fine", {"status": "published"}) == []
    assert receiver.received == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "no alert channel took it" in caplog.text


def test_a_failed_task_alerts_once_through_apprise(receiver: WebhookReceiver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The Apprise provider's notifier, connection chw_alerts_apprise: Apprise's json://
    service stands in for Slack, Teams, PagerDuty... (the same call, another URL)."""
    port = receiver.server.server_port
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_APPRISE",
                       apprise_connection(f"json://127.0.0.1:{port}/apprise"))
    notify.on_failure(failure_context())
    assert len(receiver.received) == 1
    alert = receiver.received[0]
    assert alert["type"] == "failure"
    assert alert["title"] == ("[customer health] customer_health_nightly failed at "
                              "validate_raw (night 2026-11-03)")
    assert ERROR in alert["message"]  # literal: no template rendering
    assert "Task: validate_raw (try 3)" in alert["message"]
    assert notify.send("[customer health] night 2026-11-03 published", "3 team report(s)",
                       {"status": "published"}) == ["apprise"]
    assert receiver.received[1]["type"] == "success"


def test_the_webhook_posts_the_generic_json(receiver: WebhookReceiver,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_WEBHOOK", receiver.url)
    notify.on_failure(failure_context())
    assert len(receiver.received) == 1
    alert = receiver.received[0]
    assert alert["task_id"] == "validate_raw" and alert["night"] == "2026-11-03"
    assert alert["error"] == f"RuntimeError: {ERROR}"
    assert alert["text"].startswith("[customer health] customer_health_nightly failed")


def test_the_webhook_posts_a_teams_adaptive_card(receiver: WebhookReceiver,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Teams' Workflows webhooks take a message with an Adaptive Card, not {"text": ...}."""
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_WEBHOOK", json.dumps(
        {"conn_type": "http", "extra": {"url": receiver.url, "payload": "teams"}}))
    notify.on_failure(failure_context())
    assert len(receiver.received) == 1
    message = receiver.received[0]
    assert set(message) == {"type", "attachments"} and message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    heading, *blocks, facts = card["body"]
    assert heading["type"] == "TextBlock" and heading["color"] == "Attention"
    assert "failed at validate_raw" in heading["text"]
    assert all(b["type"] == "TextBlock" and b["wrap"] for b in blocks)
    assert f"Error: RuntimeError: {ERROR}" in [b["text"] for b in blocks]
    assert facts["type"] == "FactSet"
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "dag_id": "customer_health_nightly", "task_id": "validate_raw",
        "run_id": "scheduled__2026-11-03T00:00:00+00:00", "night": "2026-11-03",
        "try_number": "3"}
    published = notify.teams_card("night published", "3 reports", {"status": "published"})
    assert published["attachments"][0]["content"]["body"][0]["color"] == "Good"


def test_alert_email_goes_through_the_smtp_notifier(smtp_server,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("AIRFLOW_CONN_CHW_SMTP", smtp_uri(port, "alerts@chw.example"))
    monkeypatch.setenv("CHW_ALERT_EMAILS", "de1@chw.example, de2@chw.example")
    notify.on_failure(failure_context())
    assert len(inbox.messages) == 1
    rcpt, message = inbox.messages[0]
    assert rcpt == ["de1@chw.example", "de2@chw.example"]
    assert message["From"] == "alerts@chw.example"
    assert "failed at validate_raw" in message["Subject"]
    body = message.get_body(("html",)).get_content()
    assert "{{ 7 * 7 }}" in body and "&lt;b&gt;-119&lt;/b&gt;" in body and "<b>" not in body


def test_a_failing_channel_is_logged_and_the_others_still_get_the_alert(
        receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    closed = free_port()  # nobody listens there
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_APPRISE",
                       apprise_connection(f"json://127.0.0.1:{closed}/apprise"))
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_WEBHOOK", receiver.url)
    monkeypatch.setenv("CHW_ALERT_EMAILS", "de@chw.example")  # but no chw_smtp connection
    with caplog.at_level(logging.ERROR, logger="customer_health.orchestration.notify"):
        assert notify.send("subject", "text", {"status": "failed"}) == ["webhook"]
    assert len(receiver.received) == 1
    notify_logger = "customer_health.orchestration.notify"
    errors = [r.getMessage() for r in caplog.records if r.name == notify_logger]
    assert any("through apprise" in e and "127.0.0.1" in e for e in errors)
    assert any("through email" in e and "chw_smtp" in e for e in errors)
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_WEBHOOK", f"http://127.0.0.1:{closed}/x")
    assert notify.send("subject", "text", {"status": "failed"}) == []  # logged, not raised
    monkeypatch.setenv("AIRFLOW_CONN_CHW_ALERTS_WEBHOOK",
                       json.dumps({"host": receiver.url, "extra": {"payload": "xml"}}))
    caplog.clear()
    assert notify.send("subject", "text", {"status": "failed"}) == []
    assert "payload 'xml' is not one of json, teams" in caplog.text
