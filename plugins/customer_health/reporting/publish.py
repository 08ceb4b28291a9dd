"""Publish a night's reports atomically under the reports folder.

Layout (CHW_REPORTS_DIR, default CHW_HOME/reports):

    <as_of_date>/index.html          all teams, the night's data-quality status, links
    <as_of_date>/glossary.html       what each score, band and list means
    <as_of_date>/quality.html        every data-quality check of the night's run
    <as_of_date>/teams/<stem>.html   one team's page; <stem>.csv its portfolio
    <as_of_date>/dbt-docs/index.html the marts' dbt docs (from the DAG and `chw report`)
    latest -> <newest as_of_date>    a relative symlink (on an object store: a copy)
    LATEST                           on an object store only: the newest night's name

CHW_REPORTS_DIR is a folder or an fsspec URL (`s3://bucket/reports`, with s3fs); on an
object store the night is rendered on local disk and published by
customer_health.reporting.object_store (a staging prefix, then copies, the pointer last).

Every HTML file of a night carries a Content-Security-Policy (csp.py); a night with a
page that does not is refused.

A night is rendered into a hidden temporary folder beside the others and renamed into
place when complete, so no reader ever sees half a night; `latest` is replaced by
renaming a new symlink over it. A failure removes the temporary folder and leaves the
published nights and `latest` as they were.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from upath import UPath

from customer_health import settings
from customer_health.reporting import charts, csp, object_store, render
from customer_health.reporting.data import MartsMissingError, NightData, load_night
from customer_health.reporting.glossary import load_glossary
from customer_health.reporting.model import team_view
from customer_health.reporting.quality_page import QualityRun, load_quality_run

NIGHT_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LATEST = "latest"
QUALITY_PAGE = "quality.html"
STALE_SECONDS = 6 * 3600
_TEMP_PREFIXES = (".tmp-", ".old-", ".latest-")


class ReportError(RuntimeError):
    """The night's reports cannot be published (the message says why)."""


@dataclass(frozen=True)
class TeamReport:
    team: str
    stem: str
    html_path: Path | UPath
    csv_path: Path | UPath
    accounts: int
    #: chart name -> the data its chart was drawn from (the e-mail draws them as PNG)
    chart_data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class PublishResult:
    as_of_date: date
    reports_dir: Path | UPath
    night_dir: Path | UPath
    index_path: Path | UPath
    latest: Path | UPath
    teams: tuple[TeamReport, ...]
    seconds: float

    def team(self, name: str) -> TeamReport:
        for report in self.teams:
            if report.team == name:
                return report
        raise KeyError(name)


def safe_file_stem(team: str) -> str:
    """A file name stem for a team name from the data: lowercase ASCII letters, digits, '-'.

    The result never holds a separator or a dot, so it cannot leave its folder; a name
    with nothing usable becomes `team`. Collisions are resolved by `assign_stems`.
    """
    ascii_name = unicodedata.normalize("NFKD", team).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return stem or "team"


def assign_stems(teams: Iterable[str]) -> dict[str, str]:
    """team -> a unique stem; teams whose stems collide get a short hash of their name."""
    names = sorted(set(teams))
    counts = Counter(safe_file_stem(t) for t in names)
    stems = {}
    for team in names:
        stem = safe_file_stem(team)
        if counts[stem] > 1:
            stem = f"{stem}-{hashlib.sha256(team.encode()).hexdigest()[:8]}"
        stems[team] = stem
    return stems


def _inside(folder: Path, name: str) -> Path:
    """folder/name, refusing anything that would land outside folder."""
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise ReportError(f"refusing to write {name!r} outside {folder}")
    return path


def _safe_href(value: Any) -> str | None:
    """A link target for the quality docs: http(s) or a relative path, nothing else."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if re.match(r"^https?://", value, re.I):
        return value
    if ":" in value.split("/", 1)[0] or value.startswith(("/", "\\")):
        return None  # other schemes (javascript:, data:, file:) and absolute paths
    return value


def published_nights(root: Path) -> list[str]:
    """The published nights' folder names, newest first."""
    if not root.is_dir():
        return []
    return sorted(
        (p.name for p in root.iterdir()
         if NIGHT_NAME.match(p.name) and p.is_dir() and not p.is_symlink()),
        reverse=True,
    )


