"""`make bench`: every benchmark of the project, one after the other, with its figures.

Each benchmark is a script of its own (run it alone with --help for its options);
this runs them with the sizes the issues ask for. `--only NAME` runs one of them.
Benchmarks use CHW_WAREHOUSE_URL, or the embedded warehouse when that is unset.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, list[str]] = {
    # issue 2: the generator at 100,000 accounts (rows/s and peak memory)
    "generate": ["bench_generate.py", "--accounts", "100000", "--days", "30"],
    # issue 3: the loader against bare COPY and pandas to_sql, 1,000,000 activities rows
    "load": ["bench_load.py", "--rows", "1000000"],
    # issue 4: a full dbt build against one nightly incremental run, 20,000 accounts
    "dbt": ["bench_dbt.py", "--accounts", "20000"],
    # issue 5: one night through the whole DAG, dbt as one task against Cosmos per model
    "dag_modes": ["bench_dag_modes.py", "--accounts", "200", "--nights", "1"],
    # issue 6: rendering every team's report for 100,000 accounts
    "report": ["bench_report.py", "--accounts", "100000"],
    # issue 18: the health score's back-test, two years of monthly dates from one export
    "backtest": ["bench_backtest.py", "--accounts", "20000"],
    # issue 17: each CRM exporter format's load path against the contract path
    "formats": ["bench_formats.py", "--accounts", "10000"],
    # issue 13: the raw volume check over four years of generated nights, old rule vs new
    "volume": ["bench_volume.py", "--accounts", "10000"],
    # issue 15: nights at 100,000 accounts through chw run, 365 and 730 days of nightly
    # exports (the landing areas and loaded histories are cached: the first run takes about
    # 15 minutes more; it needs about 30 GB of disk for the cache and the copies)
    "scale": ["bench_scale.py", "--accounts", "100000"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    args = parser.parse_args()
    failed = []
    for name in args.only or BENCHMARKS:
        script, *options = BENCHMARKS[name]
        print(f"\n=== bench {name}: {script} {' '.join(options)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *options])
        print(f"=== bench {name}: exit {code} after {time.perf_counter() - started:.0f}s",
              flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
