"""The volume rule, as pure functions of a night and the row counts of earlier nights.

Exports have rhythms: a CRM exports little on the nights after a weekend (export date D
holds the records changed on D-1), billing renews subscriptions on the same day of each
month, and everything is quiet over the year end. So a night is compared with earlier
nights *of the same kind* only:

- a full export with the last full exports;
- a delta with the deltas of the same weekday (the last `nights` Tuesdays, say);
- for suites with a month-end rhythm (`month_end_suites`, billing by default), a delta
  whose day of changes (the day before the export date) is day `month_end_from` (28) or
  later of its month is compared with the deltas of the same day of month instead
  (the 28th with earlier 28ths, whatever their weekday); a miss on the 29th to 31st,
  days not every month has, only warns.

Nights in a quiet period (`quiet_periods`, e.g. the year end) are not used as a baseline
for other nights, and a quiet night that falls short of its band only warns. `raw.py`
reads the counts (from the ledger of loads) and applies the verdict to GX's outcome;
`bench/bench_volume.py` and `tests/test_quality_volume.py` run the same functions over
the generator's nights. See docs/quality.md.
"""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from customer_health.quality.config import VolumeRule

PASS, BLOCK, WARN = "pass", "block", "warn"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Kind:
    """What a night is compared with: `key` is equal for nights of the same kind."""

    key: tuple
    label: str  # e.g. "delta Tuesday", "delta day-28 (month end)", "full"


@dataclass(frozen=True)
class Baseline:
    kind: Kind
    counts: Mapping[date, int]  # the earlier nights compared with, and their rows
    quiet: bool  # the night lies in a quiet period
    median: float | None
    low: int  # the band: low..high rows pass (high None: no upper bound)
    high: int | None

    @property
    def nights(self) -> int:
        return len(self.counts)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # PASS, BLOCK or WARN
    reason: str


def month_end_rhythm(rule: VolumeRule, suite: str) -> bool:
    """Whether the suite (e.g. `raw.billing_invoices`) has a month-end rhythm."""
    return any(fnmatch.fnmatchcase(suite, p) for p in rule.month_end_suites)


def is_quiet(night: date, rule: VolumeRule) -> bool:
    """Whether the export date lies in one of the rule's quiet periods (MM-DD..MM-DD,
    inclusive; a period may wrap the year end)."""
    md = (night.month, night.day)
    for first, last in rule.quiet_periods:
        if (first <= md <= last) if first <= last else (md >= first or md <= last):
            return True
    return False


def kind_of(night: date, full: bool, rule: VolumeRule, month_end: bool) -> Kind:
    if full:
        return Kind(("full",), "full")
    changes = night - timedelta(days=1)  # a delta holds the changes of the day before
    if month_end and changes.day >= rule.month_end_from:
        return Kind(("month_day", changes.day), f"delta day-{changes.day} (month end)")
    return Kind(("weekday", night.weekday()), f"delta {WEEKDAYS[night.weekday()]}")


def _never_full(night: date) -> bool:
    return False


def baseline(night: date, full: bool, counts: Mapping[date, int], rule: VolumeRule,
             month_end: bool, full_of: Callable[[date], bool] = _never_full) -> Baseline:
    """The band for `night` from `counts` ({export date: rows} of earlier nights, in any
    order; `full_of(date)` says whether one was a full export, asked only of the nights
    of the same weekday or month day): the median of the last `rule.nights` nights of the
    same kind within `rule.lookback_days` that are not in a quiet period (quiet ones only
    when the night is quiet itself and no other is left), widened by the tolerance."""
    kind = kind_of(night, full, rule, month_end)
    quiet = is_quiet(night, rule) and not full
    usual: list[date] = []
    quiet_same: list[date] = []
    for d in sorted((d for d in counts
                     if d < night and (night - d).days <= rule.lookback_days), reverse=True):
        if len(usual) >= rule.nights:
            break
        if not full and kind_of(d, False, rule, month_end) != kind:
            continue
        if full_of(d) != full:
            continue
        if not full and is_quiet(d, rule):
            quiet_same.append(d)
        else:
            usual.append(d)
    chosen = (usual or (quiet_same if quiet else []))[: rule.nights]
    used = {d: counts[d] for d in sorted(chosen)}
    if not used:
        return Baseline(kind, used, quiet, None, 0, None)
    median = statistics.median(used.values())
    low, high = rule.bounds(median)
    return Baseline(kind, used, quiet, median, low, high)


def verdict(rows: int, base: Baseline, rule: VolumeRule) -> Verdict:
    """PASS within the band; otherwise BLOCK, except WARN with fewer than
    `rule.min_history` earlier nights of the kind (`rule.month_end_min_history` for a
    month-end kind: it recurs once a month, and billing's month end drifts over the year),
    when a quiet night falls short, and on the month-end days not every month has
    (`rule.month_end_warn_from`, the 29th on: renewals pile up there during the year and
    move to the 28th every February, faster than a median of six months follows)."""
    if base.median is None:
        return Verdict(WARN, f"not compared: no earlier {base.kind.label} night")
    text = (f"expected {base.low}..{base.high} (median {base.median:g} of {base.nights} "
            f"earlier {base.kind.label} night(s))")
    inside = base.low <= rows <= base.high
    if inside:
        return Verdict(PASS, text)
    needed = rule.month_end_min_history if base.kind.key[0] == "month_day" else \
        rule.min_history
    if base.nights < needed:
        return Verdict(WARN, f"{text}; only {base.nights} earlier night(s) of the kind, "
                             f"fewer than {needed}: warns")
    if base.quiet and rows < base.low:
        return Verdict(WARN, f"{text}; a quiet period (year end, holidays): a short night "
                             "warns")
    if base.kind.key[0] == "month_day" and base.kind.key[1] >= rule.month_end_warn_from:
        return Verdict(WARN, f"{text}; a month-end day not every month has: its volume "
                             "drifts over the year, a miss warns")
    return Verdict(BLOCK, text)


def decide(night: date, full: bool, rows: int, counts: Mapping[date, int], rule: VolumeRule,
           month_end: bool, full_of: Callable[[date], bool] = _never_full) -> Verdict:
    """The verdict on a night of `rows` rows (for benchmarks and tests)."""
    return verdict(rows, baseline(night, full, counts, rule, month_end, full_of), rule)


__all__ = ["BLOCK", "PASS", "WARN", "Baseline", "Kind", "Verdict", "baseline", "decide",
           "is_quiet", "kind_of", "month_end_rhythm", "verdict"]