def _clean_stale(root: Path) -> None:
    """Remove temporary leftovers of crashed runs (old enough not to be a run in progress)."""
    now = time.time()
    for path in root.iterdir():
        if path.name.startswith(_TEMP_PREFIXES):
            try:
                if now - path.lstat().st_mtime < STALE_SECONDS:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                continue


def _render_night(night: NightData, folder: Path, quality: dict[str, Any] | None,
                  earlier: list[str], checks: QualityRun | None) -> list[TeamReport]:
    currency = settings.reporting_currency()
    generated_at = datetime.now(UTC)
    teams_dir = folder / "teams"
    teams_dir.mkdir()
    stems = assign_stems(night.accounts_by_team)
    reports, index_rows = [], []
    for team in sorted(night.accounts_by_team, key=str.casefold):
        stem = stems[team]
        view = team_view(
            team,
            night.accounts_by_team[team],
            night.as_of_date,
            night.trend.get(team, []),
            night.nrr.get(team),
            night.nrr_12m.get(team),
            night.nps_90d.get(team),
        )
        view.backtest = night.backtest_by_team.get(team)
        html_path = _inside(teams_dir, f"{stem}.html")
        csv_path = _inside(teams_dir, f"{stem}.csv")
        html_path.write_text(
            render.render_team_page(view, as_of_date=night.as_of_date, currency=currency,
                                    stem=stem, generated_at=generated_at),
            encoding="utf-8",
        )
        render.write_team_csv(view, csv_path)
        chart_data = {charts.BANDS: view.headline.bands, charts.TREND: view.trend}
        if view.backtest is not None:
            chart_data |= {charts.CHURN_BY_BAND: view.backtest, charts.CALIBRATION: view.backtest}
        reports.append(TeamReport(team, stem, html_path, csv_path, view.headline.accounts,
                                  chart_data))
        index_rows.append({"team": team, "href": f"teams/{stem}.html", "h": view.headline})
    quality_href = _safe_href((quality or {}).get("docs_path"))
    if checks is not None:
        (folder / QUALITY_PAGE).write_text(render.render_quality(checks), encoding="utf-8")
        quality_href = QUALITY_PAGE
    (folder / "index.html").write_text(
        render.render_index(
            as_of_date=night.as_of_date,
            currency=currency,
            teams=index_rows,
            quality=quality,
            quality_href=quality_href,
            marts_docs_href=_safe_href((quality or {}).get("marts_docs_path")),
            earlier_nights=earlier,
            generated_at=generated_at,
            backtest=night.backtest,
        ),
        encoding="utf-8",
    )
    (folder / "glossary.html").write_text(
        render.render_glossary(load_glossary(), night.as_of_date), encoding="utf-8"
    )
    return reports


