"""Quality-gate configuration: severities and the volume rule.

Read from `expectations/quality.yml` (committed, reviewed like code), then from the
`CHW_QUALITY_SEVERITY` and `CHW_QUALITY_VOLUME_TOLERANCE` environment variables, which
win. A severity rule maps a pattern
of `<suite>:<expectation>` (shell-style wildcards, e.g. `raw.*:volume`) to `block` or
`warn`; the last matching rule wins; with none matching, an expectation blocks.
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import dataclass, field
from datetime import date
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
    nights: int = 6  # the median of this many earlier nights of the same kind
    min_history: int = 3  # fewer earlier nights of the kind than this: the check only warns
    tolerance: float = 0.5  # allowed: median / (1 + t) .. median * (1 + t)
    noise_sd: float = 5.0  # ...or by this many sqrt(median)s, whichever is wider
    slack_rows: int = 10  # then widened by this many rows each way, so tiny nights don't flap
    lookback_days: int = 400  # how far back earlier nights of the kind are looked for
    month_end_from: int = 28  # with a month-end rhythm: changes of this day on are own kinds
    month_end_suites: tuple[str, ...] = ("raw.billing_*",)  # suites with that rhythm
    month_end_min_history: int = 6  # month-end kinds recur monthly and drift: more history
    month_end_warn_from: int = 29  # changes of this day on (not in every month): misses warn
    #: export dates (month, day)..(month, day), inclusive, where a short night only warns
    quiet_periods: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (((12, 22), (1, 1)),)

    def bounds(self, median: float) -> tuple[int, int]:
        noise = self.noise_sd * math.sqrt(median)
        low = math.floor(min(median / (1 + self.tolerance), median - noise)) - self.slack_rows
        high = math.ceil(max(median * (1 + self.tolerance), median + noise)) + self.slack_rows
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


def _patterns(doc: dict, key: str, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    value = doc.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QualityConfigError(f"{where}: {key} must be a list of suite patterns")
    return tuple(value)


def _month_day(text: str, where: str) -> tuple[int, int]:
    try:
        month, day = (int(part) for part in text.strip().split("-"))
        date(2024, month, day)  # a leap year: 02-29 is a valid day
    except ValueError as exc:
        raise QualityConfigError(f"{where}: {text!r} is not a month-day like 12-22") from exc
    return month, day


def _periods(doc: dict, default: tuple, where: str) -> tuple:
    """`quiet_periods: ["12-22..01-01"]`: export dates, inclusive, may wrap the year."""
    value = doc.get("quiet_periods")
    if value is None:
        return default
    if not isinstance(value, list):
        raise QualityConfigError(f"{where}: quiet_periods must be a list like ['12-22..01-01']")
    periods = []
    for item in value:
        first, sep, last = str(item).partition("..")
        if not sep:
            raise QualityConfigError(f"{where}: quiet period {item!r} is not MM-DD..MM-DD")
        periods.append((_month_day(first, where), _month_day(last, where)))
    return tuple(periods)


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
    if not isinstance(vol, dict):
        raise QualityConfigError(f"{path}: volume must be a mapping")
    where = f"{path}: volume"
    default = VolumeRule()
    tolerance = _number(vol, "tolerance", default.tolerance, where, float)
    env_tolerance = settings.quality_volume_tolerance()
    volume = VolumeRule(
        nights=max(1, _number(vol, "nights", default.nights, where, int)),
        min_history=_number(vol, "min_history", default.min_history, where, int),
        tolerance=tolerance if env_tolerance is None else env_tolerance,
        noise_sd=_number(vol, "noise_sd", default.noise_sd, where, float),
        slack_rows=_number(vol, "slack_rows", default.slack_rows, where, int),
        lookback_days=max(1, _number(vol, "lookback_days", default.lookback_days, where, int)),
        month_end_from=_number(vol, "month_end_from", default.month_end_from, where, int),
        month_end_suites=_patterns(vol, "month_end_suites", default.month_end_suites, where),
        month_end_min_history=_number(vol, "month_end_min_history",
                                      default.month_end_min_history, where, int),
        month_end_warn_from=_number(vol, "month_end_warn_from", default.month_end_warn_from,
                                    where, int),
        quiet_periods=_periods(vol, default.quiet_periods, where),
    )
    docs = doc.get("data_docs") or {}
    keep = _number(docs, "keep_days", 30, f"{path}: data_docs", int)
    return QualityConfig(rules=rules, volume=volume, docs_keep_days=keep)
