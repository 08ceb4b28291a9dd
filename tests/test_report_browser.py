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
    assert len(probe["charts"]) == 2
    for chart in probe["charts"]:
        assert chart["width"] > 200 and chart["height"] > 100 and chart["shapes"] > 3
    assert probe["scripts"] == 0
    assert "<script>alert(1)</script>" in probe["text"]  # shown as text, not run
    assert "Movers" in probe["text"] and "Portfolio" in probe["text"]
    assert probe["width"] <= 1280  # no horizontal overflow at desktop width
    assert shot.stat().st_size > 20_000


def test_index_and_hostile_team_render_in_chromium(published: PublishResult) -> None:
    run = open_page(published.index_path, PROBE, height=1100)
    _save("report-index.png", run.screenshot)
    assert run.errors == []
    assert HOSTILE_TEAM in run.probe["text"] and "Passed" in run.probe["text"]
    assert run.probe["scripts"] == 0

    hostile = open_page(published.team(HOSTILE_TEAM).html_path, PROBE, height=1200)
    assert hostile.errors == []
    assert hostile.probe["h1"] == HOSTILE_TEAM
    assert len(hostile.probe["charts"]) == 2
