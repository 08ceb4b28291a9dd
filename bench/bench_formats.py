"""Each CRM exporter format's load path against the contract path on the same data:
`python bench/bench_formats.py [--accounts N] [--repeat R]`.

Generates one simulated history (the first, full export only) three times, as contract
files, as Salesforce files and as HubSpot files (docs/exporters.md), then loads the CRM
folder of each into a fresh scratch database, the formats taking turns `--repeat`
times; prints each format's median rows per second (rows loaded over the wall time of
`load_export` for the CRM system) and its ratio to the contract path's (goal: at least
0.5). Uses CHW_WAREHOUSE_URL, or the embedded warehouse when that is unset.
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

FORMATS = ("contract", "salesforce", "hubspot")
DAY = date(2026, 11, 1)
ZONE = "Europe/Berlin"  # HubSpot's local timestamps take the conversion path


def load_once(url: str, landing: Path, fmt: str) -> tuple[int, float, dict[str, int]]:
    from customer_health.loading import load_export
    from customer_health.loading.loader import connect, prepare

    os.environ["CHW_CRM_FORMAT"] = fmt
    os.environ["CHW_CRM_TIMEZONE"] = ZONE if fmt == "hubspot" else ""
    with connect(url) as conn:
        prepare(conn)
    started = time.perf_counter()
    results = load_export(url, landing, DAY, system="crm")
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
        for fmt in FORMATS:
            os.environ["CHW_CRM_TIMEZONE"] = ZONE if fmt == "hubspot" else ""
            landings[fmt] = Path(tmp) / fmt
            started = time.perf_counter()
            generate_landing(landings[fmt], accounts=args.accounts, start=DAY, days=1,
                             seed=5, crm_format=fmt)
            print(f"generated {fmt} files in {time.perf_counter() - started:.1f}s", flush=True)
        speeds: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
        ratios: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
        rows_of: dict[str, int] = {}
        for turn in range(args.repeat):
            for fmt in FORMATS:
                with scratch_database(url) as db:
                    rows, seconds, per_entity = load_once(db, landings[fmt], fmt)
                rows_of[fmt] = rows
                speeds[fmt].append(rows / seconds)
                ratios[fmt].append(speeds[fmt][-1] / speeds["contract"][-1])
                print(f"turn {turn + 1} {fmt:>10}: {rows:,} rows in {seconds:.2f}s"
                      f" ({rows / seconds:,.0f} rows/s) {per_entity}", flush=True)
        if len(set(rows_of.values())) != 1:
            raise SystemExit(f"the formats loaded different row counts: {rows_of}")
        print(f"\nCRM export of {args.accounts:,} accounts, {rows_of['contract']:,} rows,"
              f" median of {args.repeat} turns (the ratio: each turn's own, the formats"
              " of a turn run back to back, so a busy moment weighs on all of them):")
        for fmt in FORMATS:
            print(f"  {fmt:>10}: {statistics.median(speeds[fmt]):>10,.0f} rows/s"
                  f"  {statistics.median(ratios[fmt]):.2f} x contract"
                  f"  (rows/s {min(speeds[fmt]):,.0f}..{max(speeds[fmt]):,.0f})")


if __name__ == "__main__":
    main()
