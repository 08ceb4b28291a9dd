"""Benchmark of the sample-export simulator: rows per second and peak memory.

Usage: .venv/bin/python bench/bench_generate.py --accounts 100000 --days 730
Generates into a temporary directory (removed afterwards unless --keep DIR is given).
"""

from __future__ import annotations

import argparse
import datetime
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from customer_health.generate import generate_landing


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--history-days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=datetime.date.fromisoformat,
                    default=datetime.date(2026, 1, 1))
    ap.add_argument("--keep", type=Path, help="write here and keep the files")
    args = ap.parse_args(argv)

    out = args.keep or Path(tempfile.mkdtemp(prefix="chw-bench-generate-"))
    t0 = time.perf_counter()
    step = max(1, args.days // 20)

    def progress(done: int, total: int) -> None:
        if done == 1 or done % step == 0 or done == total:
            print(f"  {done}/{total} export dates, {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)

    try:
        s = generate_landing(out, accounts=args.accounts, start=args.start, days=args.days,
                             seed=args.seed, history_days=args.history_days,
                             progress=progress, overwrite=args.keep is not None)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"accounts={args.accounts} days={args.days} history_days={args.history_days}")
    for (system, entity), n in s.rows.items():
        print(f"  {system}/{entity}: {n:,} rows")
    print(f"total rows: {s.total_rows:,}  bytes: {size / 1e9:.2f} GB  folders: {s.folders}")
    print(f"seconds: {s.seconds:.1f}  rows/s: {s.total_rows / s.seconds:,.0f}")
    print(f"peak RSS: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
