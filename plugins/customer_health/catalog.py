"""What the warehouse's catalogue says about a table: one lookup for every module that
must compare or complete a table's columns (the WAP sync, the loader's raw tables, the
marts gate, the analyst role's column privileges)."""

from __future__ import annotations

from psycopg import Connection, sql


def table_columns(conn: Connection, schema: str, table: str) -> list[str]:
    """The table's columns in their order; none when the table does not exist."""
    return [r[0] for r in conn.execute(
        "select attname from pg_attribute where attrelid = to_regclass(%s)"
        " and attnum > 0 and not attisdropped order by attnum",
        (sql.Identifier(schema, table).as_string(conn),)).fetchall()]
