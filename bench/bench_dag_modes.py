"""One night through the whole DAG in each dbt execution mode: `python bench/bench_dag_modes.py`.

The nightly DAG runs dbt either as one `dbt_build` task (`CHW_DBT_EXECUTION_MODE=build`)
or through Cosmos with a task per model and its tests (`local`); each Cosmos task pays
a dbt start-up. This generates one landing area (default 200 accounts), then for each
mode runs the same nights through `chw run` (Airflow's dag.test()) into a scratch
database of its own on the warehouse's server, and prints each night's wall time
and whether it succeeded. Uses CHW_WAREHOUSE_URL, or the embedded
warehouse when that is unset; the scratch databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dbt import scratch_database  # noqa: E402

from customer_health import warehouse  # noqa: E402
from customer_health.generate import generate_landing  # noqa: E402

MODES = ("build", "local")


def run_night(mode: str, day: datetime.date, landing: Path, home: Path, url: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(CHW_HOME=str(home), CHW_WAREHOUSE_URL=url, CHW_DBT_EXECUTION_MODE=mode,
               CHW_TASK_RETRIES="0", CHW_SCHEDULE_START=str(day - datetime.timedelta(days=7)))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "customer_health.cli", "run", "--date", str(day),
         "--landing", str(landing)],
        env=env, capture_output=True, text=True)
    return proc, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--nights", type=int, default=2,
                        help="nights run in each mode: the first (full export) and deltas")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()

    start = datetime.date(2026, 11, 1)
    failed = False
    with warehouse.warehouse_session() as server, \
            tempfile.TemporaryDirectory(prefix="chw-bench-modes-") as tmp:
        landing = Path(tmp) / "landing"
        generate_landing(landing, accounts=args.accounts, start=start, days=args.nights,
                         seed=42)
        print(f"{args.accounts} accounts, {args.nights} night(s) from {start}", flush=True)
        totals = {}
        for mode in args.modes:
            home = Path(tmp) / f"home-{mode}"
            totals[mode] = 0.0
            with scratch_database(server, keep=False) as url:
                for n in range(args.nights):
                    day = start + datetime.timedelta(days=n)
                    proc, seconds = run_night(mode, day, landing, home, url)
                    totals[mode] += seconds
                    state = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                    print(f"{mode:6} {day}: {seconds:6.1f} s  {state}", flush=True)
                    if proc.returncode != 0:
                        print(proc.stderr[-2500:], file=sys.stderr)
                        failed = True
                        break
        if len(totals) > 1:
            print("total: " + ", ".join(f"{m} {s:.1f} s" for m, s in totals.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
