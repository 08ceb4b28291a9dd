"""publish_reports against real mart tables (tests/report_fixtures.py) and real files."""

from __future__ import annotations

import csv
import html
import io
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from report_fixtures import ACCOUNTS, AS_OF, HOSTILE_TEAM, accounts_of, fill_marts, teams

from customer_health.reporting import (
    PublishResult,
    ReportError,
    publish_reports,
    render,
    safe_file_stem,
)
from customer_health.reporting.publish import assign_stems

QUALITY = {
    "status": "warnings",
    "failures": [],
    "warnings": ["3 rows quarantined in crm/activities.csv <b>bold</b>"],
    "docs_path": "quality/index.html",
}


@pytest.fixture(scope="module")
def marts_url(fresh_database_factory: Callable[[], str]) -> str:
    url = fresh_database_factory()
    fill_marts(url)
    return url


@pytest.fixture(scope="module")
def published(marts_url: str, tmp_path_factory: pytest.TempPathFactory) -> PublishResult:
    return publish_reports(marts_url, AS_OF, tmp_path_factory.mktemp("reports"), quality=QUALITY)


def _section(page: str, title: str) -> str:
    """The HTML of the <section> whose heading starts with `title`."""
    for part in page.split("<section")[1:]:
        if re.search(r"<h2>\s*" + re.escape(title), part):
            return part.split("</section>")[0]
    raise AssertionError(f"no section {title!r}")


def _markers(account) -> list[str]:
    return [account.account_id, html.escape(account.name)]


def test_layout_and_latest(published: PublishResult) -> None:
    root = published.reports_dir
    night = root / AS_OF.isoformat()
    assert published.night_dir == night
    assert (night / "index.html").is_file() and (night / "glossary.html").is_file()
    assert {t.team for t in published.teams} == set(teams())
    for report in published.teams:
        assert report.html_path.is_file() and report.csv_path.is_file()
        assert report.html_path.parent == night / "teams"
        assert report.accounts == len(accounts_of(report.team))
    latest = root / "latest"
    assert latest.is_symlink() and os.readlink(latest) == AS_OF.isoformat()
    assert (latest / "index.html").read_text() == (night / "index.html").read_text()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_every_team_sees_only_its_own_accounts(published: PublishResult) -> None:
    for report in published.teams:
        page = report.html_path.read_text()
        table = report.csv_path.read_text()
        own = accounts_of(report.team)
        others = [a for a in ACCOUNTS if a.team != report.team]
        for account in own:
            assert account.account_id in page and account.account_id in table
        for account in others:
            for marker in _markers(account):
                assert marker not in page, (report.team, marker)
            assert account.account_id not in table, (report.team, account.account_id)
            assert account.name not in table, (report.team, account.name)


def test_account_names_and_team_names_are_escaped(published: PublishResult) -> None:
    pages = [published.index_path.read_text()] + [t.html_path.read_text()
                                                  for t in published.teams]
    for page in pages:
        assert "<script" not in page.lower()
        assert "<b>x</b>" not in page and "<b>bold</b>" not in page
    north = published.team("north").html_path.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in north
    assert "Bolt &amp; Nut &#34;Ltd&#34;" in north
    index = published.index_path.read_text()
    assert html.escape(HOSTILE_TEAM) in index
    assert "&lt;b&gt;bold&lt;/b&gt;" in index
    hostile = published.team(HOSTILE_TEAM).html_path.read_text()
    assert f"<h1>{html.escape(HOSTILE_TEAM)}</h1>" in hostile


def test_csv_is_the_portfolio_with_formulas_defused(published: PublishResult) -> None:
    for report in published.teams:
        rows = list(csv.DictReader(io.StringIO(report.csv_path.read_text())))
        assert tuple(rows[0]) == render.CSV_COLUMNS
        assert sorted(r["account_id"] for r in rows) == sorted(
            a.account_id for a in accounts_of(report.team))
    hostile = published.team(HOSTILE_TEAM).csv_path.read_text()
    assert "'=HYPERLINK" in hostile and ",=HYPERLINK" not in hostile
    north = {r["account_id"]: r for r in csv.DictReader(
        io.StringIO(published.team("north").csv_path.read_text()))}
    assert north["acc-n-002"]["account_name"] == "<script>alert(1)</script>"
    assert north["acc-n-002"]["mrr"] == "1200"
    assert north["acc-n-002"]["health_band"] == "at_risk"


