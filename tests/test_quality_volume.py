"""The raw gate's volume check: a night against earlier nights of its kind.

Four years of the generator's nights (two of history, 729 deltas), replayed through the
rule's pure functions; and the gate end to end on a real PostgreSQL, with history in the
ledger of loads and tonight's rows in raw.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from customer_health import settings
from customer_health.contract import ENTITIES
from customer_health.loading.raw_schema import ensure_partition, ensure_schemas
from customer_health.quality import QualityGateFailed, validate_raw
from customer_health.quality.config import QualityConfigError, VolumeRule, load_config
from customer_health.quality.volume import (
    BLOCK,
    PASS,
    WARN,
    baseline,
    decide,
    is_quiet,
    kind_of,
    verdict,
)
from customer_health.quality.volume_replay import Judged, generated_counts, replay

RULE = VolumeRule()  # the defaults, which expectations/quality.yml repeats
FIRST_EXPORT = date(2024, 11, 1)
#: A usual night at least this big: halving or doubling it is beyond the noise allowance.
BIG = 150


@pytest.fixture(scope="module")
def four_years() -> dict[str, list[Judged]]:
    """Each raw suite's 730 nights (the first full) after 730 days of history, judged."""
    counts = generated_counts(accounts=5000, start=FIRST_EXPORT, days=730, seed=11,
                              history_days=730)
    return {f"raw.{e.raw_table}": replay(c, RULE, f"raw.{e.raw_table}")
            for e, c in counts.items()}


def _deltas(judged: list[Judged]) -> list[Judged]:
    return [j for j in judged if not j.count.full]


def test_the_committed_quality_yml_is_the_tested_rule() -> None:
    assert load_config(settings.expectations_dir() / "quality.yml").volume == RULE


