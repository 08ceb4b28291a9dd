"""E-mail each team its own page (HTML body with PNG charts, portfolio CSV attached).

Recipients come from a YAML mapping file (team -> list of addresses; env
CHW_REPORT_RECIPIENTS). Each team gets one message of its own with its own page and CSV,
so a team never receives another team's accounts. The mail goes out through the Airflow
connection `chw_smtp` with the SMTP provider's hook (customer_health.reporting.mailer), so the
connection may live in an AIRFLOW_CONN_CHW_SMTP variable, a secrets backend or the UI.

A message is multipart/mixed: a multipart/alternative of a plain-text summary and a
multipart/related of the page's HTML with one image/png part per chart (referenced as
`cid:`; no SVG, which Outlook does not show: reporting/mail_page.py), then the CSV.
"""

from __future__ import annotations

import os
import re
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import yaml

from customer_health.reporting.formatting import long_date
from customer_health.reporting.mail_page import mail_page
from customer_health.reporting.mailer import SMTP_CONN_ID, connection_defined, smtp_session
from customer_health.reporting.publish import PublishResult, ReportError

RECIPIENTS_ENV = "CHW_REPORT_RECIPIENTS"
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")


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


def _domain(sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip(">").strip()
    return domain if _DOMAIN.match(domain) else "localhost"


def build_message(result: PublishResult, team: str, recipients: list[str],
                  sender: str) -> EmailMessage:
    """One team's e-mail: its page as the HTML body (charts as PNG parts), its CSV attached."""
    report = result.team(team)
    day = long_date(result.as_of_date)
    domain = _domain(sender)
    page = mail_page(report.html_path.read_text(encoding="utf-8"), report.chart_data, domain)
    msg = EmailMessage()
    msg["Subject"] = _plain(f"Customer health: {team}, {day}")
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(
        f"Customer health report of team {_plain(team)}, data as of {day}.\n"
        f"{report.accounts} accounts. Open the HTML part of this message to read it; the\n"
        "portfolio table is attached as CSV.\n"
    )
    msg.add_alternative(page.html, subtype="html")
    html_part = msg.get_payload()[-1]
    for cid, image in page.images:
        html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{cid}>",
                              filename=f"{image.name}.png", disposition="inline")
    msg.add_attachment(
        report.csv_path.read_bytes(),
        maintype="text",
        subtype="csv",
        filename=f"customer-health-{report.stem}-{result.as_of_date.isoformat()}.csv",
    )
    return msg


def deliver_reports(result: PublishResult, recipients_file: Path,
                    smtp_conn_id: str = SMTP_CONN_ID) -> DeliveryResult:
    """Send each team with recipients its own page through the Airflow connection
    `smtp_conn_id`; report who got what. Raises when the connection is undefined or
    the server cannot be reached or logged in to (nothing was sent then)."""
    mapping = load_recipients(recipients_file)
    teams = {t.team for t in result.teams}
    delivery = DeliveryResult(
        without_recipients=sorted(t for t in teams if not mapping.get(t)),
        unknown_teams=sorted(t for t in mapping if t not in teams),
    )
    to_send = [t.team for t in result.teams if mapping.get(t.team)]
    if not to_send:
        return delivery
    with smtp_session(smtp_conn_id) as session:
        for team in to_send:
            message = build_message(result, team, mapping[team], session.sender)
            try:
                refused = session.send(message, mapping[team])
            except smtplib.SMTPException as exc:
                delivery.failed[team] = str(exc)
                continue
            accepted = [a for a in mapping[team] if a not in refused]
            delivery.sent[team] = accepted
            if refused:
                delivery.failed[team] = f"refused: {', '.join(sorted(refused))}"
    return delivery


def deliver_from_env(result: PublishResult) -> DeliveryResult | None:
    """Deliver when CHW_REPORT_RECIPIENTS is set and Airflow knows the connection
    `chw_smtp` (from any source); None, and nothing sent, when either is missing."""
    recipients = recipients_file_from_env()
    if recipients is None or not connection_defined(SMTP_CONN_ID):
        return None
    return deliver_reports(result, recipients)
