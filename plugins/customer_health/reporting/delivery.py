"""E-mail each team its own page (HTML body, portfolio CSV attached).

Recipients come from a YAML mapping file (team -> list of addresses; env
CHW_REPORT_RECIPIENTS). Each team gets one message of its own with its own page and CSV,
so a team never receives another team's accounts. SMTP settings are explicit
(`SmtpSettings`), or parsed from the Airflow connection `chw_smtp` given as env
AIRFLOW_CONN_CHW_SMTP (URI or JSON) with the same extras as Airflow's SMTP provider.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from customer_health.reporting.formatting import long_date
from customer_health.reporting.publish import PublishResult, ReportError

RECIPIENTS_ENV = "CHW_REPORT_RECIPIENTS"
SMTP_CONN_ENV = "AIRFLOW_CONN_CHW_SMTP"
DEFAULT_SENDER = "customer-health-reports@localhost"
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    sender: str = DEFAULT_SENDER
    timeout: float = 30.0

    @classmethod
    def from_connection(cls, value: str) -> SmtpSettings:
        """From an Airflow connection, as a URI (smtp://user:pass@host:port?from_email=...)
        or as JSON ({"host": ..., "login": ..., "extra": {...}}).

        Like Airflow's SMTP hook: SSL and STARTTLS are on unless the extras
        `disable_ssl` / `disable_tls` say otherwise; `from_email` is the sender.
        """
        value = value.strip()
        if value.startswith("{"):
            data = json.loads(value)
            extra = data.get("extra") or {}
            if isinstance(extra, str):
                extra = json.loads(extra) if extra else {}
            host, port = data.get("host") or "", data.get("port")
            user, password = data.get("login"), data.get("password")
        else:
            parts = urlsplit(value)
            extra = dict(parse_qsl(parts.query))
            if "__extra__" in extra:
                extra = json.loads(extra["__extra__"])
            host, port = parts.hostname or "", parts.port
            user = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password else None
        if not host:
            raise ValueError("the SMTP connection has no host")
        use_ssl = not _flag(extra.get("disable_ssl"))
        return cls(
            host=host,
            port=int(port) if port else (465 if use_ssl else 25),
            user=user or None,
            password=password or None,
            starttls=not use_ssl and not _flag(extra.get("disable_tls")),
            ssl=use_ssl,
            sender=extra.get("from_email") or DEFAULT_SENDER,
            timeout=float(extra.get("timeout", 30)),
        )


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def smtp_from_env() -> SmtpSettings | None:
    """The `chw_smtp` connection from AIRFLOW_CONN_CHW_SMTP, or None when it is not set."""
    value = os.environ.get(SMTP_CONN_ENV, "").strip()
    return SmtpSettings.from_connection(value) if value else None


def recipients_file_from_env() -> Path | None:
    value = os.environ.get(RECIPIENTS_ENV, "").strip()
    return Path(value) if value else None


def load_recipients(path: Path) -> dict[str, list[str]]:
    """team -> addresses, from YAML; a clear error naming the file for anything else."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read the recipients file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ReportError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ReportError(f"{path}: expected a mapping team -> list of addresses")
    recipients: dict[str, list[str]] = {}
    for team, addresses in loaded.items():
        if isinstance(addresses, str):
            addresses = [addresses]
        if addresses is None:
            addresses = []
        if not isinstance(addresses, list):
            raise ReportError(f"{path}: team {team!r}: expected a list of addresses")
        clean = []
        for address in addresses:
            if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
                raise ReportError(f"{path}: team {team!r}: {address!r} is not an e-mail address")
            if address.strip() not in clean:
                clean.append(address.strip())
        recipients[str(team)] = clean
    return recipients


@dataclass
class DeliveryResult:
    #: team -> the addresses its page was sent to
    sent: dict[str, list[str]] = field(default_factory=dict)
    #: teams with a page tonight but no recipients in the mapping file
    without_recipients: list[str] = field(default_factory=list)
    #: teams in the mapping file without a page tonight
    unknown_teams: list[str] = field(default_factory=list)
    #: team -> error, for messages the server refused
    failed: dict[str, str] = field(default_factory=dict)


def _plain(text: str) -> str:
    """Header-safe text: no line breaks or other control characters."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


def build_message(result: PublishResult, team: str, recipients: list[str],
                  sender: str) -> EmailMessage:
    """One team's e-mail: its page as the HTML body, its CSV attached."""
    report = result.team(team)
    day = long_date(result.as_of_date)
    msg = EmailMessage()
    msg["Subject"] = _plain(f"Customer health: {team}, {day}")
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] or None)
    msg.set_content(
        f"Customer health report of team {_plain(team)}, data as of {day}.\n"
        f"{report.accounts} accounts. Open the HTML part of this message to read it; the\n"
        "portfolio table is attached as CSV.\n"
    )
    msg.add_alternative(report.html_path.read_text(encoding="utf-8"), subtype="html")
    msg.add_attachment(
        report.csv_path.read_bytes(),
        maintype="text",
        subtype="csv",
        filename=f"customer-health-{report.stem}-{result.as_of_date.isoformat()}.csv",
    )
    return msg


def connect_smtp(smtp: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if smtp.ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                                 context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        if smtp.starttls:
            client.starttls(context=context)
    if smtp.user:
        client.login(smtp.user, smtp.password or "")
    return client


def deliver_reports(result: PublishResult, recipients_file: Path,
                    smtp: SmtpSettings) -> DeliveryResult:
    """Send each team with recipients its own page; report who got what."""
    mapping = load_recipients(recipients_file)
    teams = {t.team for t in result.teams}
    delivery = DeliveryResult(
        without_recipients=sorted(t for t in teams if not mapping.get(t)),
        unknown_teams=sorted(t for t in mapping if t not in teams),
    )
    to_send = [t.team for t in result.teams if mapping.get(t.team)]
    if not to_send:
        return delivery
    with connect_smtp(smtp) as client:
        for team in to_send:
            message = build_message(result, team, mapping[team], smtp.sender)
            try:
                refused = client.send_message(message, smtp.sender, mapping[team])
            except smtplib.SMTPException as exc:
                delivery.failed[team] = str(exc)
                continue
            accepted = [a for a in mapping[team] if a not in refused]
            delivery.sent[team] = accepted
            if refused:
                delivery.failed[team] = f"refused: {', '.join(sorted(refused))}"
    return delivery


def deliver_from_env(result: PublishResult) -> DeliveryResult | None:
    """Deliver when both AIRFLOW_CONN_CHW_SMTP and CHW_REPORT_RECIPIENTS are set, else None."""
    smtp, recipients = smtp_from_env(), recipients_file_from_env()
    if smtp is None or recipients is None:
        return None
    return deliver_reports(result, recipients, smtp)
