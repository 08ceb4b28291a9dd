"""Sending e-mail through the Airflow connection `chw_smtp`, with the SMTP provider's hook.

The connection is looked up the way every Airflow hook looks one up: an
`AIRFLOW_CONN_CHW_SMTP` environment variable, the configured secrets backend, or (inside
a task) the metadata database, where the UI stores it. Host, port, login, TLS and the
sender come from the connection and its extras exactly as `SmtpHook` reads them:

- `disable_ssl` (default false): false opens an implicit-TLS connection (port 465);
- `disable_tls` (default false): false sends STARTTLS after connecting. Port 587
  (submission) therefore needs `disable_ssl=true` and nothing else; port 465 needs
  `disable_tls=true` (the hook would otherwise ask for STARTTLS on a TLS connection);
- `from_email`: the sender (default `customer-health-reports@localhost`);
- `timeout`, `retry_limit`, `ssl_context`, `auth_type` (basic or oauth2): as the hook.

The hook's own `send_email_smtp` builds a plain mixed message (HTML, and files as
application/octet-stream), which cannot carry the reports' inline PNG charts; so the
hook opens, secures and logs in the session, and `SmtpSession.send` hands it our own
`EmailMessage`.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage

SMTP_CONN_ID = "chw_smtp"
DEFAULT_SENDER = "customer-health-reports@localhost"


def connection_defined(conn_id: str) -> bool:
    """Whether Airflow knows the connection `conn_id` (env var, secrets backend or, in
    a task, the metadata database)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(conn_id)
    except AirflowNotFoundException:
        return False
    return True


@dataclass
class SmtpSession:
    """A logged-in session with the mail server of one connection."""

    client: smtplib.SMTP
    sender: str

    def send(self, message: EmailMessage, recipients: list[str]) -> dict[str, tuple]:
        """Send `message` to `recipients`; returns the addresses the server refused
        (raises `smtplib.SMTPException` when it refused them all or the message)."""
        return self.client.send_message(message, self.sender, recipients)


@contextmanager
def smtp_session(conn_id: str = SMTP_CONN_ID) -> Iterator[SmtpSession]:
    """Open, secure and log in to the server of connection `conn_id` with `SmtpHook`;
    closed on leaving. Raises when the connection is undefined or the server unreachable."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=conn_id) as hook:
        client = hook._smtp_client  # the session the hook opened (its test_connection reads it too)
        if client is None:
            raise RuntimeError(f"the SMTP hook opened no session for connection {conn_id}")
        yield SmtpSession(client=client, sender=hook.from_email or DEFAULT_SENDER)


def sender_of(conn_id: str = SMTP_CONN_ID) -> str:
    """The sender the connection names (extra `from_email`), or the default one."""
    from airflow.sdk import Connection

    return Connection.get(conn_id).extra_dejson.get("from_email") or DEFAULT_SENDER
