"""Loader throughput against its physical limit: `python bench/bench_load.py [--rows N]`.

Writes a synthetic crm/activities.csv (subjects with commas, quotes and the odd
multi-line note), then loads it into a scratch database on the warehouse's server
three ways: the loader (in a child process, so its peak memory is its own), a bare
COPY of the same file into a table of the same types, and pandas `to_sql`. The loader
and bare COPY take turns `--repeat` times (each loader run a night of its own) and
their medians are compared, so a burst of other work on a small machine does not
decide the ratio. Prints rows per second, the ratios, the spread, and the loader's
peak memory at two file sizes.
Uses CHW_WAREHOUSE_URL, or the embedded warehouse when that is unset.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from customer_health.contract import entity  # noqa: E402

ACTIVITIES = entity("crm", "activities")
TYPES = ("call", "email", "meeting", "qbr", "site_visit", "webinar", "other")
SUBJECTS = ("Quarterly review", "Follow-up, pricing", 'He said "yes"', "Renewal call",
            "Onboarding; kickoff", "Escalation: invoice, \"urgent\"", "")


def write_activities(path: Path, rows: int, seed: int = 7) -> None:
    """A contract-conformant activities file; one row in 500 has a two-line subject."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(ACTIVITIES.column_names) + "\n")
        batch = []
        for i in range(rows):
            subject = f"{rnd.choice(SUBJECTS)} #{i % 97}"
            if i % 500 == 0:
                subject += "\nsecond line"
            if any(ch in subject for ch in ',"\n'):
                subject = '"' + subject.replace('"', '""') + '"'
            ts = (f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
                  f"T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00Z")
            contact = "" if i % 3 == 0 else f"con-{i % 20000:06d}"
            batch.append(f"act-{i:09d},acc-{i % 5000:05d},{contact},{TYPES[i % 7]},"
                         f"{'inbound' if i % 2 else 'outbound'},{ts},user{i % 50}@example.com,"
                         f"{subject},{ts}\n")
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch = []
        out.write("".join(batch))


def _with_database(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    name = f"chw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield _with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))


def bare_copy(url: str, csv_path: Path) -> float:
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name),
                                                         sql.SQL(c.pg_type))
                                 for c in ACTIVITIES.columns)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop table if exists bare_activities")
        conn.execute(sql.SQL("create table bare_activities ({})").format(columns))
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(
                "copy bare_activities from stdin with (format csv, header true)") as copy, \
                csv_path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - started


