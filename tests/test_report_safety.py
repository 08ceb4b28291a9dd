"""Every published file is safe to open: the night's data-quality page shows only its
own run's checks, with observed values (which quote export data) escaped; every HTML
page carries a Content-Security-Policy, or the night is not published.

The end-to-end proof with hostile exports through the DAG is
tests/test_nightly_safe_html.py; this module checks the same on hand-made marts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from markupsafe import escape
from published_scan import payload, published_files, tags_in, unescaped
from report_fixtures import AS_OF, fill_marts

from customer_health.quality.results import RESULTS_DDL
from customer_health.reporting import PublishResult, ReportError, csp, publish_reports

GOOD_RUN, FAILED_RUN, OTHER_NIGHT_RUN = "scheduled__good", "manual__failed", "scheduled__other"


def _store(url: str, rows: list[tuple]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(RESULTS_DDL)
        conn.cursor().executemany(
            "insert into audit.quality_results (run_id, as_of_date, suite, expectation,"
            " severity, success, observed_value, details, checked_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, '{}', %s)", rows)


@pytest.fixture(scope="module")
def marts_url(fresh_database_factory: Callable[[], str]) -> str:
    url = fresh_database_factory()
    fill_marts(url)
    at = datetime(2026, 11, 21, 2, tzinfo=UTC)
    failed_sample = json.dumps([payload("failed-run-segment")])
    good_sample = json.dumps([payload("good-run-industry")])
    _store(url, [
        # an earlier, failed run of the same night: its stored sample must not show
        (FAILED_RUN, AS_OF, "raw.crm_accounts", "in_set(segment)", "block", False,
         f"1 of 9 rows unexpected, e.g. {failed_sample}", at),
        # another night's run
        (OTHER_NIGHT_RUN, AS_OF.replace(day=19), "raw.crm_accounts", "in_set(segment)",
         "block", False, payload("other-night"), at),
        # the run that publishes: a pass, a warning quoting export text, a marts check
        (GOOD_RUN, AS_OF, "raw.crm_accounts", "in_set(segment)", "block", True, "0 of 9 rows"
         " unexpected", at),
        (GOOD_RUN, AS_OF, "raw.crm_accounts", "odd_industry", "warn", False,
         f"2 of 9 rows unexpected, e.g. {good_sample}", at),
        (GOOD_RUN, AS_OF, "marts.customer_health", "between(health_score)", "block", True,
         "0 of 12 rows unexpected", at),
    ])
    return url


@pytest.fixture(scope="module")
def published(marts_url: str, tmp_path_factory: pytest.TempPathFactory) -> PublishResult:
    quality = {"status": "warnings", "failures": [], "run_id": GOOD_RUN,
               "warnings": [f"raw.crm_accounts / odd_industry: observed {payload('good-run-idx')}"]}
    return publish_reports(marts_url, AS_OF, tmp_path_factory.mktemp("reports"),
                           quality=quality)


def test_the_quality_page_shows_its_own_run_escaped(published: PublishResult) -> None:
    page = (published.night_dir / "quality.html").read_text()
    index = published.index_path.read_text()
    assert 'href="quality.html"' in index
    assert "3 checks, 2 passed, 0 failed, 1 warning." in " ".join(page.split())
    assert "odd_industry" in page and "between(health_score)" in page
    # the warning's sample is there, as text
    observed = f"2 of 9 rows unexpected, e.g. {json.dumps([payload('good-run-industry')])}"
    assert str(escape(observed)) in page
    tags = tags_in(published.reports_dir)
    assert set(tags) == {"chwxss-good-run-industry", "chwxss-good-run-idx"}
    assert tags["chwxss-good-run-idx"] == {f"{AS_OF}/index.html"}
    # nothing another run stored: not the failed run of the night, not another night's
    assert unescaped(published.reports_dir) == {}


def test_every_page_carries_the_policy(published: PublishResult) -> None:
    pages = [p for p in published_files(published.reports_dir) if p.suffix == ".html"]
    assert len(pages) == 3 + len(published.teams)  # index, glossary, quality, teams
    for page in pages:
        text = page.read_text()
        assert csp.page_policy(text) == csp.REPORT_POLICY, page
    assert "script-src" not in csp.REPORT_POLICY and "default-src 'none'" in csp.REPORT_POLICY


def test_a_page_without_a_policy_is_not_published(marts_url: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("<html><head><title>x</title></head><body></body></html>")
    with pytest.raises(ReportError, match="docs/index.html carries no Content-Security-Policy"):
        publish_reports(marts_url, AS_OF, tmp_path / "reports", extra_folders={"docs": docs})
    assert [p.name for p in (tmp_path / "reports").iterdir()] == []
    (docs / "index.html").write_text(csp.with_policy(
        (docs / "index.html").read_text(), csp.REPORT_POLICY))
    result = publish_reports(marts_url, AS_OF, tmp_path / "reports", extra_folders={"docs": docs})
    assert csp.has_policy((result.night_dir / "docs" / "index.html").read_text())


def test_a_policy_allows_exactly_the_pages_own_scripts() -> None:
    page = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>t</title>"
            "<script>var a = '<script>';</script><SCRIPT defer>b()</SCRIPT></head>"
            "<body></body></html>")
    hashes = csp.inline_script_hashes(page)
    # sha256 of "var a = '<script>';" and of "b()", base64 (computed independently)
    assert hashes == ["'sha256-ZP7XK8kTAxW82j6h/uVp3ksOh4xMFF22Clekqnj+b5o='",
                      "'sha256-cf242PFc/kb7xD0Qzhsmd9vvRkc+cWFmbi+k+YvtdKc='"]
    policy = csp.dbt_docs_policy(page)
    assert "script-src " + " ".join(hashes) + ";" in policy
    assert "unsafe-inline'; img" in policy and "'unsafe-eval'" not in policy
    guarded = csp.with_policy(page, policy)
    assert guarded.index("Content-Security-Policy") < guarded.index("<script")
    assert guarded.startswith('<!doctype html><html><head><meta charset="utf-8"><meta http-equiv')
    assert csp.has_policy(guarded) and not csp.has_policy(page)
    with pytest.raises(csp.CspError, match="already"):
        csp.with_policy(guarded, policy)
    with pytest.raises(csp.CspError, match="external script"):
        csp.inline_script_hashes('<head><script src="https://cdn.example/x.js"></script>')


def test_the_quality_page_renders_in_chromium(published: PublishResult) -> None:
    pytest.importorskip("websockets.sync.client", reason="the DevTools client needs websockets")
    from report_browser import CHROMIUM_HINT, chromium_path, open_page

    if chromium_path() is None:
        pytest.skip(CHROMIUM_HINT)
    probe = """JSON.parse(JSON.stringify({text: document.body.innerText,
      scripts: document.querySelectorAll('script').length,
      injected: document.querySelectorAll('img[src="x"], img[onerror]').length,
      rows: document.querySelectorAll('tbody tr').length}))"""
    run = open_page(published.night_dir / "quality.html", probe, height=1000)
    assert run.errors == []  # no CSP refusal, no dialog, no exception
    assert run.probe["scripts"] == 0 and run.probe["injected"] == 0
    assert 'onerror=alert(\\"chwxss-good-run-industry\\")' in run.probe["text"]
    assert run.probe["rows"] == 1 + 3  # the warning, then every check
    assert "chwxss-failed-run" not in run.probe["text"]
