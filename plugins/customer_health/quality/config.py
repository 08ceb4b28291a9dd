"""Quality-gate configuration: severities and the volume rule.

Read from `expectations/quality.yml` (committed, reviewed like code), then from the
`CHW_QUALITY_SEVERITY` environment variable, which wins. A severity rule maps a pattern
of `<suite>:<expectation>` (shell-style wildcards, e.g. `raw.*:volume`) to `block` or
`warn`; the last matching rule wins; with none matching, an expectation blocks.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from customer_health import settings

BLOCK = "block"
WARN = "warn"
SEVERITIES = (BLOCK, WARN)
CONFIG_FILE = "quality.yml"
SEVERITY_ENV = "CHW_QUALITY_SEVERITY"


class QualityConfigError(ValueError):
    """The quality configuration is unusable; the message names the setting."""


@dataclass(frozen=True)
class VolumeRule:
    nights: int = 7  # the median of this many earlier nights of the same kind
    min_history: int = 3  # fewer earlier nights than this: the check only warns
    tolerance: float = 1.0  # allowed: median / (1 + t) .. median * (1 + t)
    slack_rows: int = 20  # widened by this many rows each way, so tiny nights don't flap

    def bounds(self, median: float) -> tuple[int, int]:
        low = int(median / (1 + self.tolerance)) - self.slack_rows
        high = int(median * (1 + self.tolerance) + 0.999999) + self.slack_rows
        return max(low, 0), high


@dataclass(frozen=True)
class QualityConfig:
    rules: tuple[tuple[str, str], ...] = ()  # (pattern, severity), in order
    volume: VolumeRule = field(default_factory=VolumeRule)
    docs_keep_days: int = 30

    def severity(self, suite: str, expectation: str) -> str:
        key = f"{suite}:{expectation}"
        found = BLOCK
        for pattern, severity in self.rules:
            if fnmatch.fnmatchcase(key, pattern):
                found = severity
        return found


def _check_severity(value: object, where: str) -> str:
    text = str(value).strip().lower()
    if text not in SEVERITIES:
        raise QualityConfigError(f"{where}: severity {value!r} is not one of block, warn")
    return text


def parse_env_rules(raw: str) -> tuple[tuple[str, str], ...]:
    """`raw.*:volume=warn,marts.customer_health:row_count_matches_accounts=block`."""
    rules = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        pattern, sep, severity = item.rpartition("=")
        if not sep or not pattern.strip():
            raise QualityConfigError(
                f"{SEVERITY_ENV}: {item!r} is not <suite>:<expectation>=<block|warn>"
            )
        rules.append((pattern.strip(), _check_severity(severity, SEVERITY_ENV)))
    return tuple(rules)


def _number(doc: dict, key: str, default: float, where: str, kind: type) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise QualityConfigError(f"{where}: {key} must be a non-negative number, got {value!r}")
    if kind is int and int(value) != value:
        raise QualityConfigError(f"{where}: {key} must be a whole number, got {value!r}")
    return kind(value)


def load_config(path: Path | None = None) -> QualityConfig:
    path = path or settings.expectations_dir() / CONFIG_FILE
    doc: dict = {}
    if path.exists():
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            raise QualityConfigError(f"{path}: expected a mapping at the top level")
    severities = doc.get("severity") or {}
    if not isinstance(severities, dict):
        raise QualityConfigError(f"{path}: severity must map '<suite>:<expectation>' to a level")
    rules = tuple(
        (str(k), _check_severity(v, f"{path}: severity of {k!r}")) for k, v in severities.items()
    )
    rules += parse_env_rules(os.environ.get(SEVERITY_ENV, ""))
    vol = doc.get("volume") or {}
    where = f"{path}: volume"
    default = VolumeRule()
    volume = VolumeRule(
        nights=max(1, _number(vol, "nights", default.nights, where, int)),
        min_history=_number(vol, "min_history", default.min_history, where, int),
        tolerance=_number(vol, "tolerance", default.tolerance, where, float),
        slack_rows=_number(vol, "slack_rows", default.slack_rows, where, int),
    )
    docs = doc.get("data_docs") or {}
    keep = _number(docs, "keep_days", 30, f"{path}: data_docs", int)
    return QualityConfig(rules=rules, volume=volume, docs_keep_days=keep)