def _check_policies(folder: Path) -> None:
    """Refuse a night holding an HTML page without a Content-Security-Policy."""
    for page in sorted(folder.rglob("*.htm*")):
        if page.suffix.lower() in (".html", ".htm") and not csp.has_policy(
                page.read_text(encoding="utf-8", errors="replace")):
            raise ReportError(f"{page.relative_to(folder)} carries no Content-Security-Policy:"
                              " refusing to publish it")


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename the finished night into place (replacing an earlier run of the same night)."""
    if not final.exists() and not final.is_symlink():
        os.rename(tmp, final)
        return
    old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def point_latest(root: Path) -> Path:
    """Make `latest` a relative symlink to the newest night, swapped in by one rename."""
    link = root / LATEST
    nights = published_nights(root)
    if link.exists() and not link.is_symlink():
        raise ReportError(f"{link} exists and is not a symlink: move it away")
    if not nights:
        return link
    if link.is_symlink() and os.readlink(link) == nights[0]:
        return link
    tmp = root / f".latest-{uuid.uuid4().hex[:8]}"
    os.symlink(nights[0], tmp, target_is_directory=True)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return link


def publish_reports(url: str, as_of_date: date,
                    reports_dir: Path | UPath | str | None = None,
                    quality: dict | None = None, schema: str = "marts",
                    extra_folders: dict[str, Path] | None = None) -> PublishResult:
    """Render and publish every team's report of `as_of_date` from the marts at `url`.

    `quality` is the night's data-quality status shown on the index, e.g.
    {"status": "passed", "failures": [], "warnings": [...], "run_id": "scheduled__…"}.
    With a `run_id`, the night gets `quality.html`: every check that run stored in
    `audit.quality_results` for `as_of_date` (and no other run's), linked from the index;
    without one, an optional "docs_path" (relative to the night's folder, or an http(s)
    URL) is linked instead. A night whose status is "failed" is refused: it publishes
    nothing and `latest` stays where it was. `extra_folders` (name -> folder, e.g.
    {"dbt-docs": folder}) are copied into the night's folder before it is swapped in, so
    they appear with it atomically; every HTML page among them must carry a
    Content-Security-Policy, or nothing is published (`ReportError`).
    """
    started = time.perf_counter()
    if quality and str(quality.get("status", "")).lower() == "failed":
        raise ReportError(
            f"the night {as_of_date} failed its data-quality gates: no report is published"
        )
    root = _root(reports_dir)
    try:
        night = load_night(url, as_of_date, schema)
    except MartsMissingError as exc:
        raise ReportError(str(exc)) from exc
    run_id = (quality or {}).get("run_id")
    checks = load_quality_run(url, as_of_date, str(run_id)) if run_id else None
    name = as_of_date.isoformat()
    if object_store.is_remote(root):
        return _publish_remote(root, night, quality, checks, extra_folders, started)
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    earlier = [n for n in published_nights(root) if n != name][:60]
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        teams = _render_complete(night, tmp, quality, earlier, checks, extra_folders)
        tmp.chmod(0o755)
        final = _inside(root, name)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    latest = point_latest(root)
    return _result(root, final, latest, night.as_of_date, teams, started)


def _root(reports_dir: Path | UPath | str | None) -> Path | UPath:
    if reports_dir is None:
        return settings.reports_dir()
    if isinstance(reports_dir, UPath) and object_store.is_remote(reports_dir):
        return reports_dir
    return settings.storage_location(str(reports_dir))


def _render_complete(night: NightData, folder: Path, quality: dict[str, Any] | None,
                     earlier: list[str], checks: QualityRun | None,
                     extra_folders: dict[str, Path] | None) -> list[TeamReport]:
    """Render the night into `folder` with its extra folders, and check every page."""
    teams = _render_night(night, folder, quality, earlier, checks)
    for folder_name, source in (extra_folders or {}).items():
        shutil.copytree(source, _inside(folder, folder_name))
    _check_policies(folder)
    return teams


def _result(root: Path | UPath, final: Path | UPath, latest: Path | UPath, day: date,
            teams: list[TeamReport], started: float) -> PublishResult:
    return PublishResult(
        as_of_date=day,
        reports_dir=root,
        night_dir=final,
        index_path=final / "index.html",
        latest=latest,
        teams=tuple(
            replace(t, html_path=final / "teams" / t.html_path.name,
                    csv_path=final / "teams" / t.csv_path.name)
            for t in teams
        ),
        seconds=time.perf_counter() - started,
    )


def _publish_remote(root: UPath, night: NightData, quality: dict[str, Any] | None,
                    checks: QualityRun | None, extra_folders: dict[str, Path] | None,
                    started: float) -> PublishResult:
    """Render on local disk, then publish to the object store (reporting.object_store)."""
    name = night.as_of_date.isoformat()
    object_store.clean_stale(root, STALE_SECONDS)
    nights = object_store.published_nights(root, NIGHT_NAME)
    earlier = [n for n in nights if n != name][:60]
    with tempfile.TemporaryDirectory(prefix=f"chw-night-{name}-") as scratch:
        local = Path(scratch) / name
        local.mkdir()
        teams = _render_complete(night, local, quality, earlier, checks, extra_folders)
        newest = not nights or name >= nights[0]
        object_store.publish_night(local, root, name, LATEST, newest)
    return _result(root, root / name, root / LATEST, night.as_of_date, teams, started)
