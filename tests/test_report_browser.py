"""A real browser opens a team page and the index: no errors, charts drawn, text escaped.

Screenshots are saved under test-artifacts/ in the checkout (git-ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from report_fixtures import AS_OF, HOSTILE_TEAM, fill_marts

from customer_health.reporting import PublishResult, publish_reports

pytest.importorskip("websockets.sync.client", reason="the DevTools client needs websockets")
from report_browser import CHROMIUM_HINT, chromium_path, open_page  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

PROBE = """JSON.parse(JSON.stringify({
  title: document.title,
  h1: document.querySelector('h1') && document.querySelector('h1').textContent,
  charts: [...document.querySelectorAll('svg.chart')].map(s => {
      const r = s.getBoundingClientRect();
      return {width: r.width, height: r.height, shapes: s.querySelectorAll('path').length};
  }),
  scripts: document.querySelectorAll('script').length,
  text: document.body.innerText,
  tables: document.querySelectorAll('table').length,
  width: document.documentElement.scrollWidth,
}))"""

#: A phone's width (an iPhone 12-15 in portrait, in CSS pixels).
PHONE_WIDTH = 390

# At a phone's width: what sticks out of the viewport outside a sideways-scrolling box,
# and how each account name in a table is laid out (lines against words).
PHONE_PROBE = """JSON.parse(JSON.stringify((() => {
  const vw = document.documentElement.clientWidth;
  const scrolls = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') return true;
    }
    return false;
  };
  const outside = [...document.body.querySelectorAll('*')]
    .filter(el => el.getBoundingClientRect().right > vw + 1 && !scrolls(el))
    .map(el => el.tagName + '.' + el.className);
  const names = [...document.querySelectorAll('td .name')].map(el => ({
    text: el.textContent,
    // pieces between the places a browser may break a line without breaking a word
    words: el.textContent.trim().split(/[\\s)\\/-]+/).filter(Boolean).length,
    lines: new Set([...el.getClientRects()].map(r => Math.round(r.top))).size,
    cell: el.closest('td').getBoundingClientRect().width,
  }));
  const wraps = [...document.querySelectorAll('.table-wrap')].map(w => ({
    scrolls: w.scrollWidth > w.clientWidth, right: w.getBoundingClientRect().right}));
  return {width: document.documentElement.scrollWidth, vw, outside, names, wraps};
})()))"""

pytestmark = pytest.mark.skipif(chromium_path() is None, reason=CHROMIUM_HINT)


@pytest.fixture(scope="module")
def published(fresh_database_factory: Callable[[], str],
              tmp_path_factory: pytest.TempPathFactory) -> PublishResult:
    url = fresh_database_factory()
    fill_marts(url)
    return publish_reports(url, AS_OF, tmp_path_factory.mktemp("reports"),
                           quality={"status": "passed", "failures": [], "warnings": []})


def _save(name: str, png: bytes) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(png)
    return path


def test_team_page_renders_in_chromium(published: PublishResult) -> None:
    run = open_page(published.team("north").html_path, PROBE)
    shot = _save("report-team-north.png", run.screenshot)
    assert run.errors == []
    probe = run.probe
    assert probe["h1"] == "north"
    assert len(probe["charts"]) == 4  # bands, trend, the back-test's churn by band and decile
    for chart in probe["charts"]:
        assert chart["width"] > 200 and chart["height"] > 100 and chart["shapes"] > 3
    assert probe["scripts"] == 0
    assert "<script>alert(1)</script>" in probe["text"]  # shown as text, not run
    assert "Movers" in probe["text"] and "Portfolio" in probe["text"]
    assert probe["width"] <= 1280  # no horizontal overflow at desktop width
    assert shot.stat().st_size > 20_000


def test_team_page_reads_on_a_phone(published: PublishResult) -> None:
    """At 390 px the page never scrolls sideways: wide tables scroll inside their block,
    and account names keep whole words on a line instead of wrapping letter by letter."""
    run = open_page(published.team("north").html_path, PHONE_PROBE, width=PHONE_WIDTH,
                    height=900)
    shot = _save("report-team-north-390px.png", run.screenshot)
    assert run.errors == []
    probe = run.probe
    assert probe["vw"] == PHONE_WIDTH
    assert probe["width"] <= PHONE_WIDTH
    assert probe["outside"] == []
    assert probe["wraps"] and all(w["right"] <= PHONE_WIDTH for w in probe["wraps"])
    assert any(w["scrolls"] for w in probe["wraps"])  # the portfolio does not fit: it scrolls
    assert len(probe["names"]) >= 6
    for name in probe["names"]:
        assert name["lines"] <= name["words"], name  # no word broken over lines
        assert name["cell"] >= 120, name
    assert shot.stat().st_size > 20_000


def test_index_and_hostile_team_render_in_chromium(published: PublishResult) -> None:
    run = open_page(published.index_path, PROBE, height=1100)
    _save("report-index.png", run.screenshot)
    assert run.errors == []
    assert HOSTILE_TEAM in run.probe["text"] and "Passed" in run.probe["text"]
    assert run.probe["scripts"] == 0
    assert "Does the score predict churn?" in run.probe["text"]
    assert len(run.probe["charts"]) == 2  # the back-test's two charts
    for chart in run.probe["charts"]:
        assert chart["width"] > 200 and chart["height"] > 100 and chart["shapes"] > 3

    hostile = open_page(published.team(HOSTILE_TEAM).html_path, PROBE, height=1200)
    assert hostile.errors == []
    assert hostile.probe["h1"] == HOSTILE_TEAM
    assert len(hostile.probe["charts"]) == 2
