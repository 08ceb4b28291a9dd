"""Old nights of raw folded into monthly partitions (loading/compaction.py): every row and
its provenance kept, a re-delivered night of a folded month replaced alone, and the
folding driven by CHW_RAW_NIGHTLY_DAYS after a load."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from loading_helpers import ACT_HEADER, act, csv_text, query, write_export

from customer_health.contract import entity
from customer_health.loading import compaction, load_file

ACTIVITIES = entity("crm", "activities")
FULL = date(2026, 8, 30)  # the first export: stays a partition of its own
SEPTEMBER = [date(2026, 9, 1) + timedelta(days=i) for i in range(4)]
OCTOBER = date(2026, 10, 2)
EVERY_ROW = ("select _export_date, _line_number, activity_id, subject, _loaded_at,"
             " _source_file, _extra from raw.crm_activities order by 1, 2")


@pytest.fixture
def db(fresh_database) -> str:
    return fresh_database()


def partitions(url: str) -> list[tuple[str, str]]:
    return query(url, "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits i"
                      " join pg_class c on c.oid = i.inhrelid"
                      " where i.inhparent = 'raw.crm_activities'::regclass order by 1")


def load_night(url: str, landing, day: date, first: int, n: int = 3,
               subject: str = "hello", extra: bool = False) -> None:
    header = ACT_HEADER + (",region" if extra else "")
    rows = [act(i, subject=subject) + (",emea" if extra else "") for i in range(first, first + n)]
    write_export(landing, "crm", {"activities.csv": csv_text(header, rows)}, day=day)
    result = load_file(url, landing, day, "crm", "activities")
    assert result.status == "loaded", result.message


def test_a_month_folds_into_one_partition_with_every_row_and_its_provenance(
        db, tmp_path, monkeypatch):
    monkeypatch.setenv("CHW_RAW_NIGHTLY_DAYS", "0")  # folded by hand below
    load_night(db, tmp_path, FULL, 1)
    for i, day in enumerate(SEPTEMBER):
        load_night(db, tmp_path, day, 10 * (i + 1), extra=(i == 2))
    load_night(db, tmp_path, OCTOBER, 90)
    before = query(db, EVERY_ROW)

    with psycopg.connect(db, autocommit=True) as conn:
        # September ended less than 62 days before the night: nothing to fold yet
        assert compaction.compact(conn, ACTIVITIES, OCTOBER, 62) == []
        folded = compaction.compact(conn, ACTIVITIES, OCTOBER, 1)
    assert folded == [compaction.Compacted("crm_activities", "2026-09", 4, 4, 12)]
    assert partitions(db) == [
        ("crm_activities_20260830", "FOR VALUES IN ('2026-08-30')"),
        ("crm_activities_20261002", "FOR VALUES IN ('2026-10-02')"),
        ("crm_activities_m202609", "FOR VALUES IN ('2026-09-01', '2026-09-02', '2026-09-03',"
                                   " '2026-09-04')")]
    assert query(db, EVERY_ROW) == before  # _loaded_at, _source_file, _extra as they were
    with psycopg.connect(db, autocommit=True) as conn:  # folding again changes nothing
        assert compaction.compact(conn, ACTIVITIES, OCTOBER, 1) == []

    # a night of the folded month re-delivered: its rows alone are replaced, the night gets
    # its own partition again, the month keeps the others
    load_night(db, tmp_path, SEPTEMBER[1], 500, n=2, subject="changed")
    assert query(db, "select activity_id, subject from raw.crm_activities"
                     " where _export_date = %s order by 1", (SEPTEMBER[1],)) == [
        ("a500", "changed"), ("a501", "changed")]
    others = [r for r in before if r[0] != SEPTEMBER[1]]
    assert [r for r in query(db, EVERY_ROW) if r[0] != SEPTEMBER[1]] == others
    assert ("crm_activities_m202609", "FOR VALUES IN ('2026-09-01', '2026-09-03',"
                                      " '2026-09-04')") in partitions(db)
    assert ("crm_activities_20260902", "FOR VALUES IN ('2026-09-02')") in partitions(db)


def test_a_load_folds_old_months_as_configured(db, tmp_path, monkeypatch):
    monkeypatch.setenv("CHW_RAW_NIGHTLY_DAYS", "0")
    load_night(db, tmp_path, FULL, 1)
    for i, day in enumerate(SEPTEMBER):
        load_night(db, tmp_path, day, 10 * (i + 1))
    load_night(db, tmp_path, OCTOBER, 90)
    assert len(partitions(db)) == 6  # 0: never folded
    monkeypatch.setenv("CHW_RAW_NIGHTLY_DAYS", "1")
    load_night(db, tmp_path, OCTOBER + timedelta(days=1), 95)
    assert [name for name, _ in partitions(db)] == [
        "crm_activities_20260830", "crm_activities_20261002", "crm_activities_20261003",
        "crm_activities_m202609"]
    assert query(db, "select count(*) from raw.crm_activities")[0][0] == 3 * 7