def test_hostile_team_name_gets_a_safe_file_inside_the_night(published: PublishResult) -> None:
    report = published.team(HOSTILE_TEAM)
    assert re.fullmatch(r"[a-z0-9-]+", report.stem)
    assert report.html_path.resolve().parent == (published.night_dir / "teams").resolve()
    for path in published.reports_dir.rglob("*"):
        assert published.reports_dir.resolve() in path.resolve().parents or path.is_symlink()


def test_safe_file_stems() -> None:
    assert safe_file_stem("../../etc/passwd") == "etc-passwd"
    assert safe_file_stem("..") == "team" and safe_file_stem("") == "team"
    assert safe_file_stem("Équipe Nord / Süd") == "equipe-nord-sud"
    stems = assign_stems(["north", "North!", "south"])
    assert stems["south"] == "south"
    assert stems["north"] != stems["North!"]
    assert all(s.startswith("north-") for t, s in stems.items() if t != "south")
    # the same names give the same files, whatever else is there
    assert assign_stems(["North!", "north"]) == {t: stems[t] for t in ("North!", "north")}


def test_team_page_content(published: PublishResult) -> None:
    page = published.team("north").html_path.read_text()
    assert "20 November 2026" in page and 'href="../glossary.html"' in page
    assert 'href="north.csv"' in page and 'href="../index.html"' in page
    # headline: NRR this month 7300 / 7100, over 12 months 5000 / 4000
    assert "103%" in page and "125%" in page
    # bands, trend and the team's own back-test (10 of its accounts churned): 4 charts
    assert page.count('class="chart" role="img"') == 4

    movers = _section(page, "Movers")
    assert movers.index("acc-n-002") < movers.index("acc-n-003")
    assert "<b>billing</b> \u221258: Failed payments (2 in the last 90 days)" in movers

    renewals = _section(page, "Renewals at risk")
    assert renewals.index("acc-n-002") < renewals.index("acc-n-003")
    assert "acc-n-001" not in renewals  # healthy
    assert "$14,400" in renewals  # ARR of acc-n-002

    connect = _section(page, "Connect list")
    assert connect.index("acc-n-005") < connect.index("acc-n-003")  # never touched first
    assert "never touched" in connect and "Book a renewal conversation" in connect
    assert "acc-n-004" not in connect  # churned: on the win-back list instead
    assert "acc-n-001" not in connect and "acc-n-002" not in connect

    assert "acc-n-003" in _section(page, "Detractors")
    win_back = _section(page, "Win-back")
    assert "acc-n-004" in win_back and "$48,000" in win_back

    portfolio = _section(page, "Portfolio")
    order = [a for a in re.findall(r"acc-n-\d{3}", portfolio)]
    assert order == ["acc-n-004", "acc-n-003", "acc-n-002", "acc-n-001", "acc-n-005",
                     "acc-n-006"]  # not scored yet: last
    assert page.rindex("<section") == page.index(portfolio) - len("<section")


def _portfolio_row(page: str, account_id: str) -> str:
    portfolio = _section(page, "Portfolio")
    (row,) = [r for r in portfolio.split("<tr>") if f'class="id">{account_id}<' in r]
    return row


