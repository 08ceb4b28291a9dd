"""The rows a validation reads, as views in a schema of its own.

GX reads each batch as a whole table. For every suite of a validation, a view named
like the suite's table selects the rows to check (a raw table's night, a dated mart's
`as_of_date`, the rows a night changed, or all of a mart; quality/marts.py) from wherever
they are (`raw`, `marts`, `marts_shadow`...). A selection that no index serves over a big
table is copied once into a table there instead, since every expectation reads the batch
again. The views live in a schema made for this one validation and dropped at its end,
so concurrent validations never meet, nothing lingers that could hold a mart table (a
view would block dbt's `drop table`), and GX never has to list the partitions of a big
table to find one day.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from psycopg import Connection, sql

SCHEMA_PREFIX = "chw_quality_"


@dataclass(frozen=True)
class BatchView:
    name: str  # the view's name, the suite's table asset
    source_schema: str
    source_table: str
    date_column: str | None = None  # with `day`: only that day's rows
    day: date | None = None
    #: any other selection of rows (a filter on the source table, aliased `t`)
    where: sql.Composable | None = None
    #: copy the selected rows into a table once, instead of a view that every expectation
    #: would evaluate again (a filter no index serves, over a big table)
    materialize: bool = False

    def condition(self) -> sql.Composable | None:
        if self.date_column and self.day is not None:
            return sql.SQL("{} = {}").format(sql.Identifier(self.date_column),
                                             sql.Literal(self.day))
        return self.where


def table_exists(conn: Connection, schema: str, table: str) -> bool:
    row = conn.execute(
        "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
        (schema, table),
    ).fetchone()
    return row is not None


@contextlib.contextmanager
def batch_schema(conn: Connection, views: list[BatchView]) -> Iterator[str]:
    """A schema holding one view per batch, dropped on the way out."""
    schema = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}"
    with conn.transaction():
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        for view in views:
            condition = view.condition()
            where = sql.SQL("") if condition is None else sql.SQL(" where {}").format(condition)
            kind = sql.SQL("unlogged table" if view.materialize else "view")
            conn.execute(sql.SQL("create {} {} as select * from {} as t{}").format(
                kind,
                sql.Identifier(schema, view.name),
                sql.Identifier(view.source_schema, view.source_table),
                where,
            ))
    try:
        yield schema
    finally:
        with conn.transaction():
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(
                sql.Identifier(schema)))
