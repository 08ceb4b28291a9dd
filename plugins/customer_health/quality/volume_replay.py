"""What the volume check would have decided on every night of a landing area, from the
row counts in its manifests (no warehouse needed): for benchmarks, tests and tuning
`expectations/quality.yml` against a deployment's own history."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from customer_health.contract import SYSTEMS, Entity, entities
from customer_health.generate.output import LandingWriter
from customer_health.generate.simulator import Simulator
from customer_health.loading.landing import ExportFolder, landing_path
from customer_health.quality.config import VolumeRule
from customer_health.quality.volume import Baseline, Verdict, baseline, month_end_rhythm, verdict


@dataclass(frozen=True)
class NightCount:
    night: date
    full: bool
    rows: int


@dataclass(frozen=True)
class Judged:
    count: NightCount
    baseline: Baseline
    verdict: Verdict


def _nights(folder) -> list[date]:
    found = []
    for path in folder.iterdir() if folder.exists() else ():
        try:
            found.append(date.fromisoformat(path.name))
        except ValueError:
            continue  # not an export folder
    return sorted(found)


class _CountingWriter(LandingWriter):
    """Takes the simulator's rows and keeps only their number per night and entity."""

    def __init__(self) -> None:
        super().__init__(Path("."))
        self.counts: dict[Entity, list[NightCount]] = {e: [] for e in self.entities}
        self._night: tuple[date, bool] | None = None
        self._rows: list[int] = []

    def open(self, export_date: str, full: bool) -> None:
        self.close()
        self._night = (date.fromisoformat(export_date), full)
        self._rows = [0] * len(self.entities)

    def write(self, index: int, rows: list[list[str]]) -> None:
        self._rows[index] += len(rows)

    def close(self) -> None:
        if self._night is None:
            return
        night, full = self._night
        for entity, n in zip(self.entities, self._rows, strict=True):
            self.counts[entity].append(NightCount(night, full, n))
            self.totals[(entity.system, entity.name)] += n
        self.folders += 1
        self._night = None


def generated_counts(*, accounts: int, start: date, days: int, seed: int,
                     history_days: int = 730) -> dict[Entity, list[NightCount]]:
    """The nights `generate_landing` would write with these arguments, counted, not
    written (the same simulation, so the same rows)."""
    writer = _CountingWriter()
    Simulator(accounts=accounts, start=start, days=days, seed=seed,
              history_days=history_days).run(".", writer=writer)
    return writer.counts


def manifest_counts(landing: str | os.PathLike[str]) -> dict[Entity, list[NightCount]]:
    """Every entity's nights in the landing area, oldest first, with the rows and the
    `full` flag its manifests give (a file the manifest does not list counts 0 rows)."""
    out: dict[Entity, list[NightCount]] = {}
    for system in SYSTEMS:
        folder = landing_path(landing) / system
        for night in _nights(folder):
            manifest = ExportFolder(landing, system, night).manifest()
            if manifest is None:
                continue
            for entity in entities(system):
                entry = manifest.files.get(entity.file_name)
                rows = entry.rows if entry is not None and entry.rows is not None else 0
                out.setdefault(entity, []).append(NightCount(night, manifest.full, rows))
    return out


def replay(counts: Sequence[NightCount], rule: VolumeRule, suite: str) -> list[Judged]:
    """The baseline and verdict of each night of one suite (e.g. `raw.crm_activities`),
    each judged against the nights before it, as the raw gate judges them."""
    month_end = month_end_rhythm(rule, suite)
    seen: dict[date, int] = {}
    fulls: set[date] = set()
    judged = []
    for c in sorted(counts, key=lambda c: c.night):
        base = baseline(c.night, c.full, seen, rule, month_end, fulls.__contains__)
        judged.append(Judged(c, base, verdict(c.rows, base, rule)))
        seen[c.night] = c.rows
        if c.full:
            fulls.add(c.night)
    return judged


__all__ = ["Judged", "NightCount", "generated_counts", "manifest_counts", "replay"]
