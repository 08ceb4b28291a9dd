"""Each exporter format's load path against the contract path on the same data:
`python bench/bench_formats.py [--accounts N] [--repeat R]`.

Generates one simulated history (the first, full export only) three times, as contract
files, as Salesforce + Stripe files and as HubSpot + Stripe files (docs/exporters.md),
then loads each system's folder into a fresh scratch database, the formats of a system
taking turns `--repeat` times; prints each format's median rows per second (rows loaded
over the wall time of `load_export` for the system) and its ratio to the contract path's
(goal: at least 0.5). Stripe's first export is a snapshot (each record's latest version),
the contract's the full history of versions: its rows are fewer, rows per second compare.
Uses CHW_WAREHOUSE_URL, or the embedded warehouse when that is unset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from bench_load import scratch_database  # noqa: E402

# (system, format) -> the landing (named by its CRM format) whose folder it loads
PATHS = {("crm", "contract"): "contract", ("crm", "salesforce"): "salesforce",
         ("crm", "hubspot"): "hubspot", ("billing", "contract"): "contract",
         ("billing", "stripe"): "salesforce"}
LANDINGS = {"contract": ("contract", "contract"), "salesforce": ("salesforce", "stripe"),
            "hubspot": ("hubspot", "stripe")}
DAY = date(2026, 11, 1)
ZONE = "Europe/Berlin"  # HubSpot's local timestamps take the conversion path


def load_once(url: str, landing: Path, system: str, fmt: str) -> tuple[int, float,
                                                                      dict[str, int]]:
    from customer_health.loading import load_export
    from customer_health.loading.loader import connect, prepare

    os.environ[f"CHW_{system.upper()}_FORMAT"] = fmt
    os.environ["CHW_CRM_TIMEZONE"] = ZONE if fmt == "hubspot" else ""
    with connect(url) as conn:
        prepare(conn)
    started = time.perf_counter()
    results = load_export(url, landing, DAY, system=system)
    seconds = time.perf_counter() - started
    bad = [r for r in results if r.status != "loaded" or r.rows_quarantined]
    if bad:
        raise SystemExit(f"{fmt}: {bad}")
    return sum(r.rows_loaded for r in results), seconds, {r.entity: r.rows_loaded
                                                          for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from customer_health.generate import generate_landing
    from customer_health.warehouse import warehouse_session

    with tempfile.TemporaryDirectory() as tmp, warehouse_session() as url:
        landings = {}
        for name, (crm, billing) in LANDINGS.items():
            os.environ["CHW_CRM_TIMEZONE"] = ZONE if crm == "hubspot" else ""
            landings[name] = Path(tmp) / name
            started = time.perf_counter()
            generate_landing(landings[name], accounts=args.accounts, start=DAY, days=1,
                             seed=5, crm_format=crm, billing_format=billing)
            print(f"generated {crm} + {billing} files in {time.perf_counter() - started:.1f}s",
                  flush=True)
        speeds: dict[tuple, list[float]] = {p: [] for p in PATHS}
        ratios: dict[tuple, list[float]] = {p: [] for p in PATHS}
        rows_of: dict[tuple, int] = {}
        for turn in range(args.repeat):
            for path, landing in PATHS.items():
                system, fmt = path
                with scratch_database(url) as db:
                    rows, seconds, per_entity = load_once(db, landings[landing], system, fmt)
                rows_of[path] = rows
                speeds[path].append(rows / seconds)
                ratios[path].append(speeds[path][-1] / speeds[(system, "contract")][-1])
                print(f"turn {turn + 1} {system:>7} {fmt:>10}: {rows:,} rows in {seconds:.2f}s"
                      f" ({rows / seconds:,.0f} rows/s) {per_entity}", flush=True)
        crm_rows = {rows_of[p] for p in PATHS if p[0] == "crm"}
        if len(crm_rows) != 1:
            raise SystemExit(f"the CRM formats loaded different row counts: {rows_of}")
        print(f"\nFirst export of {args.accounts:,} accounts, median of {args.repeat} turns (the"
              " ratio: each turn's own, the formats of a turn run back to back, so a busy"
              " moment weighs on all of them):")
        for path in PATHS:
            system, fmt = path
            print(f"  {system:>7} {fmt:>10}: {rows_of[path]:>9,} rows"
                  f" {statistics.median(speeds[path]):>10,.0f} rows/s"
                  f"  {statistics.median(ratios[path]):.2f} x contract"
                  f"  (rows/s {min(speeds[path]):,.0f}..{max(speeds[path]):,.0f})")

if __name__ == "__main__":
    main()