def test_generated_nights_have_a_weekly_and_a_month_end_rhythm(
        four_years: dict[str, list[Judged]]) -> None:
    """What the old rule (the last 7 deltas, whatever their weekday) tripped over."""
    def median_rows(suite: str, keep: Callable[[date], bool]) -> float:
        rows = sorted(j.count.rows for j in _deltas(four_years[suite]) if keep(j.count.night))
        return rows[len(rows) // 2]

    mondays = median_rows("raw.crm_activities", lambda d: d.weekday() == 0)
    wednesdays = median_rows("raw.crm_activities", lambda d: d.weekday() == 2)
    assert mondays < wednesdays / 5
    the_29th = median_rows("raw.billing_invoices", lambda d: d.day == 29)
    the_15th = median_rows("raw.billing_invoices", lambda d: d.day == 15)
    assert the_29th > 2 * the_15th


def test_four_years_of_normal_nights_block_fewer_than_one_percent(
        four_years: dict[str, list[Judged]]) -> None:
    nights = {j.count.night for j in _deltas(four_years["raw.crm_accounts"])}
    assert len(nights) == 729
    blocked = {(s, j.count.night) for s, judged in four_years.items()
               for j in _deltas(judged) if j.verdict.outcome == BLOCK}
    blocked_nights = {night for _, night in blocked}
    assert len(blocked_nights) < 0.01 * len(nights), sorted(blocked)
    # too little history warns and never blocks: the first three weeks of deltas
    first_weeks = [j for judged in four_years.values() for j in _deltas(judged)
                   if j.count.night < FIRST_EXPORT + timedelta(days=22)]
    assert {j.verdict.outcome for j in first_weeks} <= {PASS, WARN}
    assert sum(j.verdict.outcome == WARN for j in first_weeks) >= 9 * 7  # nothing to compare
    # the year end is quiet: its short nights warn (the generator halves activity then)
    year_end = [j for j in _deltas(four_years["raw.crm_activities"]) if j.baseline.quiet]
    assert len(year_end) == 22
    assert sum(j.verdict.outcome == WARN for j in year_end) >= 16
    assert all(j.verdict.outcome != BLOCK for j in year_end)


def test_half_or_double_the_usual_rows_is_blocked(four_years: dict[str, list[Judged]]) -> None:
    """Every night that can block (enough history of its kind, outside a quiet period) and
    usually holds at least 150 rows blocks with half or double its usual rows (the median
    of its kind); halving or doubling the night's own rows blocks all but a few."""
    checked = 0
    own = own_blocked = 0
    for suite, judged in four_years.items():
        for j in _deltas(judged):
            base = j.baseline
            if base.median is None or base.median < BIG or \
                    verdict(0, base, RULE).outcome != BLOCK:
                continue
            checked += 1
            assert verdict(int(base.median / 2), base, RULE).outcome == BLOCK, (suite, j)
            assert verdict(int(base.median * 2) + 1, base, RULE).outcome == BLOCK, (suite, j)
            own += 2
            own_blocked += verdict(j.count.rows // 2, base, RULE).outcome == BLOCK
            own_blocked += verdict(j.count.rows * 2, base, RULE).outcome == BLOCK
    assert checked > 500
    assert own_blocked >= 0.98 * own


def test_kinds_of_nights() -> None:
    tuesday = date(2026, 11, 3)
    assert kind_of(tuesday, False, RULE, month_end=False).label == "delta Tuesday"
    assert kind_of(tuesday, True, RULE, month_end=False).label == "full"
    # billing: the export of 1 March holds the changes of 28 February, the month-end peak
    feb_28 = kind_of(date(2025, 3, 1), False, RULE, month_end=True)
    assert feb_28.key == ("month_day", 28) and feb_28.label == "delta day-28 (month end)"
    assert kind_of(date(2025, 3, 1), False, RULE, month_end=False).key == ("weekday", 5)
    assert kind_of(date(2025, 3, 28), False, RULE, month_end=True).key == ("weekday", 4)
    assert is_quiet(date(2025, 12, 22), RULE) and is_quiet(date(2026, 1, 1), RULE)
    assert not is_quiet(date(2025, 12, 21), RULE) and not is_quiet(date(2026, 1, 2), RULE)


def test_band_and_outcomes_of_the_pure_rule() -> None:
    assert RULE.bounds(2000) == (1323, 3010)  # median / 1.5 - 10 .. median * 1.5 + 10
    assert RULE.bounds(100) == (40, 160)  # median -/+ 5 sqrt(median), then 10 rows
    assert RULE.bounds(0) == (0, 10)
    # docs/quality.md: half the usual rows falls outside from 141 rows on, double from 45
    assert [m for m in range(1, 2000) if m // 2 >= RULE.bounds(m)[0]][-1] == 140
    assert [m for m in range(1, 2000) if 2 * m <= RULE.bounds(m)[1]][-1] == 44
    tuesdays = {date(2026, 10, 27) - timedelta(weeks=w): 1000 + w for w in range(8)}
    mondays = {date(2026, 10, 26) - timedelta(weeks=w): 100 for w in range(8)}
    history = {**tuesdays, **mondays}
    night = date(2026, 11, 3)
    base = baseline(night, False, history, RULE, month_end=False)
    assert sorted(base.counts) == sorted(tuesdays)[-6:] and base.median == 1002.5
    assert verdict(1000, base, RULE).outcome == PASS
    assert verdict(500, base, RULE).outcome == BLOCK
    assert verdict(2005, base, RULE).outcome == BLOCK
    assert decide(date(2026, 11, 2), False, 100, history, RULE, month_end=False).outcome == PASS
    # too little history of the kind warns; none at all: not compared
    two = {d: n for d, n in tuesdays.items() if d >= date(2026, 10, 20)}
    thin = decide(night, False, 10, two, RULE, month_end=False)
    assert thin.outcome == WARN and "fewer than 3: warns" in thin.reason
    none = decide(night, False, 10, mondays, RULE, month_end=False)
    assert none.outcome == WARN and none.reason == "not compared: no earlier delta Tuesday night"
    # a quiet night falls short: warns; too many rows still block
    christmas = date(2026, 12, 29)  # a Tuesday
    quiet = {**tuesdays, **{d + timedelta(weeks=9): 1000 for d in tuesdays}}
    assert decide(christmas, False, 400, quiet, RULE, month_end=False).outcome == WARN
    assert decide(christmas, False, 2500, quiet, RULE, month_end=False).outcome == BLOCK


def test_volume_settings_from_file_and_environment(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "quality.yml"
    path.write_text("volume:\n  tolerance: 0.3\n  quiet_periods: ['07-25..08-15']\n"
                    "  month_end_suites: []\n", encoding="utf-8")
    monkeypatch.delenv("CHW_QUALITY_VOLUME_TOLERANCE", raising=False)
    rule = load_config(path).volume
    assert (rule.tolerance, rule.quiet_periods, rule.month_end_suites) == (
        0.3, (((7, 25), (8, 15)),), ())
    monkeypatch.setenv("CHW_QUALITY_VOLUME_TOLERANCE", "0.8")
    assert load_config(path).volume.tolerance == 0.8
    monkeypatch.setenv("CHW_QUALITY_VOLUME_TOLERANCE", "wide")
    with pytest.raises(ValueError, match="CHW_QUALITY_VOLUME_TOLERANCE='wide' is not a number"):
        load_config(path)
    monkeypatch.delenv("CHW_QUALITY_VOLUME_TOLERANCE")
    path.write_text("volume:\n  quiet_periods: ['12-32..01-01']\n", encoding="utf-8")
    with pytest.raises(QualityConfigError, match="'12-32' is not a month-day"):
        load_config(path)


# ---- end to end: the gate on PostgreSQL ---------------------------------------------------

NPS = next(e for e in ENTITIES if e.raw_table == "crm_nps_responses")
#: A weekly rhythm: rows of a delta by the export date's weekday (Monday first).
WEEK = (40, 300, 310, 290, 305, 60, 30)
HISTORY_FROM = date(2026, 9, 7)  # a Monday; the full export is the night before
HISTORY_TO = date(2026, 10, 18)  # a Sunday: six weeks of deltas


@pytest.fixture(scope="module")
def weekly(fresh_database_factory: Callable[[], str]) -> str:
    """Six weeks of NPS deltas with a weekly rhythm in the ledger of loads (only the last
    two Saturdays: Saturdays have too little history), after a full export."""
    url = fresh_database_factory()
    nights = [(HISTORY_FROM - timedelta(days=1), 5000)]
    day = HISTORY_FROM
    while day <= HISTORY_TO:
        if day.weekday() != 5 or day > HISTORY_TO - timedelta(days=14):
            nights.append((day, WEEK[day.weekday()] + day.day % 7))
        day += timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schemas(conn)
        conn.execute(
            "insert into audit.load_ledger (system, export_date, entity, file_name,"
            " rows_read, rows_loaded, status, started_at, finished_at)"
            " select 'crm', n.d, 'nps_responses', 'nps_responses.csv', n.rows, n.rows,"
            " 'loaded', now(), now() from unnest(%s::date[], %s::int[]) as n(d, rows)",
            ([d for d, _ in nights], [n for _, n in nights]))
        # a rejected re-delivery of one Wednesday does not count; the night is left out
        conn.execute(
            "insert into audit.load_ledger (system, export_date, entity, file_name, status,"
            " started_at) values ('crm', '2026-10-14', 'nps_responses', 'nps_responses.csv',"
            " 'rejected', now())")
    return url


def _tonight(url: str, night: date, rows: int) -> None:
    """Tonight's rows in raw (the gate counts them there; earlier nights come from the
    ledger, so raw holds only tonight)."""
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_partition(conn, NPS, night)
        conn.execute(
            "insert into raw.crm_nps_responses (response_id, account_id, score, responded_at,"
            " _export_date, _source_file, _line_number)"
            " select 'R' || %s || '-' || i, 'A1', 8, %s::date - interval '2 hours', %s,"
            " 'crm/nps_responses.csv', i + 1 from generate_series(1, %s) as i",
            (night.isoformat(), night, night, rows))


def _volume(url: str, night: date, run_id: str):
    report = validate_raw(url, night, run_id, systems=["crm"])
    (outcome,) = [o for o in report.outcomes
                  if o.suite == "raw.crm_nps_responses" and o.expectation == "volume"]
    return report, outcome


def test_gate_passes_a_normal_weekly_rhythm(gx_root: Path, weekly: str) -> None:
    monday = date(2026, 10, 19)
    _tonight(weekly, monday, 45)  # the old rule (last 7 nights, median 290) blocked this
    report, outcome = _volume(weekly, monday, "run-monday")
    assert outcome.success, outcome.observed_value
    assert outcome.observed_value.startswith("45 rows; expected ")
    assert "of 6 earlier delta Monday night(s))" in outcome.observed_value
    assert outcome.details["volume"]["kind"] == "delta Monday"
    assert outcome.details["volume"]["earlier_nights"] == 6
    report.raise_for_failures()


@pytest.mark.parametrize(("night", "rows"), [(date(2026, 10, 21), 150),
                                             (date(2026, 10, 22), 600)],
                         ids=["half", "double"])
def test_gate_blocks_half_or_double_a_usual_night(gx_root: Path, weekly: str, night: date,
                                                  rows: int) -> None:
    _tonight(weekly, night, rows)
    report, outcome = _volume(weekly, night, f"run-{rows}")
    assert not outcome.success and outcome.severity == "block"
    assert outcome in report.failures
    expected = f"raw.crm_nps_responses / volume: observed {rows} rows"
    with pytest.raises(QualityGateFailed, match=expected):
        report.raise_for_failures()
    with psycopg.connect(weekly) as conn:
        stored = conn.execute(
            "select severity, success, details->'volume'->>'kind' from audit.quality_results"
            " where run_id = %s and suite = 'raw.crm_nps_responses' and expectation = 'volume'",
            (f"run-{rows}",)).fetchone()
    assert stored == ("block", False, f"delta {night:%A}")
    if night.weekday() == 2:  # the rejected Wednesday is left out of the baseline
        assert "2026-10-14" not in outcome.details["volume"]["counts"]
        assert outcome.details["volume"]["earlier_nights"] == 5


def test_gate_warns_with_too_little_history_of_the_kind(gx_root: Path, weekly: str) -> None:
    saturday = date(2026, 10, 24)
    _tonight(weekly, saturday, 200)  # three times a usual Saturday
    report, outcome = _volume(weekly, saturday, "run-saturday")
    assert not outcome.success and outcome.severity == "warn"
    assert "only 2 earlier night(s) of the kind, fewer than 3: warns" in outcome.observed_value
    assert report.failures == []
    report.raise_for_failures()


def test_severity_override_downgrades_a_blocked_volume(gx_root: Path, weekly: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    thursday = date(2026, 10, 29)
    _tonight(weekly, thursday, 1000)
    monkeypatch.setenv("CHW_QUALITY_SEVERITY", "raw.crm_nps_responses:volume=warn")
    report, outcome = _volume(weekly, thursday, "run-override")
    assert not outcome.success and outcome.severity == "warn"
    assert report.failures == []
    # and a wider band through CHW_QUALITY_VOLUME_TOLERANCE lets it pass
    monkeypatch.delenv("CHW_QUALITY_SEVERITY")
    monkeypatch.setenv("CHW_QUALITY_VOLUME_TOLERANCE", "3")
    _, wide = _volume(weekly, thursday, "run-wide")
    assert wide.success, wide.observed_value


def test_billing_month_end_is_compared_with_the_same_month_day() -> None:
    """Billing's 28th (the export of the 29th) is compared with earlier 28ths; it needs six
    of them before a miss blocks."""
    def month_ends(months: int, rows: int) -> dict[date, int]:
        return {date(2026, 9 - m, 29): rows for m in range(months)}

    weekdays = {date(2026, 10, 29) - timedelta(days=d): 300 for d in range(1, 60)
                if (date(2026, 10, 29) - timedelta(days=d)).day not in (29, 30, 31, 1)}
    night = date(2026, 10, 29)  # a Thursday; its changes are of the 28th
    peak = decide(night, False, 900, {**weekdays, **month_ends(6, 880)}, RULE, month_end=True)
    assert peak.outcome == PASS and "6 earlier delta day-28 (month end)" in peak.reason
    # the same night in a suite without a month-end rhythm is a Thursday like the others
    crm = decide(night, False, 900, {**weekdays, **month_ends(6, 880)}, RULE, month_end=False)
    assert crm.outcome == BLOCK and "delta Thursday" in crm.reason
    short = decide(night, False, 300, {**weekdays, **month_ends(6, 880)}, RULE, month_end=True)
    assert short.outcome == BLOCK
    thin = decide(night, False, 300, {**weekdays, **month_ends(5, 880)}, RULE, month_end=True)
    assert thin.outcome == WARN and "fewer than 6: warns" in thin.reason
    # the 30th: a miss warns, the day drifts over the year
    the_30th = {d: 120 for d in (date(2026, 10, 1) - timedelta(days=n) for n in range(1, 300))
                if (d - timedelta(days=1)).day == 30}  # exports of the 30th's changes
    tail = decide(date(2026, 10, 1), False, 400, {**weekdays, **the_30th}, RULE, month_end=True)
    assert tail.outcome == WARN and "delta day-30 (month end)" in tail.reason
    assert "not every month has" in tail.reason
