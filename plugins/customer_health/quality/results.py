"""Outcomes of a quality gate, their report, and `audit.quality_results`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from psycopg import Connection

from customer_health.failures import PermanentFailure
from customer_health.quality.config import BLOCK, WARN

RESULTS_DDL = """
create schema if not exists audit;
create table if not exists audit.quality_results (
    result_id bigserial primary key,
    run_id text not null,
    as_of_date date not null,
    suite text not null,
    expectation text not null,
    severity text not null check (severity in ('block', 'warn')),
    success boolean not null,
    observed_value text,
    details jsonb,
    checked_at timestamptz not null default now()
);
create index if not exists quality_results_run_idx on audit.quality_results (run_id, suite);
create index if not exists quality_results_date_idx on audit.quality_results (as_of_date);
"""


@dataclass(frozen=True)
class Outcome:
    """One expectation's result in one run."""

    suite: str
    expectation: str
    severity: str
    success: bool
    observed_value: str
    details: dict = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return not self.success and self.severity == BLOCK

    def describe(self) -> str:
        return f"{self.suite} / {self.expectation}: observed {self.observed_value}"


class QualityGateFailed(PermanentFailure):
    """A blocking expectation failed; the message names suite, expectation and observed
    value of each."""

    def __init__(self, report: QualityReport) -> None:
        self.report = report
        failures = report.failures
        lines = [
            f"quality gate {report.gate} failed for {report.as_of_date} (run {report.run_id}): "
            f"{len(failures)} blocking expectation(s) failed"
        ]
        lines += [f"  - {o.describe()}" for o in failures]
        if report.warnings:
            lines.append(f"  ({len(report.warnings)} warning(s) besides: see "
                         "audit.quality_results or the Data Docs)")
        super().__init__("\n".join(lines))


@dataclass
class QualityReport:
    gate: str  # "raw" or "marts(<schema>)"
    run_id: str
    as_of_date: date
    outcomes: list[Outcome] = field(default_factory=list)
    validation_ids: list = field(default_factory=list)  # GX's stored validation results

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.blocking]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == WARN]

    @property
    def success(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        passed = sum(o.success for o in self.outcomes)
        text = (f"quality gate {self.gate} for {self.as_of_date}: {passed}/{len(self.outcomes)} "
                f"passed, {len(self.failures)} blocking failure(s), "
                f"{len(self.warnings)} warning(s)")
        lines = [text] + [f"  warning: {o.describe()}" for o in self.warnings]
        lines += [f"  FAILED: {o.describe()}" for o in self.failures]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if self.failures:
            raise QualityGateFailed(self)


def ensure_results_table(conn: Connection) -> None:
    with conn.transaction():
        conn.execute(RESULTS_DDL)


def store(conn: Connection, report: QualityReport) -> None:
    """One row per expectation; a re-run with the same run id (a retry) replaces its rows
    for the suites it validated again."""
    suites = sorted({o.suite for o in report.outcomes})
    with conn.transaction():
        conn.execute(
            "delete from audit.quality_results where run_id = %s and suite = any(%s)",
            (report.run_id, suites),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into audit.quality_results (run_id, as_of_date, suite, expectation,"
                " severity, success, observed_value, details) values (%s,%s,%s,%s,%s,%s,%s,%s)",
                [
                    (report.run_id, report.as_of_date, o.suite, o.expectation, o.severity,
                     o.success, o.observed_value, json.dumps(o.details, default=str))
                    for o in report.outcomes
                ],
            )
