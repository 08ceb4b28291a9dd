"""The raw gate's volume check over the generator's nights: blocked share, old rule against new.

Usage: .venv/bin/python bench/bench_volume.py --accounts 10000 --days 730 --history-days 730
Generates `days` export dates after `history-days` of simulated history (730 + 730: four
years, 729 delta nights), counting each night's rows instead of writing files (or reads the
manifests of --landing), and replays, per entity, the old rule (median of the last 7 delta
nights, half to double, 20 rows of slack) and the rule of expectations/quality.yml
(customer_health.quality.volume). Every generated night is normal, so every blocked night
is a false alarm. It also replays each night that can block and usually holds at least 150
rows with half and with double its usual rows (the median of its kind), which should be
should be blocked. No warehouse is needed.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
from pathlib import Path

from customer_health.quality.config import VolumeRule, load_config
from customer_health.quality.volume import BLOCK, verdict
from customer_health.quality.volume_replay import (
    Judged,
    NightCount,
    generated_counts,
    manifest_counts,
    replay,
)

#: A usual night at least this big: halving or doubling it is beyond the noise allowance.
BIG = 150


def old_rule_blocked(counts: list[NightCount]) -> set[datetime.date]:
    """The rule before issue 13: the median of the last 7 earlier deltas, median / 2 - 20
    .. median * 2 + 20, blocking from 3 earlier deltas on."""
    blocked, earlier = set(), []
    for c in counts:
        if c.full:
            continue
        last = earlier[-7:]
        if len(last) >= 3:
            median = statistics.median(last)
            low = max(int(median / 2) - 20, 0)
            high = int(median * 2 + 0.999999) + 20
            if not low <= c.rows <= high:
                blocked.add(c.night)
        earlier.append(c.rows)
    return blocked


def usual_and_big(j: Judged, rule: VolumeRule) -> bool:
    """A night that can block (enough history of its kind, not quiet) and is usually big."""
    base = j.baseline
    return (base.median is not None and base.median >= BIG
            and verdict(0, base, rule).outcome == BLOCK)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--history-days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=datetime.date.fromisoformat,
                    default=datetime.date(2024, 11, 1))
    ap.add_argument("--landing", type=Path, help="replay this landing area, generate nothing")
    args = ap.parse_args(argv)

    if args.landing is not None:
        series = manifest_counts(args.landing)
    else:
        series = generated_counts(accounts=args.accounts, start=args.start, days=args.days,
                                  seed=args.seed, history_days=args.history_days)
    rule = load_config().volume
    print(f"accounts={args.accounts} seed={args.seed} first export={args.start} "
          f"days={args.days} history_days={args.history_days}")
    print(f"rule: {rule}")
    head = (f"{'entity':<24}{'deltas':>7}{'old blocked':>15}{'new blocked':>15}"
            f"{'new warned':>12}{'big nights':>12}{'half blocked':>14}{'double blocked':>16}"
            f"{'own rows x0.5/x2 blocked':>26}")
    print(head)
    any_old: set = set()
    any_new: set = set()
    deltas: set = set()
    totals = [0, 0, 0, 0, 0, 0, 0]
    for entity, counts in series.items():
        suite = f"raw.{entity.raw_table}"
        judged = [j for j in replay(counts, rule, suite) if not j.count.full]
        old = old_rule_blocked(counts)
        new = {j.count.night for j in judged if j.verdict.outcome == BLOCK}
        warned = sum(j.verdict.outcome == "warn" for j in judged)
        big = [j for j in judged if usual_and_big(j, rule)]
        half = sum(verdict(int(j.baseline.median / 2), j.baseline, rule).outcome == BLOCK
                   for j in big)
        double = sum(verdict(int(j.baseline.median * 2) + 1, j.baseline, rule).outcome == BLOCK
                     for j in big)
        # the night's own rows halved or doubled (a night may itself lie off its median)
        own = sum((verdict(j.count.rows // 2, j.baseline, rule).outcome == BLOCK)
                  + (verdict(j.count.rows * 2, j.baseline, rule).outcome == BLOCK) for j in big)
        n = len(judged)
        any_old |= old
        any_new |= new
        deltas |= {j.count.night for j in judged}
        for i, v in enumerate((len(old), len(new), n, len(big), own, half, double)):
            totals[i] += v
        print(f"{entity.raw_table:<24}{n:>7}{len(old):>7} ({len(old) / n:5.1%})"
              f"{len(new):>7} ({len(new) / n:5.1%}){warned:>12}{len(big):>12}"
              f"{half:>8}/{len(big):<5}{double:>10}/{len(big):<5}{own:>14}/{2 * len(big):<5}")
    nights = len(deltas)
    if totals[3]:
        print(f"nights usually >= {BIG} rows that can block: {totals[3]}; with half their usual"
              f" rows blocked {totals[5]}, with double {totals[6]}; their own rows halved or"
              f" doubled blocked {totals[4]}/{2 * totals[3]} ({totals[4] / totals[3] / 2:.1%})")
    print(f"entity-nights blocked: old {totals[0]}/{totals[2]} ({totals[0] / totals[2]:.1%}),"
          f" new {totals[1]}/{totals[2]} ({totals[1] / totals[2]:.2%})")
    print(f"delta nights blocked (any entity): old {len(any_old)}/{nights} "
          f"({len(any_old) / nights:.1%}), new {len(any_new)}/{nights} "
          f"({len(any_new) / nights:.2%})")


if __name__ == "__main__":
    main()
