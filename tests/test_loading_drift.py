"""Unknown columns are kept aside: their values stay with the row in `_extra` (jsonb),
the ledger names the drift, and raw tables of an earlier version get the column."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from loading_helpers import (
    ACT_HEADER,
    DAY,
    EARLIER_ACTIVITIES_DDL,
    act,
    csv_text,
    ledger,
    quarantine,
    query,
    write_export,
)

from customer_health.loading import load_file

HEADER = ACT_HEADER.replace("direction,", "direction,sentiment,") + ",region"
TS = "expected an ISO 8601 timestamp such as 2026-11-21T14:03:00Z or 2026-11-21T15:03:00+01:00"


@pytest.fixture
def db(fresh_database) -> str:
    return fresh_database()


def drifted(i: int, sentiment: str, region: str, occurred: str = "2026-11-20T10:00:00Z") -> str:
    """An activities row of HEADER: `sentiment` after direction, `region` at the end."""
    return act(i, occurred=occurred).replace("outbound,", f"outbound,{sentiment},", 1) + \
        f",{region}"


ROWS = [drifted(1, '"good, really"', "emea"),
        drifted(2, "", ""),
        drifted(3, "x", "na", occurred="bad"),
        drifted(4, '"said ""no""\nthen left"', "Zürich"),
        drifted(5, '"back\\slash, ""quote"", tab\t, é"', "")]


def load(db, tmp_path, rows, header=HEADER, day=DAY):
    write_export(tmp_path, "crm", {"activities.csv": csv_text(header, rows)}, day=day)
    return load_file(db, tmp_path, day, "crm", "activities", threshold=0.9)


def extras(db) -> list[tuple]:
    return query(db, "select activity_id, _extra->>'sentiment', _extra->>'region', _extra"
                     " from raw.crm_activities order by _export_date, _line_number")


def test_unknown_columns_are_kept_in_extra_on_their_rows_and_named(db, tmp_path):
    result = load(db, tmp_path, ROWS)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("loaded", 5, 4, 1)
    assert "schema drift: unknown column(s) sentiment, region kept in _extra" in result.message
    assert ledger(db)[0][5] == result.message
    assert extras(db) == [
        ("a1", "good, really", "emea", {"sentiment": "good, really", "region": "emea"}),
        ("a2", None, None, {"sentiment": None, "region": None}),
        ("a4", 'said "no"\nthen left', "Zürich",
         {"sentiment": 'said "no"\nthen left', "region": "Zürich"}),
        ("a5", 'back\\slash, "quote", tab\t, é', None,
         {"sentiment": 'back\\slash, "quote", tab\t, é', "region": None})]
    # the contract's columns load as without the drift
    assert query(db, "select activity_id, direction, occurred_at, subject, _line_number"
                     " from raw.crm_activities order by _line_number") == [
        ("a1", "outbound", datetime(2026, 11, 20, 10, tzinfo=UTC), "hello", 2),
        ("a2", "outbound", datetime(2026, 11, 20, 10, tzinfo=UTC), "hello", 3),
        ("a4", "outbound", datetime(2026, 11, 20, 10, tzinfo=UTC), "hello", 5),
        ("a5", "outbound", datetime(2026, 11, 20, 10, tzinfo=UTC), "hello", 7)]
    assert quarantine(db) == [(4, ROWS[2], f"occurred_at: 'bad' is not a valid timestamp: {TS}")]
    # queryable: the analyst's filter finds the right row
    assert query(db, "select activity_id from raw.crm_activities"
                     " where _extra->>'region' = 'emea'") == [("a1",)]


def test_a_night_without_unknown_columns_has_extra_null(db, tmp_path):
    load(db, tmp_path, ROWS)
    other_day = DAY.replace(day=22)
    result = load(db, tmp_path, [act(7)], header=ACT_HEADER, day=other_day)
    assert (result.status, result.message) == ("loaded", "")
    assert extras(db)[-1] == ("a7", None, None, None)
    assert len(extras(db)) == 5


def test_redelivery_with_unknown_columns_is_idempotent(db, tmp_path):
    first = load(db, tmp_path, ROWS)
    before = query(db, "select activity_id, _extra, _loaded_at from raw.crm_activities"
                       " order by 1")
    again = load(db, tmp_path, ROWS)
    assert (first.status, again.status) == ("loaded", "skipped")
    assert query(db, "select activity_id, _extra, _loaded_at from raw.crm_activities"
                     " order by 1") == before
    # a changed file for the night replaces its rows, `_extra` included
    load(db, tmp_path, [drifted(1, "better", "apac")])
    assert extras(db) == [("a1", "better", "apac", {"sentiment": "better", "region": "apac"})]
    assert [r[1] for r in ledger(db)] == ["loaded", "skipped", "loaded"]


def test_nul_in_an_unknown_column_is_quarantined_and_an_unnamed_column_is_kept(db, tmp_path):
    header = ACT_HEADER + ","  # an exporter's trailing comma: a column without a name
    rows = [act(1) + ",kept", act(2) + ",nul\x00here", act(3) + ","]
    result = load(db, tmp_path, rows, header=header)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert "unknown column(s) (unnamed column 10) kept in _extra" in result.message
    assert query(db, "select activity_id, _extra from raw.crm_activities order by 1") == [
        ("a1", {"(unnamed column 10)": "kept"}), ("a3", {"(unnamed column 10)": None})]
    assert quarantine(db)[0][::2] == (3, "(unnamed column 10): contains a NUL character")


def test_a_partitioned_raw_table_without_extra_gets_it(db, tmp_path):
    """Raw tables made before `_extra` existed get the column (NULL in their rows) on the
    first load, and take a night with unknown columns."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create schema raw")
        conn.execute(EARLIER_ACTIVITIES_DDL + " partition by list (_export_date)")
        conn.execute("create table raw.crm_activities_20261120 partition of raw.crm_activities"
                     " for values in ('2026-11-20')")
        conn.execute("insert into raw.crm_activities values"
                     " ('a0', 'acc1', null, 'call', 'inbound', '2026-11-20T10:00Z', 'x@y.z',"
                     "  's', '2026-11-20T10:00Z', '2026-11-20', 'crm/2026-11-20/activities.csv',"
                     "  2, '2026-11-20T23:00Z')")
    result = load(db, tmp_path, ROWS[:1])
    assert result.status == "loaded", result.message
    assert extras(db) == [
        ("a0", None, None, None),
        ("a1", "good, really", "emea", {"sentiment": "good, really", "region": "emea"})]
    assert query(db, "select attrelid::regclass::text, format_type(atttypid, atttypmod)"
                     " from pg_attribute where attname = '_extra' and attrelid in"
                     " ('raw.crm_activities'::regclass, 'raw.crm_activities_20261120'::regclass)"
                     " order by 1") == [("raw.crm_activities", "jsonb"),
                                        ("raw.crm_activities_20261120", "jsonb")]
