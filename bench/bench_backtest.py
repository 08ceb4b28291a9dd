"""The health score's back-test from one full-history export: `python bench/bench_backtest.py`.

Generates a landing area (default 20,000 accounts, two years of history, one full export),
loads it into a scratch database, builds everything else with `dbt run` for its date, then
times the back-test alone (`dbt run --select int_backtest_dates+`: the point-in-time scores
of every monthly evaluation date, computed set-based from raw, and the two back-test marts)
and prints the evaluation dates, rows and seconds per model; then times the same run again,
as a night without a new evaluation date (int_backtest_scores is incremental by date). Uses
CHW_WAREHOUSE_URL, or the embedded warehouse when that is unset; the scratch database is
dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dbt import raw_rows, scratch_database, slowest, timed  # noqa: E402

from customer_health import warehouse  # noqa: E402
from customer_health.generate import generate_landing  # noqa: E402
from customer_health.loading import load_export  # noqa: E402
from customer_health.modelling import transform  # noqa: E402

BACKTEST = ["run", "--quiet", "--select", "int_backtest_dates+"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--history-days", type=int, default=730)
    ap.add_argument("--start", type=datetime.date.fromisoformat,
                    default=datetime.date(2026, 10, 1))
    ap.add_argument("--landing", type=Path, help="reuse (or keep) a generated landing area")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args(argv)

    landing = args.landing or Path(tempfile.mkdtemp(prefix="chw-bench-backtest-"))
    try:
        if not (landing / "crm" / args.start.isoformat()).exists():
            timed(f"generate {args.accounts:,} accounts, {args.history_days} days of history",
                  generate_landing, landing, accounts=args.accounts, start=args.start, days=1,
                  seed=1, history_days=args.history_days, overwrite=True)
        with warehouse.warehouse_session() as server, scratch_database(server, args.keep_db) as url:
            timed(f"load the full export {args.start}", load_export, url, landing, args.start)
            print(f"raw rows: {raw_rows(url):,}")
            transform.run_dbt(["seed", "--quiet"], url, args.start)
            timed("dbt run of everything but the back-test", transform.run_dbt,
                  ["run", "--quiet", "--exclude", "int_backtest_dates+"], url, args.start)
            result, seconds = timed("the back-test (int_backtest_dates+)", transform.run_dbt,
                                    BACKTEST, url, args.start)
            print(f"  models: {slowest(result)}")
            result, again = timed("the back-test again, as a night without a new evaluation"
                                  " date (incremental)", transform.run_dbt, BACKTEST, url,
                                  args.start)
            print(f"  models: {slowest(result)}")
            with psycopg.connect(url) as conn:
                dates, rows, churned = conn.execute(
                    "select count(distinct evaluation_date), count(*),"
                    " count(*) filter (where churned_within_horizon)"
                    " from marts.health_score_backtest_accounts").fetchone()
                aucs = conn.execute(
                    "select round(avg(auc), 3), round(min(auc), 3), round(max(auc), 3)"
                    " from marts.health_score_backtest where segment = 'all'").fetchone()
            print(f"back-test of {dates} monthly evaluation dates at {args.accounts:,} accounts:"
                  f" {seconds:.1f} s for {rows:,} point-in-time account scores"
                  f" ({churned:,} churned within the horizon); AUC per date (all accounts):"
                  f" mean {aucs[0]}, {aucs[1]}..{aucs[2]};"
                  f" a night without a new date: {again:.1f} s")
    finally:
        if args.landing is None:
            shutil.rmtree(landing, ignore_errors=True)


if __name__ == "__main__":
    main()
