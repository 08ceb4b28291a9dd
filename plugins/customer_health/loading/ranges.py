"""Loading a range of nights in one process (onboarding a history of exports): night by
night, in order, each exactly as `load_export` loads one; the first night that cannot be
loaded (a rejected file, an incomplete folder) stops the range, and the nights after it
are left unloaded so the raw layer never holds a gap."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from customer_health.loading.landing import LoadError
from customer_health.loading.loader import Landing, load_export
from customer_health.loading.results import FileResult

NightDone = Callable[[date, list[FileResult]], object]


@dataclass
class RangeResult:
    """What a range load did; `stopped_at` is the night that stopped it, if one did."""

    first: date
    last: date
    loaded: list[date] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    stopped_at: date | None = None
    reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.stopped_at is None

    @property
    def rows_loaded(self) -> int:
        return sum(r.rows_loaded for r in self.results)

    def nights_per_minute(self) -> float:
        return 60 * len(self.loaded) / self.seconds if self.seconds else 0.0


def nights(first: date, last: date) -> list[date]:
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def load_range(url: str, landing: Landing, first: date, last: date, system: str | None = None,
               night_done: NightDone | None = None) -> RangeResult:
    """Load every night from `first` to `last` (inclusive) in order; stop at the first
    night with a rejected file or a folder that cannot be loaded. `night_done` is called
    after each night that loaded."""
    result = RangeResult(first, last)
    started = time.monotonic()
    try:
        for day in nights(first, last):
            try:
                files = load_export(url, landing, day, system=system)
            except LoadError as exc:
                result.stopped_at, result.reason = day, str(exc)
                break
            result.results += files
            rejected = [r for r in files if not r.ok]
            if rejected:
                result.stopped_at = day
                result.reason = "; ".join(f"{r.path}: {r.message}" for r in rejected)
                break
            result.loaded.append(day)
            if night_done is not None:
                night_done(day, files)
    finally:
        result.seconds = time.monotonic() - started
    return result
