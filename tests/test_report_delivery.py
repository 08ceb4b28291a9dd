"""deliver_reports through a real SMTP server (aiosmtpd on 127.0.0.1, a free port)."""

from __future__ import annotations

import csv
import html
import io
import json
import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from report_fixtures import ACCOUNTS, AS_OF, HOSTILE_TEAM, accounts_of, fill_marts

from customer_health.reporting import (
    DeliveryResult,
    PublishResult,
    ReportError,
    SmtpSettings,
    deliver_from_env,
    deliver_reports,
    load_recipients,
    publish_reports,
    smtp_from_env,
)

RECIPIENTS = {
    "north": ["ann@north.example", "bob@north.example"],
    "south": ["carol@south.example"],
    HOSTILE_TEAM: ["dave@odd.example"],
    "ghost-team": ["nobody@ghost.example"],
}


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def published(fresh_database_factory: Callable[[], str],
              tmp_path_factory: pytest.TempPathFactory) -> PublishResult:
    url = fresh_database_factory()
    fill_marts(url, nights=10)
    return publish_reports(url, AS_OF, tmp_path_factory.mktemp("reports"))


def _write_recipients(path: Path, mapping: dict[str, list[str]]) -> Path:
    path.write_text(json.dumps(mapping))  # JSON is YAML
    return path


def _parts(message: EmailMessage) -> tuple[str, str, str]:
    body = message.get_body(("html",))
    assert body is not None
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    return body.get_content(), attachments[0].get_content(), attachments[0].get_filename()


def test_each_team_gets_its_own_page_and_csv(published: PublishResult, smtp_server,
                                             tmp_path: Path) -> None:
    inbox, port = smtp_server
    recipients = _write_recipients(tmp_path / "recipients.yml", RECIPIENTS)
    smtp = SmtpSettings(host="127.0.0.1", port=port, sender="reports@chw.example")
    result = deliver_reports(published, recipients, smtp)

    assert result == DeliveryResult(
        sent={t: RECIPIENTS[t] for t in ("north", "south", HOSTILE_TEAM)},
        without_recipients=[],
        unknown_teams=["ghost-team"],
        failed={},
    )
    assert len(inbox.messages) == 3
    seen_teams = set()
    for rcpt_tos, message in inbox.messages:
        team = next(t for t, addresses in RECIPIENTS.items() if addresses == rcpt_tos)
        seen_teams.add(team)
        assert message["From"] == "reports@chw.example"
        assert "\n" not in message["Subject"] and team.replace("\n", " ") in message["Subject"]
        page, table, filename = _parts(message)
        assert filename.endswith(f"-{AS_OF.isoformat()}.csv")
        rows = list(csv.DictReader(io.StringIO(table)))
        assert sorted(r["account_id"] for r in rows) == sorted(
            a.account_id for a in accounts_of(team))
        for account in accounts_of(team):
            assert account.account_id in page
        for account in (a for a in ACCOUNTS if a.team != team):
            assert account.account_id not in page and account.account_id not in table
            assert html.escape(account.name) not in page and account.name not in table
        assert "<script>alert(1)</script>" not in page
    assert seen_teams == {"north", "south", HOSTILE_TEAM}


def test_teams_without_recipients_are_reported_not_mailed(published: PublishResult,
                                                         smtp_server, tmp_path: Path) -> None:
    inbox, port = smtp_server
    recipients = _write_recipients(tmp_path / "r.yml", {"south": ["carol@south.example"]})
    result = deliver_reports(published, recipients, SmtpSettings(host="127.0.0.1", port=port))
    assert result.sent == {"south": ["carol@south.example"]}
    assert result.without_recipients == sorted(["north", HOSTILE_TEAM])
    assert [rcpt for rcpt, _ in inbox.messages] == [["carol@south.example"]]


def test_recipients_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ReportError, match="bad.yml: expected a mapping"):
        load_recipients(bad)
    bad.write_text("north: [not-an-address]\n")
    with pytest.raises(ReportError, match="'not-an-address' is not an e-mail address"):
        load_recipients(bad)
    bad.write_text("north: [a@b.example\n")
    with pytest.raises(ReportError, match="not valid YAML"):
        load_recipients(bad)
    with pytest.raises(ReportError, match="cannot read"):
        load_recipients(tmp_path / "missing.yml")
    good = tmp_path / "good.yml"
    good.write_text("north: ann@north.example\nsouth:\n  - carol@south.example\n"
                    "  - carol@south.example\nempty:\n")
    assert load_recipients(good) == {"north": ["ann@north.example"],
                                     "south": ["carol@south.example"], "empty": []}


def test_example_recipients_file_parses() -> None:
    example = Path(__file__).resolve().parents[1] / "config" / "report_recipients.example.yml"
    mapping = load_recipients(example)
    assert mapping and all(addresses for addresses in mapping.values())


def test_smtp_settings_from_the_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = ("smtp://reports%40corp.example:s%3Acret@smtp.corp.example:587"
           "?disable_ssl=true&from_email=reports%40corp.example&timeout=10")
    settings = SmtpSettings.from_connection(uri)
    assert settings == SmtpSettings(host="smtp.corp.example", port=587,
                                    user="reports@corp.example", password="s:cret",
                                    starttls=True, ssl=False, sender="reports@corp.example",
                                    timeout=10.0)
    assert "s:cret" not in repr(settings)
    plain = SmtpSettings.from_connection("smtp://mail:25?disable_ssl=true&disable_tls=true")
    assert (plain.host, plain.port, plain.ssl, plain.starttls, plain.user) == (
        "mail", 25, False, False, None)
    assert SmtpSettings.from_connection("smtp://mail").ssl  # Airflow's default: SSL on
    as_json = json.dumps({"conn_type": "smtp", "host": "mail", "port": 2525, "login": "u",
                          "password": "p", "extra": {"disable_ssl": True}})
    settings = SmtpSettings.from_connection(as_json)
    assert (settings.port, settings.user, settings.password, settings.starttls) == (
        2525, "u", "p", True)
    monkeypatch.delenv("AIRFLOW_CONN_CHW_SMTP", raising=False)
    assert smtp_from_env() is None
    monkeypatch.setenv("AIRFLOW_CONN_CHW_SMTP", "smtp://mail:2525?disable_ssl=1")
    assert smtp_from_env() == SmtpSettings.from_connection("smtp://mail:2525?disable_ssl=1")


def test_deliver_from_env(published: PublishResult, smtp_server, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port = smtp_server
    monkeypatch.delenv("AIRFLOW_CONN_CHW_SMTP", raising=False)
    monkeypatch.delenv("CHW_REPORT_RECIPIENTS", raising=False)
    assert deliver_from_env(published) is None  # nothing configured: nothing sent
    recipients = _write_recipients(tmp_path / "r.yml", {"north": ["ann@north.example"]})
    monkeypatch.setenv("CHW_REPORT_RECIPIENTS", str(recipients))
    assert deliver_from_env(published) is None  # no SMTP connection yet
    monkeypatch.setenv("AIRFLOW_CONN_CHW_SMTP",
                       f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
                       "&from_email=reports%40chw.example")
    result = deliver_from_env(published)
    assert result is not None and result.sent == {"north": ["ann@north.example"]}
    assert [m["From"] for _, m in inbox.messages] == ["reports@chw.example"]
