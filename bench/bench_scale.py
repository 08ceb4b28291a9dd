"""Nights at scale through `chw run`: `python bench/bench_scale.py` (`make bench`, `--only scale`).

For each history length H (default 365 and 730 days; 100,000 accounts, `chw demo`-style:
a full export, then a delta export every night):

1. the landing area: H + N export dates (N = `--delta-nights`), generated once and kept in
   the cache folder (`--cache`, default $CHW_BENCH_CACHE or ~/.cache/customer-health/
   bench-scale);
2. the history: the first H - 1 nights loaded by `chw load --start --end` (one process,
   nights per minute reported) into a database kept on the warehouse's server as the
   cache (`chw_scale_<accounts>_<H>_s<seed>_v<version>`; `--drop-cache` removes them);
3. the nights: a copy of that database (`CREATE DATABASE ... TEMPLATE`), then night H
   through `chw run` (the first night: dbt builds everything over the whole history) and
   the N delta nights after it, each a `chw run` of its own: wall time, every task's
   duration (Airflow's metadata), every dbt model's time (audit.dbt_runs) and the peak
   memory of every process (chw's and the server's, sampled from /proc). Before each
   night the server is settled: a CHECKPOINT, then sync(2), so that what the night before
   wrote is on disk, as it is when nights are a day apart (`--no-settle`: back to back).

Then it prints the ratios the issue sets as goals (issue 15): a delta night against the
first night (end to end and `dbt_build`), the delta night at 730 against 365 days, the
ten most expensive models of a delta night, and any incremental model slower in a delta
night than in the first night's full build. Uses CHW_WAREHOUSE_URL, or the embedded
warehouse when that is unset.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dbt import raw_rows  # noqa: E402

from customer_health import warehouse  # noqa: E402
from customer_health.generate import generate_landing  # noqa: E402

#: Bump when the loader's raw layout changes: cached history databases of another version
#: are not reused.
CACHE_VERSION = 2  # 2: old months folded into monthly partitions while loading
END = datetime.date(2026, 11, 30)  # the last delta night; fixed so that caches agree
DAG_ID = "customer_health_nightly"


@dataclass
class Night:
    day: datetime.date
    seconds: float
    ok: bool
    tasks: dict[str, float] = field(default_factory=dict)
    models: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)


class PeakMemory:
    """Every process's peak memory, sampled from /proc once a second and kept per command
    name: the largest any single process of that name reached. PostgreSQL's are its private
    memory (RssAnon: sorts, hashes), since every server process maps the shared buffers;
    the others' their peak resident set (VmHWM)."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(1.0):
                return

    def sample(self) -> None:
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines()
                              if ":" in line)
            except OSError:
                continue
            name = fields.get("Name", "?").strip()
            value = fields.get("RssAnon" if name == "postgres" else "VmHWM")
            if value and name in ("python", "python3", "postgres", "dbt", "chw", "airflow"):
                mib = int(value.split()[0]) / 1024
                self.peaks[name] = max(self.peaks.get(name, 0.0), mib)


def admin_url(server: str, dbname: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(server), "dbname": dbname})


def database_exists(server: str, name: str) -> bool:
    with psycopg.connect(admin_url(server, "postgres"), autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s",
                            (name,)).fetchone() is not None


def admin(server: str, statement: sql.Composable) -> None:
    with psycopg.connect(admin_url(server, "postgres"), autocommit=True) as conn:
        conn.execute(statement)


