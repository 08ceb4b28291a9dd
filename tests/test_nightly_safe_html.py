"""No text from an export reaches a published page unescaped (issue 13, item 4), end to
end through the nightly DAG (`chw run`, Airflow's dag.test()).

Markup that runs a script when printed raw goes into every free-text and enum column
(and the currency code) of every entity's export. That night fails its gates (the
enum values are not in the contract) after storing what it observed, markup included;
the exporter re-delivers the night with valid enums but the free text still hostile,
and it publishes. Then every file of the published tree is scanned: no raw markup
anywhere (pages, dbt docs, anything else but the team CSVs, which are data), nothing
the failed run stored, every HTML page with a Content-Security-Policy, and Chromium
opens the pages (the dbt docs' app included, under its policy) without running any of it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from datetime import date
from pathlib import Path

import psycopg
import pytest
from dag_runs import chw
from published_scan import files_containing, payload, published_files, tags_in, unescaped

from customer_health.contract import ENTITIES, Column, Entity
from customer_health.generate import generate_landing
from customer_health.reporting import csp

pytestmark = pytest.mark.dag_run

DAY = date(2026, 11, 1)
#: ISO 4217 codes joined to the rates seed: hostile only in the failing night.
CODES = ("currency",)
#: An enum no model reads: hostile in the good night too, its check downgraded to a
#: warning, so the observed markup reaches the index's warnings and quality.html.
WARNED_ENUM = ("subscriptions", "billing_interval")
WARN_IT = {"CHW_QUALITY_SEVERITY": "raw.billing_subscriptions:in_set(billing_interval)=warn"}


def enum_columns(entity: Entity) -> list[Column]:
    return [c for c in entity.columns if c.choices]


def free_text_columns(entity: Entity) -> list[Column]:
    """Text columns that are neither an enum, a key or reference (`*_id`) nor a code."""
    return [c for c in entity.columns if c.type == "text" and not c.choices
            and not c.name.endswith("_id") and c.name not in CODES]


def tag(night: str, entity: Entity, column: Column) -> str:
    return f"chwxss-{night}-{entity.name}-{column.name}"


def poison(landing: Path, night: str, columns) -> set[str]:
    """Append `payload` to every row's value of `columns(entity)` in every export file of
    DAY (keeping each folder's manifest right); return the tags put in."""
    tags = set()
    for entity in ENTITIES:
        folder = landing / entity.system / DAY.isoformat()
        path = folder / entity.file_name
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, list(reader)
        for column in columns(entity):
            hostile = payload(tag(night, entity, column).removeprefix("chwxss-"))
            for row in rows:
                row[column.name] = row[column.name] + hostile
            tags.add(tag(night, entity, column))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_bytes(out.getvalue().encode("utf-8"))
        manifest = folder / "_manifest.json"
        if manifest.exists():
            doc = json.loads(manifest.read_text())
            doc["files"][entity.file_name]["sha256"] = hashlib.sha256(
                path.read_bytes()).hexdigest()
            manifest.write_text(json.dumps(doc, indent=2))
    return tags


def test_hostile_exports_never_reach_a_page_unescaped(
        tmp_path: Path, fresh_database_factory) -> None:
    home, url = tmp_path / "home", fresh_database_factory()
    clean = tmp_path / "clean"
    generate_landing(clean, accounts=40, start=DAY, days=1, seed=13, history_days=60)
    bad, good = tmp_path / "bad", tmp_path / "good"
    shutil.copytree(clean, bad)
    shutil.copytree(clean, good)
    failed_tags = poison(bad, "fail", lambda e: free_text_columns(e) + enum_columns(e) + [
        c for c in e.columns if c.name in CODES])
    good_tags = poison(good, "good", lambda e: free_text_columns(e) + [
        c for c in enum_columns(e) if (e.name, c.name) == WARNED_ENUM])
    # 14 free-text columns, 9 enums, 4 currencies; every entity has some
    assert (len(failed_tags), len(good_tags)) == (27, 15)
    assert {t.split("-")[2] for t in failed_tags} == {e.name for e in ENTITIES}
    reports = home / "reports"

    # 1. the hostile night fails (its enums break the contract) and stores what it saw
    proc = chw(["run", "--date", str(DAY), "--landing", str(bad)], home, url)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "failed task: validate_raw" in proc.stderr
    with psycopg.connect(url) as conn:
        stored = conn.execute(
            "select count(*), count(distinct run_id) from audit.quality_results"
            " where as_of_date = %s and not success and observed_value like '%%chwxss-fail-%%'",
            (DAY,)).fetchone()
    assert stored[0] > 0  # a value of the failed night is stored...
    assert not reports.exists() or not list(reports.iterdir())  # ...and nothing published

    # 2. the night re-delivered with valid enums (free text still hostile, one enum
    #    warned about) publishes
    proc = chw(["run", "--date", str(DAY), "--landing", str(good)], home, url, **WARN_IT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_tree(reports, good_tags, failed_tags)
    _open_in_chromium(reports / DAY.isoformat())

    # 3. re-rendered from the stored status, as an engineer would (`chw report`)
    proc = chw(["report", "--date", str(DAY), "--no-docs"], home, url, **WARN_IT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_tree(reports, good_tags, failed_tags, with_docs=False)


def _check_tree(reports: Path, good_tags: set[str], failed_tags: set[str],
                with_docs: bool = True) -> None:
    night = reports / DAY.isoformat()
    files = published_files(reports)
    assert {p.suffix for p in files} == {".html", ".csv"}
    assert not (night / "quality").exists()  # GX Data Docs stay out of the reports
    # no raw markup in any file but the CSVs (data for spreadsheets)
    assert unescaped(reports) == {}
    # nothing the failed run stored, in any form, in any file (nor in a file's name)
    assert files_containing(reports, "chwxss-fail") == []
    found = tags_in(reports)
    assert set(found) <= good_tags, sorted(set(found) - good_tags)
    # and the scan is not vacuous: the good night's hostile names are there, as text
    pages = tags_in(reports, (".html",))
    for shown in ("accounts-account_name", "accounts-account_team", "accounts-owner_email"):
        assert any(f"{night.name}/teams/" in f for f in pages[f"chwxss-good-{shown}"]), shown
    assert f"{night.name}/index.html" in pages["chwxss-good-accounts-account_team"]
    # the warned enum's observed sample: on the index (warnings) and the quality page
    assert pages["chwxss-good-subscriptions-billing_interval"] == {
        f"{night.name}/index.html", f"{night.name}/quality.html"}
    # every HTML page carries a policy: ours run no script, dbt's only its own
    html_pages = [p for p in files if p.suffix == ".html"]
    assert len(html_pages) >= 5
    for page in html_pages:
        policy = csp.page_policy(page.read_text(encoding="utf-8"))
        if page.parent.name == "dbt-docs":
            assert policy is not None and policy.startswith("default-src 'none'; script-src ")
            assert "'unsafe-inline'" not in policy.split(";")[1]
            assert "'unsafe-eval'" not in policy
        else:
            assert policy == csp.REPORT_POLICY, page
    assert (night / "dbt-docs" / "index.html").is_file() is with_docs
    assert (night / "quality.html").is_file()


PROBE = """JSON.parse(JSON.stringify({
  text: document.body.innerText,
  scripts: document.querySelectorAll('script').length,
  injected: document.querySelectorAll('img[src="x"], img[onerror]').length,
  canvases: document.querySelectorAll('canvas').length,
}))"""


def _open_in_chromium(night: Path) -> None:
    pytest.importorskip("websockets.sync.client", reason="the DevTools client needs websockets")
    from report_browser import CHROMIUM_HINT, chromium_path, open_page

    if chromium_path() is None:
        pytest.skip(CHROMIUM_HINT)
    team_pages = sorted((night / "teams").glob("*.html"))
    for page in [night / "index.html", night / "quality.html", *team_pages[:2]]:
        run = open_page(page, PROBE, height=1200)
        assert run.errors == [], (page.name, run.errors[:3])
        assert run.probe["scripts"] == 0 and run.probe["injected"] == 0, page.name
        assert "onerror=alert(" in run.probe["text"], page.name  # shown as text
        assert "chwxss-good-" in run.probe["text"], page.name
    # dbt's docs app works under its policy: overview, a model page, the lineage graph
    docs = night / "dbt-docs" / "index.html"
    if not docs.is_file():
        return
    for fragment, expect in (("", "Welcome"), ("!/model/model.chw.customer_health", "health_band"),
                             ("!/model/model.chw.customer_health?g_v=1", "health_band")):
        run = open_page(docs, PROBE, height=1000, fragment=fragment, settle=2)
        refused = [e for e in run.errors if "Content Security Policy" in e
                   and "favicon.ico" not in e]  # dbt's own broken favicon link
        assert refused == [], refused[:3]
        assert not [e for e in run.errors if e.startswith("dialog")]
        assert expect in run.probe["text"], fragment
        assert run.probe["injected"] == 0
    assert run.probe["canvases"] > 0  # the lineage graph was drawn
