"""A night's data-quality status, in one shape: one gate's, the night's, or the stored one.

The nightly DAG's gates return a `QualityStatus` as a dict (`to_dict`, for XCom); the
publish step joins them (`of_gates`) into the night's status for the report index;
`chw report` reads the same shape back from `audit.quality_results` (`stored_status`).
`status` is "passed", "failed" (a blocking check failed) or "unknown" (no stored check).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from customer_health.quality.results import QualityReport


@dataclass(frozen=True)
class QualityStatus:
    """What the report index shows of a night's checks; `run_id` names the run whose
    checks the night's quality page shows (None when the gates ran in several runs)."""

    status: str
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, for XCom and the reports' `quality` argument."""
        return {"status": self.status, "failures": list(self.failures),
                "warnings": list(self.warnings), "run_id": self.run_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityStatus:
        return cls(data["status"], list(data["failures"]), list(data["warnings"]),
                   data.get("run_id"))

    @classmethod
    def of_reports(cls, *reports: QualityReport) -> QualityStatus:
        """One gate's status, from its report(s)."""
        failures = [o.describe() for r in reports for o in r.failures]
        warnings = [o.describe() for r in reports for o in r.warnings]
        run_ids = sorted({r.run_id for r in reports})
        return cls("failed" if failures else "passed", failures, warnings,
                   run_ids[0] if len(run_ids) == 1 else None)

    @classmethod
    def of_gates(cls, gates: Iterable[QualityStatus]) -> QualityStatus:
        """The night's status, from its gates' statuses."""
        gates = list(gates)
        run_ids = {g.run_id for g in gates}
        return cls(
            "failed" if any(g.status == "failed" for g in gates) else "passed",
            [f for g in gates for f in g.failures],
            [w for g in gates for w in g.warnings],
            run_ids.pop() if len(run_ids) == 1 else None,
        )


def stored_status(url: str, day: date) -> QualityStatus:
    """The quality status of the last run that checked `day`, from audit.quality_results
    ("unknown" when no run checked it, or the table does not exist yet)."""
    import psycopg

    with psycopg.connect(url) as conn:
        found = conn.execute(
            "select to_regclass('audit.quality_results') is not null").fetchone()[0]
        rows, run_id = [], None
        if found:
            last = conn.execute(
                "select run_id from audit.quality_results where as_of_date = %(d)s"
                " order by checked_at desc limit 1", {"d": day}).fetchone()
            run_id = last[0] if last else None
            rows = conn.execute(
                """
                select suite, expectation, severity, success, observed_value
                from audit.quality_results
                where as_of_date = %(d)s and run_id = %(r)s
                """, {"d": day, "r": run_id}).fetchall()
    failures = [f"{s}: {e} (observed {o})" for s, e, sev, ok, o in rows
                if not ok and sev == "block"]
    warnings = [f"{s}: {e} (observed {o})" for s, e, sev, ok, o in rows
                if not ok and sev == "warn"]
    return QualityStatus("failed" if failures else ("passed" if rows else "unknown"),
                         failures, warnings, run_id)
