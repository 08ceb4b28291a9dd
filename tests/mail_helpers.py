"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, a free port) and the Airflow
connection `chw_smtp` pointing at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def smtp_uri(port: int, sender: str = "reports@chw.example") -> str:
    """The chw_smtp connection of the local test server: plain SMTP, no TLS."""
    return (f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
            f"&from_email={sender.replace('@', '%40')}")


@pytest.fixture
def no_smtp_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Neither an AIRFLOW_CONN_CHW_SMTP variable nor a secrets backend (restored after)."""
    from airflow.sdk.configuration import clear_secrets_backends_cache

    for key in ("AIRFLOW_CONN_CHW_SMTP", "AIRFLOW__SECRETS__BACKEND",
                "AIRFLOW__SECRETS__BACKEND_KWARGS", "CHW_REPORT_RECIPIENTS"):
        monkeypatch.delenv(key, raising=False)
    clear_secrets_backends_cache()
    yield
    clear_secrets_backends_cache()


@pytest.fixture
def smtp_env(smtp_server, no_smtp_connection,
             monkeypatch: pytest.MonkeyPatch) -> tuple[Inbox, int]:
    """The test server as the connection chw_smtp, in AIRFLOW_CONN_CHW_SMTP."""
    inbox, port = smtp_server
    monkeypatch.setenv("AIRFLOW_CONN_CHW_SMTP", smtp_uri(port))
    return inbox, port


