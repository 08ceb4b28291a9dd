"""The demo's earlier nights, built cheaply so its reports show weeks of use.

`chw demo` runs its last nights through the nightly DAG. The nights before them only
have to leave what a real history leaves: the raw layer loaded night by night and one
row per account and night in the dated marts (the 7-day changes, the movers and the
trend chart read them). For each earlier night this module does what the DAG does,
minus what only protects a real night:

- it loads that night's exports with the DAG's loader (`load_export`), so a rejected
  file stops the demo as it would stop a night;
- it builds the night's models and seeds with dbt (`dbt build --resource-type model
  --resource-type seed`), into the shadow schema, recording each night's generation
  (`wap.mark_building`) as the DAG's `prepare_shadow` task does;
- it runs **no** data test, no Great Expectations gate and publishes no report for
  those nights: it is sample data that the last nights check in full.

One `wap.swap_in` publishes the whole history at the end, so analysts (and the last
nights' `prepare_shadow`) see it exactly as if each night had been published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

#: dbt's resource types a history night builds: the models (the marts and everything they
#: read) and the seeds they join; data and unit tests run in the DAG's nights only.
HISTORY_RESOURCE_TYPES = ("model", "seed")


class HistoryError(RuntimeError):
    """An earlier night of the demo could not be loaded or built."""


@dataclass
class HistoryResult:
    loaded: list[date]
    built: list[date]

    def describe(self) -> str:
        if not self.built:
            return f"loaded {len(self.loaded)} earlier night(s); no marts built before the DAG"
        return (f"loaded {len(self.loaded)} earlier night(s); marts of "
                f"{self.built[0]}..{self.built[-1]} built without tests or gates")


def dbt_history_args() -> list[str]:
    """The dbt arguments of one history night: models and seeds only."""
    args = ["build", "--quiet"]
    for kind in HISTORY_RESOURCE_TYPES:
        args += ["--resource-type", kind]
    return args


def _load(url: str, landing: str, day: date) -> None:
    from customer_health.loading import load_export

    results = load_export(url, landing, day)
    rejected = [r for r in results if r.status == "rejected"]
    if rejected:
        raise HistoryError("; ".join(f"{r.path} rejected: {r.message}" for r in rejected))


def build_history(url: str, landing: str, first: date, built_from: date, last: date,
                  progress: Callable[[int, int], None] | None = None) -> HistoryResult:
    """Load the exports of `first`..`last` night by night; from `built_from` on, build
    each night's marts right after loading it (without tests or gates) and publish
    them all at the end. Nothing is built when `built_from` is after `last`."""
    from customer_health.modelling.transform import DbtRunError, run_dbt
    from customer_health.publishing import wap

    result = HistoryResult(loaded=[], built=[])
    if last < first:
        return result
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    manifest = None
    if any(day >= built_from for day in days):
        wap.prepare_shadow(url)
        # parsed once: a night's date is a var that dbt reads when it compiles, so the
        # nights share one manifest instead of parsing the project again each (vars that
        # change make dbt's partial parsing start over)
        manifest = run_dbt(["parse", "--quiet"], url, built_from,
                           extra_vars={"marts_schema": wap.SHADOW}).raw
    for done, day in enumerate(days, start=1):
        _load(url, landing, day)
        result.loaded.append(day)
        if day >= built_from:
            wap.mark_building(url, day)
            try:
                run_dbt(dbt_history_args(), url, day, extra_vars={"marts_schema": wap.SHADOW},
                        manifest=manifest)
            except DbtRunError as exc:
                raise HistoryError(f"marts of the earlier night {day}: {exc}") from exc
            result.built.append(day)
        if progress:
            progress(done, len(days))
    if result.built:
        wap.swap_in(url, result.built[-1])
    return result
