"""Running one suite's checkpoint and turning GX's results into `Outcome`s."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import FileDataContext

from customer_health.quality.config import QualityConfig
from customer_health.quality.results import Outcome
from customer_health.quality.suites import SuiteSpec, expectation_name

SAMPLE = 5


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "..."


def observed(result: dict, exception: dict | None) -> str:
    """GX's result of one expectation, in words a data engineer can act on."""
    if exception and exception.get("raised_exception"):
        return f"error: {exception.get('exception_message')}"
    if "unexpected_count" in result:
        sample = [v for v in (result.get("partial_unexpected_list") or [])[:SAMPLE]]
        text = (f"{result['unexpected_count']} of {result.get('element_count')} rows "
                "unexpected")
        return text + (f", e.g. {_short(sample)}" if sample else "")
    if "observed_value" in result:
        return _short(result["observed_value"])
    return _short(result)


def _details(result: dict, kwargs: dict, exception: dict | None) -> dict:
    details = {"result": result, "kwargs": {k: v for k, v in kwargs.items() if k != "batch_id"}}
    if exception and exception.get("raised_exception"):
        details["exception"] = exception.get("exception_message")
    return json.loads(json.dumps(details, default=str))


Adjust = Callable[[Outcome], Outcome]


def run_suite(context: FileDataContext, spec: SuiteSpec, config: QualityConfig, run_id: str,
              batch_parameters: dict | None, parameters: dict | None,
              adjust: dict[str, Adjust] | None = None) -> tuple[list[Outcome], list]:
    """Run the suite's checkpoint; one Outcome per expectation (in suite order), and the
    identifiers of the stored validation results (for Data Docs)."""
    checkpoint = context.checkpoints.get(spec.name)
    result = checkpoint.run(
        batch_parameters=batch_parameters or None,
        expectation_parameters=parameters or None,
        run_id=RunIdentifier(run_name=run_id),
    )
    outcomes: list[Outcome] = []
    identifiers = []
    for identifier, validation in result.run_results.items():
        identifiers.append(identifier)
        for item in validation.results:
            cfg = item.expectation_config
            name = expectation_name(cfg)
            res = dict(item.result or {})
            exc = dict(item.exception_info or {})
            outcome = Outcome(
                suite=spec.name,
                expectation=name,
                severity=config.severity(spec.name, name),
                success=bool(item.success),
                observed_value=observed(res, exc),
                details=_details(res, dict(cfg.kwargs), exc),
            )
            if adjust and name in adjust:
                outcome = adjust[name](outcome)
            outcomes.append(outcome)
    return outcomes, identifiers
