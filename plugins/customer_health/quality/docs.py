"""Data Docs: GX's static HTML site of the suites and their latest validation results.

For data engineers only, never published with the reports: GX prints the observed
unexpected values (export data) unescaped and lists every stored run, failed ones
included. `build_data_docs` refuses a folder inside the reports folder; the night's
data-quality page for account teams is the reports' own `quality.html`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from customer_health import settings
from customer_health.quality.config import load_config
from customer_health.quality.context import open_context

SITE = "local_site"


def _prune(results_dir: Path, keep_days: int) -> None:
    """Drop stored validation results older than `keep_days` (the site lists them all)."""
    if not results_dir.is_dir():
        return
    cutoff = time.time() - keep_days * 86_400
    for path in results_dir.rglob("*.json"):
        if path.stat().st_mtime < cutoff:
            path.unlink()


def build_data_docs(target_dir: Path, root: Path | None = None) -> Path:
    """Render the Data Docs site (every committed suite, and the validation results kept:
    those of the last `data_docs.keep_days` days) into `target_dir`, replacing what it
    held; return its index.html. Needs no database. Raises ValueError for a folder
    inside the published reports (CHW_REPORTS_DIR)."""
    reports = settings.reports_dir()
    if isinstance(reports, Path) and Path(target_dir).resolve().is_relative_to(reports):
        raise ValueError(
            f"refusing to build GX Data Docs into {target_dir}: it is inside the published "
            f"reports ({reports}), and Data Docs print export values unescaped; build them "
            "elsewhere (they are for data engineers; teams get quality.html)")
    context = open_context(root)
    gx_dir = Path(context.root_directory)
    _prune(gx_dir / "uncommitted" / "validations", load_config().docs_keep_days)
    built = context.build_data_docs(site_names=[SITE])
    site = Path(str(built[SITE]).removeprefix("file://")).parent
    target = Path(target_dir)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(site, target)
    return target / "index.html"
