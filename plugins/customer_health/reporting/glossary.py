"""The thresholds and formulas the glossary page explains.

The figures are the dbt project's (vars in dbt_project.yml, weights in the
health_score_weights seed), read from the checkout when it is there, so the glossary
says what the marts did; the defaults below are used where it is not. The health bands'
cut-offs have no default: they are read from dbt_project.yml (customer_health.modelling.dbt_facts).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from customer_health import settings
from customer_health.modelling import dbt_facts

DEFAULT_VARS: dict[str, int] = {
    "inactivity_active_days": 30,
    "inactivity_cooling_days": 60,
    "inactivity_dormant_days": 90,
    "engagement_window_days": 90,
    "engagement_full_touches": 12,
    "support_window_days": 90,
    "sentiment_window_days": 180,
    "billing_window_days": 90,
    "win_back_days": 365,
    "backtest_horizon_days": 90,
}
DEFAULT_WEIGHTS = {
    "default": {"engagement": 0.30, "support": 0.20, "sentiment": 0.20, "billing": 0.30},
}
#: Report thresholds (the report's own, not the marts').
CONNECT_AFTER_DAYS = 30
DETRACTOR_BELOW = 50
RENEWAL_WINDOW_DAYS = 90
MOVERS_SHOWN = 10
LIST_LIMIT = 50
#: The health components (customer_health.scored_components counts those with data).
COMPONENT_COUNT = 4
#: A score resting on fewer components than this is marked "thin evidence" in the report
#: (billing alone scores a new customer 100 "healthy"; that is not a finding yet).
THIN_EVIDENCE_BELOW = 2


def band_rules(healthy_from: float, at_risk_from: float) -> dict[str, str]:
    """Each band's score range in words, from the cut-offs (dbt_facts.band_thresholds)."""
    return {"healthy": f"{healthy_from:g} or more",
            "at_risk": f"{at_risk_from:g} to under {healthy_from:g}",
            "critical": f"under {at_risk_from:g}"}


@dataclass
class Glossary:
    vars: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_VARS))
    weights: dict[str, dict[str, float]] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    connect_after_days: int = CONNECT_AFTER_DAYS
    detractor_below: int = DETRACTOR_BELOW
    renewal_window_days: int = RENEWAL_WINDOW_DAYS
    movers_shown: int = MOVERS_SHOWN
    component_count: int = COMPONENT_COUNT
    thin_evidence_below: int = THIN_EVIDENCE_BELOW
    #: a team page shows its own back-test from this many churned accounts
    backtest_team_min_churned: int = field(default_factory=settings.backtest_team_min_churned)
    #: band -> its score range in words (the cut-offs are vars of dbt_project.yml)
    band_rules: dict[str, str] = field(
        default_factory=lambda: band_rules(*dbt_facts.band_thresholds()))


def _dbt_vars(project_file: Path) -> dict[str, int]:
    try:
        loaded: Any = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    found = (loaded or {}).get("vars") or {}
    return {k: v for k, v in found.items() if k in DEFAULT_VARS and isinstance(v, int)}


def _weights(seed_file: Path) -> dict[str, dict[str, float]]:
    weights: dict[str, dict[str, float]] = {}
    try:
        with seed_file.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                weights.setdefault(row["segment"], {})[row["component"]] = float(row["weight"])
    except (OSError, KeyError, ValueError):
        return {}
    return weights


def load_glossary(dbt_project_dir: Path | None = None) -> Glossary:
    """The glossary's figures, from the dbt project when it can be read."""
    root = dbt_project_dir or settings.dbt_project_dir()
    glossary = Glossary(band_rules=band_rules(*dbt_facts.band_thresholds(root)))
    glossary.vars.update(_dbt_vars(root / "dbt_project.yml"))
    weights = _weights(root / "seeds" / "health_score_weights.csv")
    if weights:
        glossary.weights = weights
    return glossary
