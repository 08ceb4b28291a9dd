"""publish_reports to an object store (CHW_REPORTS_DIR=s3://...): moto's S3 server on
127.0.0.1, real marts (tests/report_fixtures.py), read back with s3fs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from report_fixtures import AS_OF, fill_marts, teams
from s3_server import S3Server, s3_server
from upath import UPath

from customer_health import settings
from customer_health.reporting import ReportError, publish_reports
from customer_health.reporting.object_store import POINTER

BUCKET = "chw-reports-test"
ROOT = f"s3://{BUCKET}/reports"
QUALITY = {"status": "passed", "failures": [], "warnings": []}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        saved = {k: os.environ.get(k) for k in server.env}
        os.environ.update(server.env)
        try:
            server.make_bucket(BUCKET)
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="module")
def marts_url(fresh_database_factory: Callable[[], str]) -> str:
    url = fresh_database_factory()
    fill_marts(url)
    return url


def _keys(server: S3Server, prefix: str) -> set[str]:
    base = f"{BUCKET}/reports/{prefix}"
    return {k[len(base) + 1:] for k in server.fs().find(base)}


def test_reports_dir_is_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHW_REPORTS_DIR", ROOT)
    assert isinstance(settings.reports_dir(), UPath)
    assert str(settings.reports_dir()).startswith("s3://")
    monkeypatch.setenv("CHW_REPORTS_DIR", "file:///srv/reports")
    assert settings.reports_dir() == Path("/srv/reports")


def test_publish_to_s3_latest_copy_and_pointer(s3: S3Server, marts_url: str) -> None:
    earlier = AS_OF - timedelta(days=1)
    first = publish_reports(marts_url, earlier, ROOT, quality=QUALITY)
    assert first.night_dir.path.endswith(f"reports/{earlier}")
    night = _keys(s3, earlier.isoformat())
    assert {"index.html", "glossary.html"} <= night
    assert {f"teams/{t.stem}.html" for t in first.teams} <= night
    assert len(first.teams) == len(teams())
    assert _keys(s3, "latest") == night
    assert s3.fs().cat(f"{BUCKET}/reports/{POINTER}").decode().strip() == earlier.isoformat()

    result = publish_reports(marts_url, AS_OF, ROOT, quality=QUALITY)
    assert s3.fs().cat(f"{BUCKET}/reports/{POINTER}").decode().strip() == AS_OF.isoformat()
    assert _keys(s3, "latest") == _keys(s3, AS_OF.isoformat())
    latest_index = s3.fs().cat(f"{BUCKET}/reports/latest/index.html").decode()
    assert latest_index == s3.fs().cat(f"{BUCKET}/reports/{AS_OF}/index.html").decode()
    assert f'href="../{earlier}/index.html"' in latest_index  # resolves from latest/ too
    # a team page reads back through the result's paths (e-mail delivery reads them so)
    report = result.teams[0]
    key = f"{BUCKET}/reports/{AS_OF}/teams/{report.stem}.html"
    assert report.html_path.read_text(encoding="utf-8") == s3.fs().cat(key).decode()
    # nothing left under a staging prefix
    assert not [k for k in s3.fs().ls(f"{BUCKET}/reports") if "/.tmp-" in k]

    # re-publishing an earlier night does not move latest
    publish_reports(marts_url, earlier, ROOT, quality=QUALITY)
    assert s3.fs().cat(f"{BUCKET}/reports/{POINTER}").decode().strip() == AS_OF.isoformat()


def test_republish_removes_what_the_night_no_longer_has(s3: S3Server, marts_url: str) -> None:
    publish_reports(marts_url, AS_OF, ROOT, quality=QUALITY)
    stray = f"{BUCKET}/reports/{AS_OF}/teams/gone.html"
    s3.fs().pipe(stray, b"<p>an earlier run's team</p>")
    s3.fs().pipe(f"{BUCKET}/reports/latest/teams/gone.html", b"x")
    publish_reports(marts_url, AS_OF, ROOT, quality=QUALITY)
    assert not s3.fs().exists(stray)
    assert "teams/gone.html" not in _keys(s3, "latest")


def test_refused_night_leaves_the_bucket_as_it_was(s3: S3Server, marts_url: str,
                                                    tmp_path: Path) -> None:
    publish_reports(marts_url, AS_OF, ROOT, quality=QUALITY)
    before = {k: s3.fs().info(k)["ETag"] for k in s3.fs().find(f"{BUCKET}/reports")}
    bad = tmp_path / "docs"
    bad.mkdir()
    (bad / "index.html").write_text("<html><body>no policy</body></html>")
    with pytest.raises(ReportError, match="Content-Security-Policy"):
        publish_reports(marts_url, AS_OF, ROOT, quality=QUALITY, extra_folders={"docs": bad})
    after = {k: s3.fs().info(k)["ETag"] for k in s3.fs().find(f"{BUCKET}/reports")}
    assert after == before
