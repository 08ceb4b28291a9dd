"""deliver_reports through a real SMTP server (aiosmtpd on 127.0.0.1, a free port), with
the Airflow connection `chw_smtp` defined as an environment variable or in a secrets
backend; the MIME structure of a report e-mail (PNG charts as cid: parts, no SVG)."""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from mail_helpers import free_port, smtp_uri
from markupsafe import escape
from report_fixtures import ACCOUNTS, AS_OF, HOSTILE_TEAM, accounts_of, fill_marts

from customer_health.reporting import (
    DeliveryResult,
    PublishResult,
    ReportError,
    build_message,
    deliver_from_env,
    deliver_reports,
    load_recipients,
    publish_reports,
)

RECIPIENTS = {
    "north": ["ann@north.example", "bob@north.example"],
    "south": ["carol@south.example"],
    HOSTILE_TEAM: ["dave@odd.example"],
    "ghost-team": ["nobody@ghost.example"],
}


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


def test_each_team_gets_its_own_page_and_csv(published: PublishResult, smtp_env,
                                             tmp_path: Path) -> None:
    inbox, _ = smtp_env
    recipients = _write_recipients(tmp_path / "recipients.yml", RECIPIENTS)
    result = deliver_reports(published, recipients)  # connection chw_smtp, from the env

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
                                                         smtp_env, tmp_path: Path) -> None:
    inbox, _ = smtp_env
    recipients = _write_recipients(tmp_path / "r.yml", {"south": ["carol@south.example"]})
    result = deliver_reports(published, recipients)
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


def test_deliver_from_env(published: PublishResult, smtp_server, no_smtp_connection,
                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port = smtp_server
    assert deliver_from_env(published) is None  # nothing configured: nothing sent
    recipients = _write_recipients(tmp_path / "r.yml", {"north": ["ann@north.example"]})
    monkeypatch.setenv("CHW_REPORT_RECIPIENTS", str(recipients))
    assert deliver_from_env(published) is None  # no SMTP connection yet
    monkeypatch.setenv("AIRFLOW_CONN_CHW_SMTP", smtp_uri(port))
    result = deliver_from_env(published)
    assert result is not None and result.sent == {"north": ["ann@north.example"]}
    assert [m["From"] for _, m in inbox.messages] == ["reports@chw.example"]


def test_reports_go_through_a_connection_in_a_secrets_backend(
        published: PublishResult, smtp_server, no_smtp_connection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable: chw_smtp lives in a secrets backend (Airflow's local-file one here,
    Vault or AWS Secrets Manager the same way), as a connection with extras."""
    inbox, port = smtp_server
    connections = tmp_path / "connections.json"
    connections.write_text(json.dumps({"chw_smtp": {
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True,
                  "from_email": "vault-reports@chw.example"}}}))
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND",
                       "airflow.secrets.local_filesystem.LocalFilesystemBackend")
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS",
                       json.dumps({"connections_file_path": str(connections)}))
    monkeypatch.setenv("CHW_REPORT_RECIPIENTS", str(_write_recipients(
        tmp_path / "r.yml", {"south": ["carol@south.example"]})))
    result = deliver_from_env(published)
    assert result is not None and result.sent == {"south": ["carol@south.example"]}
    assert [(rcpt, m["From"]) for rcpt, m in inbox.messages] == [
        (["carol@south.example"], "vault-reports@chw.example")]


def test_an_unreachable_server_raises_and_sends_nothing(
        published: PublishResult, no_smtp_connection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHW_SMTP", smtp_uri(free_port()))  # nobody listens
    recipients = _write_recipients(tmp_path / "r.yml", {"north": ["ann@north.example"]})
    with pytest.raises(OSError):
        deliver_reports(published, recipients)


def _structure(part: EmailMessage, depth: int = 0) -> list[str]:
    lines = [f"{'  ' * depth}{part.get_content_type()}"]
    for child in part.iter_parts():
        lines += _structure(child, depth + 1)
    return lines


def test_the_mail_carries_its_charts_as_png_parts(published: PublishResult, smtp_env,
                                                 tmp_path: Path) -> None:
    """Outlook shows no inline SVG: each chart is an image/png part of a multipart/related
    referenced by cid:, the page's text is escaped as on the web, the web page keeps SVG."""
    inbox, _ = smtp_env
    recipients = _write_recipients(tmp_path / "r.yml", {"north": ["ann@north.example"],
                                                         HOSTILE_TEAM: ["dave@odd.example"]})
    assert deliver_reports(published, recipients).failed == {}
    assert len(inbox.messages) == 2
    for _, message in inbox.messages:
        # north also has its own back-test (report_fixtures.BACKTEST): two charts more
        charts = 4 if message["To"] == "ann@north.example" else 2
        assert _structure(message) == [
            "multipart/mixed",
            "  multipart/alternative",
            "    text/plain",
            "    multipart/related",
            "      text/html",
            *["      image/png"] * charts,
            "  text/csv",
        ]
        related = message.get_payload()[0].get_payload()[1]
        page_part, *images = related.get_payload()
        page = page_part.get_content()
        assert "<svg" not in page.lower()
        referenced = re.findall(r'<img src="cid:([^"]+)" alt="([^"]+)"', page)
        assert len(referenced) == charts
        by_cid = {part["Content-ID"]: part for part in images}
        assert sorted(by_cid) == sorted(f"<{cid}>" for cid, _ in referenced)
        for cid, alt in referenced:
            image = by_cid[f"<{cid}>"]
            assert image.get_content_type() == "image/png"
            assert image.get_content_disposition() == "inline"
            assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
            assert alt.startswith(("Accounts by health band:", "Average health",
                                   "Churned within the horizon"))
        assert "img-src cid: data:" in page  # the mail's policy lets its own images load
        # links into the reports folder would lead nowhere from a mailbox
        assert 'href="../' not in page and '<nav class="links">' not in page
        assert "<a" not in re.sub(r'<a href="(mailto|https?):', "", page)
        team = next(t for t, a in (("north", ["ann@north.example"]),
                                   (HOSTILE_TEAM, ["dave@odd.example"]))
                    if a == message["To"].split(", "))
        for account in accounts_of(team):
            assert str(escape(account.name)) in page  # as Jinja escapes it
        assert "<script>alert(1)</script>" not in page and "<b>x</b>" not in page
    web_page = published.team("north").html_path.read_text()
    assert web_page.count('data-chart="') == 4 and "<img" not in web_page


def test_a_page_without_chart_data_reads_its_charts_as_text(published: PublishResult) -> None:
    """A chart the mail cannot redraw (no data for it) becomes its text alternative."""
    report = published.team("south")
    bare = dataclasses.replace(report, chart_data={})
    night = dataclasses.replace(published, teams=(bare,))
    message = build_message(night, "south", ["carol@south.example"], "r@chw.example")
    page = message.get_body(("html",)).get_content()
    assert "<svg" not in page and 'src="cid:' not in page
    assert "Accounts by health band:" in page
    assert not [p for p in message.walk() if p.get_content_type() == "image/png"]