def test_unscored_and_thin_accounts_carry_their_marks(published: PublishResult) -> None:
    """A new account (no component has data) is on the page as "not scored yet", never with
    a band; a score resting on billing alone is marked as thin evidence."""
    page = published.team("north").html_path.read_text()
    new = _portfolio_row(page, "acc-n-006")
    assert '<span class="band none">Not scored yet</span>' in new
    assert "0 of 4" in new and "thin evidence" not in new
    assert not any(f'band {b}"' in new for b in ("healthy", "at_risk", "critical"))
    thin = _portfolio_row(page, "acc-n-005")  # billing 90 alone: 90 "healthy"
    assert '<span class="band healthy">Healthy</span>' in thin
    assert "thin evidence: scored on 1 of 4 components" in thin and "1 of 4" in thin
    assert "thin evidence" not in _portfolio_row(page, "acc-n-004")  # 2 of 4 components
    assert "thin evidence" not in _portfolio_row(page, "acc-n-001")  # 4 of 4
    # the headline counts them; the average is over the 5 scored accounts only
    assert "1 not scored yet" in page and "1 on thin evidence" in page
    assert "over 5 scored accounts" in page
    connect = _section(page, "Connect list")  # never touched: the owner should call
    assert "acc-n-006" in connect
    assert "thin evidence: scored on 1 of 4 components" in connect  # acc-n-005
    # the CSV says the same in plain values
    rows = {r["account_id"]: r for r in csv.DictReader(
        io.StringIO(published.team("north").csv_path.read_text()))}
    assert (rows["acc-n-006"]["health_score"], rows["acc-n-006"]["health_band"]) == ("", "")
    assert rows["acc-n-006"]["scored_components"] == "0"
    assert rows["acc-n-006"]["missing_components"] == "engagement, support, sentiment, billing"
    assert rows["acc-n-005"]["scored_components"] == "1"
    # and the glossary states the rule
    glossary = (published.night_dir / "glossary.html").read_text()
    assert 'id="evidence"' in glossary and "fewer than 2 components" in glossary
    assert "Not scored yet" in glossary


def test_marts_without_scored_components_count_the_components(
    fresh_database_factory: Callable[[], str], tmp_path: Path
) -> None:
    """Marts built before scored_components existed still get their marks."""
    url = fresh_database_factory()
    fill_marts(url, nights=1, schema="old_marts")
    with psycopg.connect(url) as conn:
        conn.execute("alter table old_marts.customer_health drop column scored_components")
    page = publish_reports(url, AS_OF, tmp_path, schema="old_marts").team("north")
    text = page.html_path.read_text()
    assert "thin evidence: scored on 1 of 4 components" in _portfolio_row(text, "acc-n-005")
    assert "0 of 4" in _portfolio_row(text, "acc-n-006")


def test_the_backtest_panel_reads_the_latest_evaluation_date(
        published: PublishResult) -> None:
    """report_fixtures.BACKTEST: the index shows all teams' figures of 1 August, a team page
    its own only when 10 of its accounts churned (north, not south)."""
    index = _section(published.index_path.read_text(), "Does the score predict churn?")
    assert ("Of the accounts marked critical on 1 August 2026, 100% (6 of 6) had churned by"
            " 30 October 2026; of those at risk, 60%; of the healthy, 29%.") in index
    assert "18 accounts paying on 1 August 2026, 11 of them" in index
    assert "AUC <strong>0.81</strong> (95% interval 0.62 to 0.95)" in index
    assert "Over all 2 evaluation dates (15 churned accounts in all) the AUC averages" \
        " <strong>0.73</strong>" in index
    assert 'data-chart="churn"' in index and 'data-chart="calib"' in index
    assert "Critical 6 of 6" in index  # the chart's text alternative

    north = _section(published.team("north").html_path.read_text(),
                     "Does the score predict churn?")
    assert "100% (5 of 5) had churned" in north and "of those at risk, 75%" in north
    assert "14 accounts paying on 1 August 2026, 10 of them" in north
    # stayers 60, 75, 90, 95 over churners 10..55, 80, 85: (8 + 8 + 10 + 10) / 40
    assert "AUC <strong>0.90</strong>:" in north
    south = published.team("south").html_path.read_text()
    assert "Does the score predict churn?" not in south
    assert "once at least 10 of its accounts churned" in south


def test_index_lists_teams_quality_and_links(published: PublishResult) -> None:
    index = published.index_path.read_text()
    for report in published.teams:
        assert f'href="teams/{report.stem}.html"' in index
    assert "Passed with warnings" in index
    assert 'href="quality/index.html"' in index
    glossary = (published.night_dir / "glossary.html").read_text()
    for anchor in ("bands", "components", "engagement", "billing", "inactivity", "win-back",
                   "backtest"):
        assert f'id="{anchor}"' in glossary


