"""The fast whole-line pattern never accepts what the exact per-field check rejects,
and PostgreSQL reads every accepted value as the contract means it."""

from __future__ import annotations

import psycopg
import pytest

from customer_health.contract import Column
from customer_health.loading.checks import check_value, fast_block_pattern

VALUES = {
    "int": ["0", "-12", "007", "2147483647", "-2147483648", "2147483648", "999999999",
            "1.0", "+5", " 5", "1e3", "", "١٢"],
    "numeric": ["0", "1234.50", "-0.5", "10", "1,234.50", "1.", ".5", "1e3", "NaN", "+1", "١.٥",
                "Infinity", " 1", ""],
    "bool": ["true", "false", "True", "t", "1", "yes", "", "false "],
    "date": ["2026-11-21", "2028-02-29", "2026-02-29", "2026-04-31", "2026-12-31", "0000-01-01",
             "2026-1-01", "20261121", "2026-11-21T00:00:00Z", ""],
    "timestamp": ["2026-11-21T14:03:00Z", "2026-11-21T15:03:00+01:00", "2026-11-21 15:03:00",
                  "2026-11-21T15:03Z", "2026-11-21T15:03:00.123456-05:30",
                  "2026-11-21T15:03:00+0530", "٢٠٢٦-11-21T15:03:00Z",
                  "2026-11-21T15:03:00+05", "2028-02-29T00:00:00Z", "2026-02-29T00:00:00Z",
                  "2026-11-21T24:00:00Z", "2026-11-21T23:60:00Z", "2026-11-21T23:59:60Z",
                  "2026-11-21T10:00:00+16:00", "2026-11-21T10:00:00.1234567Z", "2026-11-21",
                  "2026-11-21T10:00:00 Z", "Nov 21 2026", "now", "2026-11-21T10:00:00z", ""],
    "text": ["x", "", "a b", "naïve", "é,è"],
}


def _fast_accepts(column: Column, value: str) -> bool:
    pattern = fast_block_pattern([column])
    line = value.encode() + b"\n"
    return pattern.match(line).end() == len(line)


@pytest.mark.parametrize("type_", sorted(VALUES))
@pytest.mark.parametrize("nullable", [False, True])
def test_fast_pattern_is_narrower_than_the_exact_check(type_, nullable):
    column = Column("c", type_, nullable)
    for value in VALUES[type_]:
        if _fast_accepts(column, value):
            assert check_value(column, value) is None, value
        for quoted in (f'"{value}"',):
            if _fast_accepts(column, quoted):
                assert check_value(column, value) is None, quoted


def test_fast_pattern_takes_the_common_cases():
    assert _fast_accepts(Column("c", "timestamp"), "2026-11-21T14:03:00Z")
    assert _fast_accepts(Column("c", "numeric"), "1234.50")
    assert _fast_accepts(Column("c", "text", True), "")
    assert _fast_accepts(Column("c", "text"), '"a, ""b"""')
    assert not _fast_accepts(Column("c", "text"), '"a\nb"')  # multi-line: the exact path
    assert not _fast_accepts(Column("c", "text"), 'a"b')  # stray quote: the exact path
    # a quoted empty field: the exact path, which hands it to COPY unquoted (NULL)
    assert not _fast_accepts(Column("c", "text", True), '""')
    assert not _fast_accepts(Column("c", "timestamp", True), '""')


@pytest.mark.parametrize("type_", ["int", "numeric", "bool", "date", "timestamp"])
def test_postgres_reads_every_accepted_value(warehouse_url, type_):
    column = Column("c", type_)
    accepted = [v for v in VALUES[type_] if v and check_value(column, v) is None]
    assert accepted
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("set time zone 'UTC'")
        for value in accepted:
            conn.execute(f"select %s::{column.pg_type}", (value,))  # raises if PG disagrees
