"""The dbt docs published beside a night's reports (`dbt-docs/index.html`)."""

from __future__ import annotations

from pathlib import Path


def generate_dbt_docs(url: str, out_dir: Path) -> Path:
    """`dbt docs generate --static` of the published marts into `out_dir`: one
    self-contained index.html (every model, column and test, with the catalog's types)
    that analysts can open from the reports, with a Content-Security-Policy that lets
    only dbt's own inline script run (reporting/csp.py). Uses a target path of its own,
    so that `dbt retry` still sees the night's build."""
    import shutil
    import tempfile

    from customer_health.modelling.transform import run_dbt
    from customer_health.reporting import csp

    scratch = Path(tempfile.mkdtemp(prefix="chw-dbt-docs-"))
    try:
        run_dbt(["docs", "generate", "--static"], url, target_path=scratch)
        out_dir.mkdir(parents=True, exist_ok=True)
        page = (scratch / "static_index.html").read_text(encoding="utf-8")
        page = csp.with_policy(page, csp.dbt_docs_policy(page))
        (out_dir / "index.html").write_text(page, encoding="utf-8")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir / "index.html"