def test_a_failed_render_leaves_the_last_good_night(
    marts_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = AS_OF - timedelta(days=1)
    publish_reports(marts_url, earlier, tmp_path)
    real = render.write_team_csv
    calls = []

    def failing(view, path):
        calls.append(view.team)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        real(view, path)

    monkeypatch.setattr(render, "write_team_csv", failing)
    with pytest.raises(OSError, match="disk full"):
        publish_reports(marts_url, AS_OF, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [earlier.isoformat(), "latest"]
    assert os.readlink(tmp_path / "latest") == earlier.isoformat()

    monkeypatch.setattr(render, "write_team_csv", real)
    publish_reports(marts_url, AS_OF, tmp_path)
    assert os.readlink(tmp_path / "latest") == AS_OF.isoformat()
    # a backfill of an older night stays beside the others; latest keeps the newest
    publish_reports(marts_url, AS_OF - timedelta(days=3), tmp_path)
    assert os.readlink(tmp_path / "latest") == AS_OF.isoformat()
    # publishing a night again replaces it whole and leaves nothing behind
    stale = tmp_path / AS_OF.isoformat() / "teams" / "stale.html"
    stale.write_text("old")
    publish_reports(marts_url, AS_OF, tmp_path)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [(AS_OF - timedelta(days=d)).isoformat() for d in (0, 1, 3)] + ["latest"])
    index = (tmp_path / "latest" / "index.html").read_text()
    assert f'href="../{earlier.isoformat()}/index.html"' in index


def test_a_night_that_failed_its_gates_publishes_nothing(marts_url: str, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="failed its data-quality gates"):
        publish_reports(marts_url, AS_OF, tmp_path, quality={"status": "failed"})
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_a_night_without_data_is_refused(marts_url: str, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no row for as_of_date 2027-01-01"):
        publish_reports(marts_url, AS_OF.replace(year=2027, month=1, day=1), tmp_path)
    with pytest.raises(ReportError, match="lacks customer_health"):
        publish_reports(marts_url, AS_OF, tmp_path, schema="no_such_schema")


def test_trend_from_customer_health_when_there_is_no_summary(
    fresh_database_factory: Callable[[], str], tmp_path: Path
) -> None:
    url = fresh_database_factory()
    fill_marts(url, nights=20, schema="other_marts")
    with psycopg.connect(url) as conn:
        conn.execute("drop table other_marts.account_team_summary")
    result = publish_reports(url, AS_OF, tmp_path, schema="other_marts")
    page = result.team("south").html_path.read_text()
    assert "Average health over 20 nights" in page


def test_invoice_only_accounts_with_a_low_p_alive_are_listed_as_probably_lapsed(
        fresh_database_factory: Callable[[], str], tmp_path: Path) -> None:
    """Beside the connect list: the invoice-only accounts whose P(alive) is under
    CHW_LAPSED_P_ALIVE (0.3), least alive first; an alive one and an unscored one are not."""
    url = fresh_database_factory()
    fill_marts(url)
    lapsed, very_lapsed, alive, unscored = accounts_of("north")[:4]
    with psycopg.connect(url) as conn:
        conn.execute("create table marts.customer_purchase_propensity (as_of_date date,"
                     " account_id text, account_team text, last_purchase_on date,"
                     " days_since_last_purchase int, p_alive float8,"
                     " expected_purchases_90d float8)")
        for acct, days, p_alive in ((lapsed, 143, 0.18), (very_lapsed, 310, 0.04),
                                    (alive, 12, 0.91), (unscored, 40, None)):
            conn.execute("insert into marts.customer_purchase_propensity values"
                         " (%s, %s, 'north', %s, %s, %s, %s)",
                         (AS_OF, acct.account_id, AS_OF - timedelta(days=days), days,
                          p_alive, None if p_alive is None else 2 * p_alive))
    result = publish_reports(url, AS_OF, tmp_path / "reports", quality=QUALITY)
    section = _section(result.team("north").html_path.read_text(), "Probably lapsed")
    assert "probably lapsed: last order 143 days ago, P(alive) 0.18" in section
    assert section.index(very_lapsed.account_id) < section.index(lapsed.account_id)
    assert alive.account_id not in section and unscored.account_id not in section
    assert '<span class="count">2</span>' in section
    assert "Probably lapsed" not in result.team("south").html_path.read_text()