def pandas_to_sql(url: str, csv_path: Path) -> float:
    import pandas as pd
    import sqlalchemy

    params = conninfo_to_dict(url)
    engine = sqlalchemy.create_engine(sqlalchemy.URL.create(
        "postgresql+psycopg", username=params.get("user"), password=params.get("password"),
        host=params.get("host"), port=int(params.get("port", 5432)),
        database=params.get("dbname")))
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    for name in ("occurred_at", "updated_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    frame.to_sql("pandas_activities", engine, if_exists="replace", index=False, chunksize=10_000)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def loader_parts(url: str, csv_path: Path, day: date) -> tuple[float, float]:
    """Where the loader's time goes: (its parsing alone, COPY of its output into raw)."""
    from customer_health.loading.loader import (
        _copy_sql,
        _create_loading_table,
        _publish_partition,
        prepare,
    )
    from customer_health.loading.quarantine import QuarantineSpool
    from customer_health.loading.scanner import Scanner

    out_path = csv_path.with_suffix(".copy")
    started = time.perf_counter()
    with csv_path.open("rb") as stream, out_path.open("wb") as out:
        scanner = Scanner(stream, ACTIVITIES,
                          QuarantineSpool("crm", day, "activities", "activities.csv", 0))
        scanner.read_header()
        for batch in scanner.batches():
            out.write(batch)
    parse = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        prepare(conn)
        started = time.perf_counter()
        with conn.transaction():
            table = _create_loading_table(conn, ACTIVITIES, day, extra=False)
            with conn.cursor().copy(_copy_sql(table, scanner.copy_columns, extra=False)) as copy, \
                    out_path.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    copy.write(chunk)
            _publish_partition(conn, ACTIVITIES, day, "crm/x/activities.csv", extra=False)
        copy_raw = time.perf_counter() - started
    out_path.unlink()
    return parse, copy_raw


def loader_in_child(url: str, landing: Path, day: date) -> dict:
    """Run the loader in a child process; its wall time, result and peak RSS."""
    out = subprocess.run([sys.executable, __file__, "--child", url, str(landing), day.isoformat()],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(url: str, landing: str, day: str) -> None:
    from customer_health.loading import load_file
    from customer_health.loading.loader import connect, prepare

    with connect(url) as conn:
        prepare(conn)
    started = time.perf_counter()
    result = load_file(url, landing, day, "crm", "activities")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "status": result.status, "rows": result.rows_loaded,
                      "message": result.message, "peak_mib": peak_kib / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="turns of loader and bare COPY whose medians are compared")
    parser.add_argument("--skip-to-sql", action="store_true", help="skip the slow pandas run")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from customer_health.warehouse import warehouse_session

    with warehouse_session() as url, scratch_database(url) as db, \
            tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        small_day, big_day = date(2026, 11, 1), date(2026, 11, 2)
        sizes = {small_day: max(args.rows // 4, 1), big_day: args.rows}
        for day, rows in sizes.items():
            folder = landing / "crm" / day.isoformat()
            folder.mkdir(parents=True)
            started = time.perf_counter()
            write_activities(folder / "activities.csv", rows)
            size = (folder / "activities.csv").stat().st_size
            print(f"wrote {rows:,} rows ({size / 2**20:.0f} MiB) in "
                  f"{time.perf_counter() - started:.1f}s")
        big_file = landing / "crm" / big_day.isoformat() / "activities.csv"
        rows = args.rows
        # The same file delivered on later nights, so every loader turn loads it anew.
        turn_days = [date(2026, 11, 3 + turn) for turn in range(args.repeat)]
        for day in turn_days:
            (landing / "crm" / day.isoformat()).mkdir()
            os.link(big_file, landing / "crm" / day.isoformat() / "activities.csv")

        small = loader_in_child(db, landing, small_day)
        big = loader_in_child(db, landing, big_day)
        assert big["status"] == "loaded" and big["rows"] == rows, big
        loader_runs, bare_runs = [], []
        for day in turn_days:
            bare_runs.append(bare_copy(db, big_file))
            run = loader_in_child(db, landing, day)
            assert run["status"] == "loaded" and run["rows"] == rows, run
            loader_runs.append(run["seconds"])
        loader, bare = statistics.median(loader_runs), statistics.median(bare_runs)
        parse, copy_raw = loader_parts(db, big_file, date(2026, 10, 31))
        figures = {"loader": loader, "bare COPY": bare, "(parse only)": parse,
                   "(COPY to raw)": copy_raw}
        if not args.skip_to_sql:
            figures["pandas to_sql"] = pandas_to_sql(db, big_file)

        print(f"\n{rows:,} activities rows, server {psycopg.connect(db).info.server_version}")
        for name, seconds in figures.items():
            print(f"  {name:<14} {seconds:7.2f}s  {rows / seconds:>10,.0f} rows/s")
        print("  (parse only: the loader's checks without a server; COPY to raw: its output"
              " copied into a night's partition of raw, provenance included, and attached)")
        print(f"  loader and bare COPY: medians of {len(loader_runs)} and {len(bare_runs)} runs;"
              f" loader {min(loader_runs):.2f}-{max(loader_runs):.2f}s,"
              f" bare COPY {min(bare_runs):.2f}-{max(bare_runs):.2f}s")
        print(f"  loader / bare COPY: {bare / loader:.0%} (goal: at least 70%)")
        if "pandas to_sql" in figures:
            print(f"  loader / to_sql:    {figures['pandas to_sql'] / loader:.1f}x "
                  "(goal: at least 10x)")
        print(f"  loader peak memory: {small['peak_mib']:.0f} MiB at {sizes[small_day]:,} rows, "
              f"{big['peak_mib']:.0f} MiB at {rows:,} rows")


if __name__ == "__main__":
    main()