def ensure_landing(cache: Path, accounts: int, history: int, nights: int, seed: int) -> Path:
    days = history + nights
    landing = cache / f"landing-{accounts}a-{days}d-s{seed}"
    if landing.exists():
        return landing
    partial = landing.with_name(landing.name + ".partial")
    started = time.perf_counter()
    generate_landing(partial, accounts=accounts, start=END - datetime.timedelta(days=days - 1),
                     days=days, seed=seed, invoice_only_share=0.2, overwrite=True)
    partial.rename(landing)
    print(f"  generated {landing.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return landing


def chw(args: list[str], env: dict[str, str], log: Path) -> tuple[int, float]:
    """Run `chw ARGS` in a process of its own; (exit code, seconds)."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "customer_health.cli", *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        code = proc.wait()
    return code, time.perf_counter() - started


def base_env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CHW_"))}
    env.update(CHW_HOME=str(home), CHW_WAREHOUSE_URL=url, CHW_TASK_RETRIES="0",
               CHW_SCHEDULE_START="2020-01-01", PYTHONPATH=str(ROOT / "plugins"))
    return env


def ensure_history(server: str, cache: Path, landing: Path, accounts: int, history: int,
                   seed: int, work: Path) -> tuple[str, dict]:
    """The database holding the first `history - 1` nights, loaded once and kept."""
    name = f"chw_scale_{accounts}_{history}_s{seed}_v{CACHE_VERSION}"
    figures_file = cache / f"{name}.json"
    if database_exists(server, name) and figures_file.exists():
        return name, json.loads(figures_file.read_text())
    building = name + "_building"
    admin(server, sql.SQL("drop database if exists {} with (force)").format(
        sql.Identifier(building)))
    admin(server, sql.SQL("create database {}").format(sql.Identifier(building)))
    first = datetime.date.fromisoformat(export_dates(landing)[0])
    last = first + datetime.timedelta(days=history - 2)
    env = base_env(work / "home-history", admin_url(server, building))
    log = work / f"load-{history}.log"
    code, seconds = chw(["load", "--start", first.isoformat(), "--end", last.isoformat(),
                         "--landing", str(landing)], env, log)
    if code != 0:
        raise SystemExit(f"chw load failed (exit {code}); see {log}:\n{log.read_text()[-3000:]}")
    rows = raw_rows(admin_url(server, building))
    admin(server, sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    admin(server, sql.SQL("alter database {} rename to {}").format(
        sql.Identifier(building), sql.Identifier(name)))
    figures = {"nights": history - 1, "seconds": seconds, "raw_rows": rows,
               "first": first.isoformat(), "last": last.isoformat()}
    figures_file.write_text(json.dumps(figures))
    return name, figures


def export_dates(landing: Path) -> list[str]:
    return sorted(p.name for p in (landing / "crm").iterdir())


def task_seconds(home: Path, day: datetime.date) -> dict[str, float]:
    """Each task's duration in the night's DAG run, from Airflow's metadata database."""
    db = home / "airflow" / "airflow.db"
    if not db.exists():
        db = next(home.rglob("airflow.db"))
    with sqlite3.connect(db) as conn:
        run_id = conn.execute(
            "select run_id from dag_run where dag_id = ? and logical_date like ?"
            " order by id desc limit 1", (DAG_ID, f"{day.isoformat()}%")).fetchone()
        if run_id is None:
            return {}
        rows = conn.execute(
            "select task_id, map_index, duration from task_instance"
            " where dag_id = ? and run_id = ?", (DAG_ID, run_id[0])).fetchall()
    return {task if index < 0 else f"{task}[{index}]": float(seconds or 0.0)
            for task, index, seconds in rows}


def model_seconds(url: str, day: datetime.date) -> dict[str, float]:
    """Each dbt model's execution time in the night's successful `dbt_build`."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select run_results from audit.dbt_runs where as_of_date = %s and success"
            " order by recorded_at desc limit 1", (day,)).fetchone()
    if not row or not row[0]:
        return {}
    return {r["unique_id"].split(".")[-1]: float(r.get("execution_time") or 0.0)
            for r in row[0].get("results", []) if r["unique_id"].startswith("model.")}


def _meminfo_mib(*fields: str) -> float:
    values = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(values[f].split()[0]) for f in fields) / 1024


def settle(server: str) -> tuple[float, float]:
    """Wait until what the last night (or the copy of the history) wrote is on disk: a
    CHECKPOINT, then sync(2). (seconds, MiB of the page cache still dirty before.)

    In production two nights are a day apart, so no night runs while the one before is
    still being written out; back to back they might, and a night's figures would then
    carry part of the night before. The figures printed say how much was pending (issue
    15's tenth pass: at most 584 MiB and 0.4 s, so little was). A server that
    is not on this machine gets the CHECKPOINT only."""
    dirty = _meminfo_mib("Dirty", "Writeback")
    started = time.perf_counter()
    admin(server, sql.SQL("checkpoint"))  # the whole server's, whichever database
    os.sync()
    return time.perf_counter() - started, dirty


def run_nights(server: str, template: str, landing: Path, days: list[datetime.date],
               work: Path, label: str, keep: bool = False,
               settled: bool = True) -> list[Night]:
    name = f"chw_scale_run_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    admin(server, sql.SQL("create database {} template {} strategy file_copy").format(
        sql.Identifier(name), sql.Identifier(template)))
    print(f"  copied the history database in {time.perf_counter() - started:.0f} s", flush=True)
    url = admin_url(server, name)
    home = work / f"home-{label}"
    env = base_env(home, url)
    nights: list[Night] = []
    try:
        for day in days:
            if settled:
                seconds, dirty = settle(server)
                print(f"  settled before {day} in {seconds:.1f} s ({dirty:,.0f} MiB of the"
                      " page cache dirty)", flush=True)
            with PeakMemory() as memory:
                code, seconds = chw(["run", "--date", day.isoformat(), "--landing",
                                     str(landing)], env, work / f"run-{label}.log")
            night = Night(day, seconds, code == 0, task_seconds(home, day),
                          model_seconds(url, day), memory.peaks)
            nights.append(night)
            dbt = night.tasks.get("dbt_build", 0.0)
            print(f"  {label} {day}: {seconds:7.1f} s, dbt_build {dbt:7.1f} s"
                  f" {'ok' if night.ok else 'FAILED'}; peak MiB "
                  + ", ".join(f"{k} {v:.0f}" for k, v in sorted(memory.peaks.items())),
                  flush=True)
            if not night.ok:
                print((work / f"run-{label}.log").read_text()[-4000:], file=sys.stderr)
                break
    finally:
        if keep:
            print(f"  kept the database {name} (--keep-database): EXPLAIN the models there;"
                  " --drop-cache removes it", flush=True)
        else:
            admin(server, sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))
    return nights


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def report(label: str, nights: list[Night]) -> None:
    first, deltas = nights[0], nights[1:]
    print(f"\n== {label}: first night {first.day} and {len(deltas)} delta night(s)")
    tasks = sorted(first.tasks, key=lambda t: -first.tasks[t])
    print(f"  {'task':34} {'first':>8} " + " ".join(f"{str(n.day)[5:]:>7}" for n in deltas))
    for task in tasks:
        print(f"  {task:34} {first.tasks[task]:8.1f} "
              + " ".join(f"{n.tasks.get(task, 0):7.1f}" for n in deltas))
    print(f"  {'end to end (chw run)':34} {first.seconds:8.1f} "
          + " ".join(f"{n.seconds:7.1f}" for n in deltas))
    if not deltas:
        return
    night = mean([n.seconds for n in deltas])
    dbt = mean([n.tasks.get("dbt_build", 0.0) for n in deltas])
    first_dbt = first.tasks.get("dbt_build", float("nan"))
    print(f"  delta night / first night: end to end {night / first.seconds:.3f}"
          f" (goal <= 0.15), dbt_build {dbt / first_dbt:.3f} (goal <= 0.10)")
    costs = {m: mean([n.models.get(m, 0.0) for n in deltas]) for m in deltas[0].models}
    top = sorted(costs, key=lambda m: -costs[m])[:10]
    print("  ten most expensive models of a delta night (mean s; first night's full build):")
    for model in top:
        print(f"    {model:44} {costs[model]:7.2f}  ({first.models.get(model, 0.0):.2f})")
    # (a margin of half a second: models of a second or less move that much from run to run)
    slower = [m for m in costs if costs[m] > first.models.get(m, float("inf")) + 0.5]
    print("  models slower in a delta night than in the first night's build (+0.5 s): "
          + (", ".join(f"{m} {costs[m]:.1f} s vs {first.models[m]:.1f} s" for m in slower)
             or "none"))
    peaks: dict[str, float] = {}
    for n in nights:
        for k, v in n.peak_mib.items():
            peaks[k] = max(peaks.get(k, 0.0), v)
    print("  peak memory of one process (MiB): "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peaks.items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--history-days", type=int, nargs="+", default=[365, 730])
    ap.add_argument("--delta-nights", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    default_cache = os.environ.get("CHW_BENCH_CACHE") or (
        Path.home() / ".cache" / "customer-health" / "bench-scale")
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    ap.add_argument("--drop-cache", action="store_true",
                    help="remove the cached landing areas and history databases, then stop")
    ap.add_argument("--keep-database", action="store_true",
                    help="keep each history's database after its nights (to EXPLAIN the"
                         " models' SQL on the benchmark's data)")
    ap.add_argument("--no-settle", action="store_true",
                    help="run the nights back to back, without a CHECKPOINT and sync(2)"
                         " before each (a night then also pays for flushing the one before)")
    args = ap.parse_args(argv)

    args.cache.mkdir(parents=True, exist_ok=True)
    results: dict[int, list[Night]] = {}
    with warehouse.warehouse_session() as server, \
            tempfile.TemporaryDirectory(prefix="chw-bench-scale-") as tmp:
        if args.drop_cache:
            with psycopg.connect(admin_url(server, "postgres"), autocommit=True) as conn:
                names = [r[0] for r in conn.execute(
                    "select datname from pg_database where datname like 'chw\\_scale\\_%'")]
            for name in names:
                admin(server, sql.SQL("drop database {} with (force)").format(
                    sql.Identifier(name)))
            shutil.rmtree(args.cache, ignore_errors=True)
            print(f"dropped {len(names)} database(s) and {args.cache}")
            return 0
        work = Path(tmp)
        for history in args.history_days:
            print(f"\n=== {args.accounts:,} accounts, {history} days of nightly exports",
                  flush=True)
            landing = ensure_landing(args.cache, args.accounts, history, args.delta_nights,
                                     args.seed)
            template, loaded = ensure_history(server, args.cache, landing, args.accounts,
                                              history, args.seed, work)
            print(f"  history: {loaded['nights']} nights ({loaded['first']}..{loaded['last']},"
                  f" {loaded['raw_rows']:,} raw rows) loaded by chw load --start/--end in"
                  f" {loaded['seconds']:.0f} s:"
                  f" {60 * loaded['nights'] / loaded['seconds']:.1f} nights per minute",
                  flush=True)
            first = datetime.date.fromisoformat(loaded["last"]) + datetime.timedelta(days=1)
            days = [first + datetime.timedelta(days=i) for i in range(args.delta_nights + 1)]
            results[history] = run_nights(server, template, landing, days, work, f"h{history}",
                                          args.keep_database, settled=not args.no_settle)
        for history, nights in results.items():
            report(f"{history} days", nights)
        if len(results) >= 2:
            (short, a), (long, b) = sorted(results.items())[0], sorted(results.items())[-1]
            if len(a) > 1 and len(b) > 1:
                ea, eb = mean([n.seconds for n in a[1:]]), mean([n.seconds for n in b[1:]])
                da = mean([n.tasks.get("dbt_build", 0.0) for n in a[1:]])
                db = mean([n.tasks.get("dbt_build", 0.0) for n in b[1:]])
                print(f"\n== delta night, {long} against {short} days of history: end to end"
                      f" {eb:.1f} / {ea:.1f} s = {eb / ea:.3f}, dbt_build {db:.1f} / {da:.1f} s"
                      f" = {db / da:.3f} (goal <= 1.10)")
    failed = any(not n.ok for nights in results.values() for n in nights)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
