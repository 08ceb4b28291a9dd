"""Old nights of raw folded into one partition per month, every row and its provenance kept.

Raw gets one partition per night (`loader`), so after years of use each raw table has a
partition per night of them: every plan over raw pays for planning and opening each one
(issue 15: with 729 nights the first build's ANALYZE of raw went from 3 s to 108 s). After
a night's load, the nights of every month that ended at least `CHW_RAW_NIGHTLY_DAYS` days
(default 62) before that night are folded into one partition `raw.<table>_m<yyyymm>`:

- the rows are copied as they are: `_export_date`, `_line_number`, `_loaded_at`,
  `_source_file` and `_extra` keep their values, so a night reads the same after as before
  (only the partition it lives in changes: dbt reads the new partition's figures per night
  into `audit.raw_night_figures`, and they equal the old ones, so no model rebuilds);
- the first export of a table (its full history) stays a partition of its own: it is read
  whole by full builds and copying it would gain nothing;
- one transaction per month and table: an interruption leaves the nights as they were;
- a night re-delivered after its month was folded is taken out of the monthly partition
  (a new monthly partition without it) and attached as a nightly one again (`loader`); the
  next compaction folds it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from psycopg import Connection, sql

from customer_health.contract import Entity

_DATE = re.compile(r"'(\d{4}-\d{2}-\d{2})'")


@dataclass(frozen=True)
class RawPartition:
    name: str
    nights: tuple[date, ...]

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier("raw", self.name)


@dataclass(frozen=True)
class Compacted:
    table: str
    month: str
    nights: int
    partitions: int
    rows: int


def raw_partitions(conn: Connection, ent: Entity) -> list[RawPartition]:
    """The partitions of an entity's raw table, each with the nights it holds."""
    rows = conn.execute(
        "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits as i"
        " join pg_class as c on c.oid = i.inhrelid where i.inhparent = to_regclass(%s)",
        (sql.Identifier("raw", ent.raw_table).as_string(conn),)).fetchall()
    return sorted((RawPartition(name, tuple(sorted(date.fromisoformat(d)
                                                   for d in _DATE.findall(bound or ""))))
                   for name, bound in rows), key=lambda p: p.nights or (date.min,))


def holding(partitions: list[RawPartition], night: date) -> RawPartition | None:
    return next((p for p in partitions if night in p.nights), None)


def monthly_name(ent: Entity, month: date) -> str:
    return f"{ent.raw_table}_m{month:%Y%m}"


def compact(conn: Connection, ent: Entity, loaded_night: date, nightly_days: int
            ) -> list[Compacted]:
    """Fold the nights of every month that ended `nightly_days` or more days before
    `loaded_night` into one partition per month (the table's first night excepted)."""
    horizon = loaded_night - timedelta(days=nightly_days)
    partitions = raw_partitions(conn, ent)
    nights = [n for p in partitions for n in p.nights]
    if not nights:
        return []
    first = min(nights)
    months: dict[date, list[RawPartition]] = {}
    for p in partitions:
        if not p.nights or first in p.nights:
            continue
        month = p.nights[0].replace(day=1)
        month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        if month_end < horizon and all(n.replace(day=1) == month for n in p.nights):
            months.setdefault(month, []).append(p)
    done = []
    for month, parts in sorted(months.items()):
        if len(parts) > 1:
            with conn.transaction():
                done.append(_fold(conn, ent, month, parts))
    return done


def _fold(conn: Connection, ent: Entity, month: date, parts: list[RawPartition]) -> Compacted:
    nights = sorted(n for p in parts for n in p.nights)
    rows = rebuild(conn, ent, monthly_name(ent, month), nights, parts)
    return Compacted(ent.raw_table, f"{month:%Y-%m}", len(nights), len(parts), rows)


def rebuild(conn: Connection, ent: Entity, name: str, nights: list[date],
            parts: list[RawPartition]) -> int:
    """Replace `parts` by one new partition `name` holding their rows of `nights` (in the
    caller's transaction); the rows of other nights are dropped with `parts` (a night
    taken out for re-delivery). Returns the rows copied."""
    parent = sql.Identifier("raw", ent.raw_table)
    building = sql.Identifier("raw", f"{name}_folding")
    conn.execute("set local lock_timeout = '10min'")
    conn.execute(sql.SQL("create table {} (like {})").format(building, parent))
    rows = 0
    if nights:
        rows = conn.execute(sql.SQL(
            "insert into {} select * from {} where _export_date = any(%s)"
            " order by _export_date, _line_number").format(building, parent),
            (nights,)).rowcount
    for p in parts:
        conn.execute(sql.SQL("alter table {} detach partition {}").format(parent, p.identifier))
        conn.execute(sql.SQL("drop table {}").format(p.identifier))
    if nights:
        conn.execute(sql.SQL("alter table {} rename to {}").format(building, sql.Identifier(name)))
        conn.execute(sql.SQL("alter table {} attach partition {} for values in ({})").format(
            parent, sql.Identifier("raw", name),
            sql.SQL(", ").join(sql.Literal(n) for n in nights)))
    else:
        conn.execute(sql.SQL("drop table {}").format(building))
    return rows


def take_out(conn: Connection, ent: Entity, night: date) -> int | None:
    """Before a night is attached again: if a monthly partition holds it, replace that
    partition by one without it (in the caller's transaction). Returns the night's rows
    it held, None when no monthly partition holds the night."""
    part = holding(raw_partitions(conn, ent), night)
    if part is None or part.nights == (night,):
        return None
    held = conn.execute(sql.SQL("select count(*) from {} where _export_date = %s").format(
        part.identifier), (night,)).fetchone()[0]
    rest = [n for n in part.nights if n != night]
    rebuild(conn, ent, part.name, rest, [part])
    return held
