"""Full dbt build against one nightly incremental run: `python bench/bench_dbt.py`.

Generates a landing area (customer_health.generate; default 20,000 accounts, two years of
history, then `--nights` nightly deltas), loads it into a scratch database on the
warehouse's server, and times:

1. the first night: load the full export (with `--loaded-nights K`, it and the K-1 nightly
   deltas after it, so that raw holds K partitions per table, as after K nights of use),
   `dbt build` for the last of them (a full build);
2. each following night: load that night's delta, `dbt build` for its date (incremental:
   staging and intermediate models merge or recompute only what the night changed, the
   marts write the night's rows; see docs/marts.md, "Speed");
3. for comparison, `dbt build --full-refresh` for the last night's date.

Prints seconds per step and the slowest models. Uses CHW_WAREHOUSE_URL, or the embedded
warehouse when that is unset; the scratch database is dropped at the end (--keep-db keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from customer_health import warehouse  # noqa: E402
from customer_health.contract import ENTITIES  # noqa: E402
from customer_health.generate import generate_landing  # noqa: E402
from customer_health.loading import load_export  # noqa: E402
from customer_health.modelling import transform  # noqa: E402


@contextlib.contextmanager
def scratch_database(server_url: str, keep: bool) -> Iterator[str]:
    name = f"chw_bench_dbt_{uuid.uuid4().hex[:8]}"
    params = conninfo_to_dict(server_url)
    admin = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(**{**params, "dbname": name})
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                    sql.Identifier(name)))


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - t0
    print(f"{label}: {seconds:.1f} s", flush=True)
    return out, seconds


def slowest(result: transform.DbtRunResult, n: int = 8) -> str:
    rows = []
    for r in getattr(result.raw, "results", None) or []:
        uid = getattr(r.node, "unique_id", "?")
        if uid.startswith("model."):
            rows.append((r.execution_time, uid.split(".")[-1]))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {t:.1f}s" for t, name in rows[:n])


def staging_seconds(result: transform.DbtRunResult) -> str:
    """The staging models' time: where the raw fingerprint is paid."""
    times = {getattr(r.node, "unique_id", "?").split(".")[-1]: r.execution_time
             for r in getattr(result.raw, "results", None) or []}
    staging = {name: t for name, t in times.items() if name.startswith("stg_")}
    return (f"staging models {sum(staging.values()):.1f} s"
            f" (stg_crm__activities {staging.get('stg_crm__activities', 0):.2f} s)")


def raw_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return sum(conn.execute(sql.SQL("select count(*) from {}").format(
            sql.Identifier("raw", e.raw_table))).fetchone()[0] for e in ENTITIES)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--history-days", type=int, default=730)
    ap.add_argument("--nights", type=int, default=2, help="nightly deltas after the full export")
    ap.add_argument("--loaded-nights", type=int, default=1,
                    help="nights loaded (the full export and the deltas after it) before the"
                         " first build: raw's partitions per table")
    ap.add_argument("--start", type=datetime.date.fromisoformat,
                    default=datetime.date(2026, 10, 1))
    ap.add_argument("--landing", type=Path, help="reuse (or keep) a generated landing area")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args(argv)

    landing = args.landing or Path(tempfile.mkdtemp(prefix="chw-bench-dbt-"))
    loaded = max(args.loaded_nights, 1)
    dates = [args.start + datetime.timedelta(days=i) for i in range(loaded + args.nights)]
    try:
        if not (landing / "crm" / dates[-1].isoformat()).exists():
            timed(f"generate {args.accounts:,} accounts, {args.history_days} days of history",
                  generate_landing, landing, accounts=args.accounts, start=args.start,
                  days=len(dates), seed=1, history_days=args.history_days, overwrite=True)
        with warehouse.warehouse_session() as server, scratch_database(server, args.keep_db) as url:
            for night in dates[:loaded]:
                load_export(url, landing, night)
            print(f"loaded {loaded} night(s) up to {dates[loaded - 1]};"
                  f" raw rows: {raw_rows(url):,}")
            result, full_first = timed(f"dbt build, first night {dates[loaded - 1]} (full)",
                                       transform.run_dbt, ["build", "--quiet"], url,
                                       dates[loaded - 1])
            print(f"  slowest: {slowest(result)}")
            nightly = []
            for night in dates[loaded:]:
                timed(f"load delta {night}", load_export, url, landing, night)
                result, seconds = timed(f"dbt build, night {night} (incremental)",
                                        transform.run_dbt, ["build", "--quiet"], url, night)
                nightly.append(seconds)
                print(f"  slowest: {slowest(result)}")
                print(f"  {staging_seconds(result)}")
            result, full = timed(f"dbt build --full-refresh for {dates[-1]}", transform.run_dbt,
                                 ["build", "--full-refresh", "--quiet"], url, dates[-1])
            print(f"  slowest: {slowest(result)}")
            if nightly:
                mean = sum(nightly) / len(nightly)
                print(f"full build (first night): {full_first:.1f} s; nightly incremental build:"
                      f" {mean:.1f} s on average ({min(nightly):.1f}-{max(nightly):.1f} s over"
                      f" {len(nightly)} night(s)); --full-refresh: {full:.1f} s")
                print(f"a night costs {mean / full_first:.0%} of the full build"
                      f" ({mean / full:.0%} of the --full-refresh)")
    finally:
        if args.landing is None:
            shutil.rmtree(landing, ignore_errors=True)


if __name__ == "__main__":
    main()
