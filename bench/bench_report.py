"""Report rendering at scale: `python bench/bench_report.py [--accounts 100000]`.

Fills hand-made mart tables (the contract's columns, tests/report_fixtures.py) in a
scratch database with N synthetic accounts over 7 teams (via COPY): the night and the
night 7 days earlier of customer_health, the night of customer_inactivity and
customer_lifetime_value, 90 nights of account_team_summary and two months of
revenue_movements. Then times publish_reports (every team's page and CSV and the
index) and prints the seconds and the output sizes. Goal (issue 6): under a minute for
100,000 accounts. Uses CHW_WAREHOUSE_URL, or the embedded warehouse when that is unset.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "tests"))

from report_fixtures import create_marts  # noqa: E402

from customer_health.contract import SEGMENTS  # noqa: E402
from customer_health.modelling import dbt_facts  # noqa: E402

AS_OF = date(2026, 11, 20)
TEAMS = ("na-enterprise", "na-growth", "na-smb", "emea-enterprise", "emea-growth", "apac",
         "latam")
WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell",
         "Cyberdyne", "Soylent", "Wonka", "Gringotts", "Oscorp", "Vandelay", "Nakatomi")
SUFFIXES = ("Inc", "GmbH", "Ltd", "& Co", "S.A.", "<Labs>", "\"Group\"", "KK")
DRIVERS = ("Failed payments (2 in the last 90 days)", "No contact for 45 days",
           "Few touchpoints lately (2 in the last 90 days)", "Unhappy survey answers (NPS -50)",
           "2 urgent or high-priority ticket(s) still open", None)
ACTIONS = ("No action needed", "Schedule a check-in", "Book a renewal conversation",
           "Call about the failed payment", "Send a useful update or a check-in e-mail")


def _with_database(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    name = f"chw_bench_report_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield _with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))


def _tsv(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _copy(conn: psycopg.Connection, table: str, columns: list[str], rows: list[tuple]) -> None:
    statement = sql.SQL("copy marts.{} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with conn.cursor().copy(statement) as copy:
        for start in range(0, len(rows), 20_000):
            chunk = rows[start:start + 20_000]
            copy.write("".join("\t".join(_tsv(v) for v in row) + "\n" for row in chunk))


def _band(score: float) -> str | None:
    return dbt_facts.health_band(score)


def fill(url: str, accounts: int, seed: int = 11) -> None:
    rnd = random.Random(seed)
    health, inactivity, clv, movements = [], [], [], []
    month, year_ago = AS_OF.replace(day=1), AS_OF.replace(year=AS_OF.year - 1, day=1)
    for i in range(accounts):
        account_id = f"acc-{i:07d}"
        name = f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {rnd.choice(SUFFIXES)} #{i}"
        team = TEAMS[i % len(TEAMS)]
        segment = SEGMENTS[i % 3]
        owner = f"owner{i % 40}@{team}.example"
        churned = rnd.random() < 0.05
        mrr = 0.0 if churned else round(rnd.lognormvariate(6, 1), 2)
        renewal = None if churned else AS_OF + timedelta(days=rnd.randint(0, 365))
        before = [round(rnd.uniform(20, 100), 1) for _ in range(4)]
        now = [max(0.0, round(s - rnd.choice((0, 0, 0, 5, 20)), 1)) for s in before]
        for day, comps in ((AS_OF - timedelta(days=7), before), (AS_OF, now)):
            score = round(0.3 * comps[0] + 0.2 * comps[1] + 0.2 * comps[2] + 0.3 * comps[3], 1)
            prev = round(0.3 * before[0] + 0.2 * before[1] + 0.2 * before[2] + 0.3 * before[3],
                         1)
            health.append((day, account_id, name, team, owner, segment, "north", mrr, renewal,
                           None if renewal is None else (renewal - day).days, *comps, score,
                           _band(score), round(score - prev, 1) if day == AS_OF else None,
                           rnd.choice(DRIVERS)))
        touch = rnd.choice((None, *range(0, 200)))
        inactivity.append((AS_OF, account_id, name, team, owner, touch, rnd.randint(0, 90),
                           "active" if touch is not None and touch <= 30 else "dormant",
                           churned, churned and rnd.random() < 0.3, rnd.choice(ACTIONS)))
        clv.append((AS_OF, account_id, team, segment, round(rnd.uniform(0, 200_000), 2), mrr))
        previous = 0.0 if rnd.random() < 0.03 else round(mrr * rnd.uniform(0.8, 1.2), 2)
        if mrr or previous:
            movements.append((month, account_id, team, segment, mrr, previous, "retained"))
        movements.append((year_ago, account_id, team, segment, previous or 100.0,
                          previous or 100.0, "retained"))
    summary = []
    for back in range(90):
        for t, team in enumerate(TEAMS):
            summary.append((AS_OF - timedelta(days=back), team, accounts // len(TEAMS),
                            round(58 + 6 * ((back + 7 * t) % 30) / 30, 1)))
    with psycopg.connect(url) as conn:
        create_marts(conn)
        _copy(conn, "customer_health", [
            "as_of_date", "account_id", "account_name", "account_team", "owner_email",
            "segment", "region", "mrr", "renewal_date", "days_to_renewal", "engagement_score",
            "support_score", "sentiment_score", "billing_score", "health_score", "health_band",
            "score_change_7d", "top_risk_driver"], health)
        _copy(conn, "customer_inactivity", [
            "as_of_date", "account_id", "account_name", "account_team", "owner_email",
            "days_since_last_touch", "days_since_last_payment", "inactivity_tier",
            "is_churned", "win_back_candidate", "recommended_action"], inactivity)
        _copy(conn, "customer_lifetime_value", [
            "as_of_date", "account_id", "account_team", "segment", "lifetime_revenue",
            "current_mrr"], clv)
        _copy(conn, "revenue_movements", [
            "month", "account_id", "account_team", "segment", "mrr", "previous_mrr",
            "movement"], movements)
        _copy(conn, "account_team_summary", [
            "as_of_date", "account_team", "accounts", "avg_health_score"], summary)
        conn.commit()
        conn.autocommit = True
        conn.execute("analyze")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    from customer_health.reporting import publish_reports
    from customer_health.warehouse import warehouse_session

    with warehouse_session() as url, scratch_database(url) as db, \
            tempfile.TemporaryDirectory() as reports:
        started = time.perf_counter()
        fill(db, args.accounts)
        print(f"filled the marts with {args.accounts:,} accounts in "
              f"{time.perf_counter() - started:.1f}s (not part of the figure)")
        result = publish_reports(db, AS_OF, Path(reports),
                                 quality={"status": "passed", "failures": [], "warnings": []})
        size = sum(p.stat().st_size for p in result.night_dir.rglob("*") if p.is_file())
        print(f"publish_reports: {result.seconds:.1f} s for {args.accounts:,} accounts in "
              f"{len(result.teams)} teams ({size / 2**20:.1f} MiB of HTML and CSV; "
              f"largest page {max(t.html_path.stat().st_size for t in result.teams) / 2**20:.1f}"
              " MiB)")
        print(f"goal: under 60 s -> {'met' if result.seconds < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
