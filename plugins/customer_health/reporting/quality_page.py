"""The night's data-quality page (`quality.html`), from `audit.quality_results`.

Only the rows of the run that published the night (its `run_id`, for its
`as_of_date`) are read: what an earlier, failed run of the same or another night
stored (an unexpected value it sampled, say) never shows on a good night's page. The
page is rendered by Jinja with autoescape like every other page (render.py), so the
observed values, which quote export data, stay text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg


@dataclass(frozen=True)
class Check:
    """One expectation's result in the night's run."""

    suite: str
    expectation: str
    severity: str  # "block" or "warn"
    success: bool
    observed_value: str
    checked_at: datetime

    @property
    def outcome(self) -> str:
        """passed, failed (blocking) or warning."""
        if self.success:
            return "passed"
        return "failed" if self.severity == "block" else "warning"


@dataclass(frozen=True)
class QualityRun:
    as_of_date: date
    run_id: str
    checks: tuple[Check, ...]

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.checks)

    def of(self, outcome: str) -> list[Check]:
        return [c for c in self.checks if c.outcome == outcome]

    @property
    def suites(self) -> list[tuple[str, list[Check]]]:
        """(suite, its checks) in suite order, raw before marts."""
        grouped: dict[str, list[Check]] = {}
        for check in self.checks:
            grouped.setdefault(check.suite, []).append(check)
        return sorted(grouped.items(), key=lambda kv: (not kv[0].startswith("raw."), kv[0]))


_ROWS = """
select suite, expectation, severity, success, coalesce(observed_value, ''), checked_at
from audit.quality_results
where as_of_date = %(day)s and run_id = %(run)s
order by suite, result_id
"""


def load_quality_run(url: str, as_of_date: date, run_id: str) -> QualityRun:
    """The checks `run_id` stored for `as_of_date` (none when audit has no results table)."""
    with psycopg.connect(url) as conn:
        found = conn.execute("select to_regclass('audit.quality_results') is not null"
                             ).fetchone()
        rows = []
        if found and found[0]:
            rows = conn.execute(_ROWS, {"day": as_of_date, "run": run_id}).fetchall()
    return QualityRun(as_of_date, run_id, tuple(Check(*row) for row in rows))
