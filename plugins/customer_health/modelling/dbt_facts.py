"""The facts the dbt project states once, for the Python that needs them.

- vars of `dbt_project.yml`: the health bands' cut-offs, the NPS rule, the segments
  (the marts gate's suite, the report and the export contract read them here);
- the manifest (`dbt_cosmos.manifest_path()`, parsed once per version of the project):
  each mart's incremental `unique_key`, hence which marts are monthly (and which, without
  one, are rebuilt whole);
- the `current_versions` macro, rendered here so the marts gate counts an account's
  current version by the very rule dbt builds the marts with.

A missing or unreadable project is an error: these facts have no second home.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

from customer_health import settings

#: The folder of the public marts (models/marts): dbt's fqn is (project, folder, model).
MARTS_FOLDER = "marts"
#: The unique_key of the monthly marts (every other mart is keyed by as_of_date).
MONTHLY_KEY = "month"


def project_vars(project_dir: Path | None = None) -> dict[str, Any]:
    """The `vars:` of dbt_project.yml."""
    root = project_dir or settings.dbt_project_dir()
    loaded = yaml.safe_load((root / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    return dict(loaded.get("vars") or {})


def project_var(name: str, project_dir: Path | None = None) -> Any:
    found = project_vars(project_dir)
    if name not in found:
        raise KeyError(f"dbt_project.yml has no var {name!r}")
    return found[name]


def band_thresholds(project_dir: Path | None = None) -> tuple[float, float]:
    """(healthy from, at_risk from): customer_health.health_band's cut-offs."""
    return (project_var("health_healthy_from", project_dir),
            project_var("health_at_risk_from", project_dir))


def health_band(score: float | None, project_dir: Path | None = None) -> str | None:
    """The band of a health_score, as the macro health_band gives it."""
    if score is None:
        return None
    healthy, at_risk = band_thresholds(project_dir)
    return "healthy" if score >= healthy else "at_risk" if score >= at_risk else "critical"


def segments(project_dir: Path | None = None) -> tuple[str, ...]:
    return tuple(project_var("segments", project_dir))


@functools.lru_cache(maxsize=8)
def _mart_keys(manifest: Path) -> dict[str, str]:
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values()
    return {n["name"]: n["config"]["unique_key"] for n in nodes
            if n["resource_type"] == "model" and n["fqn"][1:2] == [MARTS_FOLDER]}


def mart_unique_keys(manifest: Path | None = None) -> dict[str, str]:
    """mart -> its incremental unique_key, from the dbt manifest."""
    if manifest is None:
        from customer_health.modelling.dbt_cosmos import manifest_path

        manifest = manifest_path()
    return dict(_mart_keys(manifest))


def monthly_marts(manifest: Path | None = None) -> frozenset[str]:
    """The marts a night rewrites by whole months (unique_key `month`)."""
    return frozenset(m for m, k in mart_unique_keys(manifest).items() if k == MONTHLY_KEY)


def whole_marts(manifest: Path | None = None) -> frozenset[str]:
    """The marts without an as_of_date (no unique_key): the health score's back-test, a
    table rebuilt each night or a copy that catches up with its intermediate model (macro
    catch_up_plan). WAP's shadow sync leaves them to dbt."""
    return frozenset(m for m, k in mart_unique_keys(manifest).items() if k is None)


def _raise(message: str) -> None:
    raise RuntimeError(message)


def current_versions_sql(relation: str, key: str, as_of_date: datetime.date,
                         project_dir: Path | None = None) -> str:
    """The SQL of dbt's `current_versions(relation, key)` macro for `as_of_date`, rendered
    from macros/as_of.sql and macros/current_version.sql (plain Jinja stands in for the
    few dbt context functions they call). `relation` and `key` must be trusted names."""
    root = project_dir or settings.dbt_project_dir()
    source = "\n".join((root / "macros" / name).read_text(encoding="utf-8")
                       for name in ("as_of.sql", "current_version.sql"))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,  # noqa: S701 (SQL)
                             extensions=["jinja2.ext.do"])  # `do`, used by other macros there
    env.globals.update(
        var=lambda name, default=None: as_of_date.isoformat() if name == "as_of_date"
        else default,
        # as_of_date_str reads modules.pytz only when the var is unset, never here
        modules=type("Modules", (), {"datetime": datetime, "re": re}),
        exceptions=type("Exceptions", (), {"raise_compiler_error": staticmethod(_raise)}),
        # dbt's return() ends the macro; as_of_date_str calls it last on the path used here
        **{"return": lambda value: value},
    )
    template = env.from_string(source + "\n{{ current_versions(relation, key) }}")
    return template.render(relation=relation, key=key).strip()


__all__ = ["band_thresholds", "current_versions_sql", "health_band", "mart_unique_keys",
           "monthly_marts", "project_var", "project_vars", "segments", "whole_marts"]
