"""Write, audit, publish for the marts.

A night's dbt build writes into the shadow schema `marts_shadow`, which no analyst can
read; the marts gate validates it there; only a night that passes is swapped in by
renaming the two schemas in one transaction (milliseconds, whatever their size). The
schema that was `marts` becomes the next night's shadow.

Comments (dbt's persist_docs: the marts' and their columns' descriptions) belong to the
tables and follow a rename; a table copied into the shadow gets its comments too.

Two things do not follow a rename, and the swap carries them over by hand:
- privileges: the schema's grants, its tables' grants and its default privileges move
  from the old `marts` to the new one (and are revoked from the new shadow); a table new
  in `marts` (no namesake before) gets what its default privileges give;
- views outside the two schemas that read the marts: PostgreSQL binds a view to the
  tables themselves, so after a rename it would read the shadow. The swap re-creates
  each such view from its own definition, so it reads the new `marts`.

Incremental marts keep history, so the shadow must hold everything `marts` holds before
a night is built into it. `audit.mart_generations` records, per physical schema (by
oid, which a rename keeps) and per as_of_date, which build wrote that date's rows.
`prepare_shadow` copies into the shadow only the dates whose generation differs from
the published one: the night published last (built in the other schema) and any night
built here but never published (a failed gate). The night's cost follows its data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import psycopg
from psycopg import Connection, sql

from customer_health.catalog import table_columns
from customer_health.modelling.dbt_facts import monthly_marts
from customer_health.modelling.transform import SHADOW_SCHEMA

log = logging.getLogger(__name__)

PUBLISHED = "marts"
SHADOW = SHADOW_SCHEMA
_LOCK = "chw:marts:wap"
_DDL = """
create schema if not exists audit;
create sequence if not exists audit.mart_generation_seq;
create table if not exists audit.mart_generations (
    schema_oid oid not null,
    as_of_date date not null,
    generation bigint not null,
    written_at timestamptz not null default now(),
    primary key (schema_oid, as_of_date)
);
comment on table audit.mart_generations is
    'Which build wrote each as_of_date of a marts schema (by schema oid): '
    'see customer_health.publishing.wap';
"""


@dataclass
class SyncResult:
    """What `prepare_shadow` did."""

    created: bool = False
    cloned_tables: list[str] = field(default_factory=list)
    synced_dates: list[date] = field(default_factory=list)

    def describe(self) -> str:
        if self.created and not self.cloned_tables:
            return f"created {SHADOW} (no published marts yet: the first build fills it)"
        parts = []
        if self.cloned_tables:
            parts.append(f"copied {len(self.cloned_tables)} table(s) whole from {PUBLISHED}")
        if self.synced_dates:
            dates = ", ".join(d.isoformat() for d in self.synced_dates)
            parts.append(f"synced as_of_date(s) {dates} from {PUBLISHED}")
        return "; ".join(parts) or f"{SHADOW} already matches {PUBLISHED}"


def _schema_oid(conn: Connection, name: str) -> int | None:
    row = conn.execute("select oid from pg_namespace where nspname = %s", (name,)).fetchone()
    return row[0] if row else None


def _tables(conn: Connection, schema_oid: int) -> list[str]:
    rows = conn.execute(
        "select relname from pg_class where relnamespace = %s and relkind in ('r', 'p')"
        " order by relname", (schema_oid,)).fetchall()
    return [r[0] for r in rows]


def _lock(conn: Connection) -> None:
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (_LOCK,))


def prepare_shadow(url: str) -> SyncResult:
    """Make the shadow schema hold exactly what `marts` holds, ready for tonight's build."""
    result = SyncResult()
    # marts whose unique_key is `month` (a night rewrites whole months; each row carries
    # the as_of_date of the night that wrote it), from the dbt manifest; the others are
    # keyed by as_of_date. Read before the lock: a first parse takes seconds.
    monthly = monthly_marts()
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        _lock(conn)
        conn.execute(_DDL)
        published = _schema_oid(conn, PUBLISHED)
        shadow = _schema_oid(conn, SHADOW)
        if shadow is None:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SHADOW)))
            shadow = _schema_oid(conn, SHADOW)
            result.created = True
        if published is None:
            return result
        shadow_tables = set(_tables(conn, shadow))
        for table in _tables(conn, published):
            if table not in shadow_tables:
                _clone_table(conn, table)
                result.cloned_tables.append(table)
        if result.cloned_tables:
            # the copied tables hold every date the published marts hold
            conn.execute(
                "insert into audit.mart_generations (schema_oid, as_of_date, generation)"
                " select %s, as_of_date, generation from audit.mart_generations"
                " where schema_oid = %s"
                " on conflict (schema_oid, as_of_date) do update"
                " set generation = excluded.generation, written_at = now()",
                (shadow, published))
        stale = [r[0] for r in conn.execute(
            "select as_of_date from"
            " (select as_of_date, generation from audit.mart_generations"
            "  where schema_oid = %s) as p"
            " full join (select as_of_date, generation from audit.mart_generations"
            "  where schema_oid = %s) as s using (as_of_date)"
            " where p.generation is distinct from s.generation order by as_of_date",
            (published, shadow)).fetchall()]
        if stale:
            for table in _tables(conn, published):
                if table not in result.cloned_tables:
                    _sync_table(conn, table, stale, table in monthly)
            conn.execute("delete from audit.mart_generations where schema_oid = %s"
                         " and as_of_date = any(%s)", (shadow, stale))
            conn.execute(
                "insert into audit.mart_generations (schema_oid, as_of_date, generation)"
                " select %s, as_of_date, generation from audit.mart_generations"
                " where schema_oid = %s and as_of_date = any(%s)",
                (shadow, published, stale))
            result.synced_dates = stale
    log.info("prepare_shadow: %s", result.describe())
    return result


def _clone_table(conn: Connection, table: str) -> None:
    source, target = sql.Identifier(PUBLISHED, table), sql.Identifier(SHADOW, table)
    # `including all` copies the columns' comments (dbt's persist_docs), not the table's
    conn.execute(sql.SQL("create table {} (like {} including all)").format(target, source))
    comment = conn.execute("select obj_description(%s::regclass, 'pg_class')",
                           (source.as_string(conn),)).fetchone()[0]
    if comment is not None:
        conn.execute(sql.SQL("comment on table {} is {}").format(target, sql.Literal(comment)))
    conn.execute(sql.SQL("insert into {} select * from {}").format(target, source))


def _sync_table(conn: Connection, table: str, dates: list[date], monthly: bool) -> None:
    """Replace, in the shadow, the rows of `table` that the stale dates wrote (in either
    schema) by the published ones (whole months of a monthly mart)."""
    key = sql.Identifier("month" if monthly else "as_of_date")
    published, shadow = sql.Identifier(PUBLISHED, table), sql.Identifier(SHADOW, table)
    columns = set(table_columns(conn, SHADOW, table))
    shared = [c for c in table_columns(conn, PUBLISHED, table) if c in columns]
    if "as_of_date" not in shared:
        return  # not a dated mart: dbt rebuilds it whole
    names = sql.SQL(", ").join(sql.Identifier(c) for c in shared)
    keys = sql.SQL(
        "select {key} from {p} where as_of_date = any(%(d)s)"
        " union select {key} from {s} where as_of_date = any(%(d)s)"
    ).format(key=key, p=published, s=shadow)
    conn.execute(sql.SQL("create temporary table _chw_keys on commit drop as {}").format(keys),
                 {"d": dates})
    conn.execute(sql.SQL("delete from {s} where {key} in (select {key} from _chw_keys)").format(
        s=shadow, key=key))
    conn.execute(sql.SQL(
        "insert into {s} ({names}) select {names} from {p}"
        " where {key} in (select {key} from _chw_keys)"
    ).format(s=shadow, names=names, p=published, key=key))
    conn.execute("drop table _chw_keys")


def mark_building(url: str, as_of_date: date) -> int:
    """Record, before dbt writes it, that tonight's build rewrites `as_of_date` in the
    shadow: if the night is never published, the next `prepare_shadow` undoes it."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        _lock(conn)
        conn.execute(_DDL)
        shadow = _schema_oid(conn, SHADOW)
        if shadow is None:
            raise RuntimeError(f"schema {SHADOW} does not exist: run prepare_shadow first")
        generation = conn.execute("select nextval('audit.mart_generation_seq')").fetchone()[0]
        conn.execute(
            "insert into audit.mart_generations (schema_oid, as_of_date, generation)"
            " values (%s, %s, %s) on conflict (schema_oid, as_of_date)"
            " do update set generation = excluded.generation, written_at = now()",
            (shadow, as_of_date, generation))
    return generation


def unpublished_dates(conn: Connection, schema: str,
                      published_schema: str = PUBLISHED) -> list[date] | None:
    """The as_of_dates whose rows in `schema` differ from the published marts': those a
    build wrote there that `marts` does not hold (tonight's, in the shadow after
    `prepare_shadow`). Every other date's rows are the published ones, which passed the
    gate. None when there is nothing to compare with (no `marts`, no `schema`, or no
    generations recorded for it): every row is new."""
    conn.execute(_DDL)
    published, own = _schema_oid(conn, published_schema), _schema_oid(conn, schema)
    if published is None or own is None:
        return None
    if own == published:
        return []
    recorded = conn.execute("select 1 from audit.mart_generations where schema_oid = %s"
                            " limit 1", (own,)).fetchone()
    if recorded is None:
        return None
    return [r[0] for r in conn.execute(
        "select as_of_date from"
        " (select as_of_date, generation from audit.mart_generations"
        "  where schema_oid = %s) as s"
        " left join (select as_of_date, generation from audit.mart_generations"
        "  where schema_oid = %s) as p using (as_of_date)"
        " where s.generation is distinct from p.generation order by as_of_date",
        (own, published)).fetchall()]


def _already_published(conn: Connection, published: int, shadow: int, day: date) -> bool:
    conn.execute(_DDL)
    rows = dict(conn.execute(
        "select schema_oid, generation from audit.mart_generations"
        " where as_of_date = %s and schema_oid in (%s, %s)", (day, published, shadow)).fetchall())
    return published in rows and rows.get(published) >= rows.get(shadow, 0)


@dataclass
class SwapResult:
    views: list[str] = field(default_factory=list)
    grants: int = 0
    already: bool = False

    def describe(self) -> str:
        if self.already:
            return f"{PUBLISHED} already holds this night's build: nothing swapped"
        views = ", ".join(self.views) or "none"
        return (f"{SHADOW} swapped in as {PUBLISHED}; {self.grants} privilege(s) carried"
                f" over; view(s) re-pointed: {views}")


def swap_in(url: str, as_of_date: date | None = None) -> SwapResult:
    """Publish the validated shadow: one transaction renames the schemas, moves the
    privileges and re-points dependent views. Readers see the old or the new marts,
    never a mix; on any error nothing changes.

    With `as_of_date`, the swap is idempotent: when `marts` already holds the shadow's
    build of that night (a retried or repeated publish step), nothing is swapped back."""
    result = SwapResult()
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        _lock(conn)
        conn.execute("set local search_path = pg_catalog")  # view definitions fully qualified
        shadow = _schema_oid(conn, SHADOW)
        if shadow is None:
            raise RuntimeError(f"nothing to publish: schema {SHADOW} does not exist")
        old = _schema_oid(conn, PUBLISHED)
        if as_of_date is not None and old is not None and _already_published(
                conn, old, shadow, as_of_date):
            result.already = True
            log.info("swap_in: %s already holds the build of %s; nothing swapped",
                     PUBLISHED, as_of_date)
            return result
        views = _dependent_views(conn, old, shadow) if old is not None else []
        if old is None:
            conn.execute(sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(SHADOW), sql.Identifier(PUBLISHED)))
            return result
        swap = "marts__swapping"
        for source, target in ((PUBLISHED, swap), (SHADOW, PUBLISHED), (swap, SHADOW)):
            conn.execute(sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(source), sql.Identifier(target)))
        result.grants = _move_privileges(conn, old_oid=old, new_oid=shadow)
        for schema, name, definition, _oid in views:
            conn.execute(sql.SQL("create or replace view {} as {}").format(
                sql.Identifier(schema, name), sql.SQL(definition.rstrip().rstrip(";"))))
            result.views.append(f"{schema}.{name}")
    log.info("swap_in: %s", result.describe())
    return result


def _dependent_views(conn: Connection, marts_oid: int, shadow_oid: int
                     ) -> list[tuple[str, str, str, int]]:
    """Views outside the two schemas that read a table of `marts`, with their definitions
    (qualified names, as search_path is pg_catalog), in creation order."""
    return conn.execute(
        """
        select distinct vn.nspname, v.relname, pg_get_viewdef(v.oid), v.oid
        from pg_depend d
        join pg_rewrite r on r.oid = d.objid
        join pg_class v on v.oid = r.ev_class
        join pg_namespace vn on vn.oid = v.relnamespace
        join pg_class t on t.oid = d.refobjid
        where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
          and t.relnamespace = %s and v.relkind = 'v'
          and v.relnamespace not in (%s, %s) and v.oid <> t.oid
        order by v.oid
        """, (marts_oid, marts_oid, shadow_oid)).fetchall()


def _role(grantee_oid: int, name: str | None) -> sql.Composable:
    return sql.SQL("public") if grantee_oid == 0 else sql.Identifier(name)


def _move_privileges(conn: Connection, old_oid: int, new_oid: int) -> int:
    """Give the new `marts` (new_oid) the privileges the old one (old_oid, now the shadow)
    had, and take them from the shadow. The owner's own privileges are left alone."""
    moved = 0
    schema_acl = conn.execute(
        """
        select a.grantee, r.rolname, a.privilege_type, a.is_grantable
        from pg_namespace n, aclexplode(n.nspacl) a
        left join pg_roles r on r.oid = a.grantee
        where n.oid = %s and a.grantee <> n.nspowner
        """, (old_oid,)).fetchall()
    for grantee, name, privilege, grantable in schema_acl:
        role = _role(grantee, name)
        conn.execute(sql.SQL("grant {} on schema {} to {}{}").format(
            sql.SQL(privilege), sql.Identifier(PUBLISHED), role,
            sql.SQL(" with grant option" if grantable else "")))
        conn.execute(sql.SQL("revoke all on schema {} from {} cascade").format(
            sql.Identifier(SHADOW), role))
        moved += 1
    table_acl = conn.execute(
        """
        select c.relname, a.grantee, r.rolname, a.privilege_type, a.is_grantable
        from pg_class c, aclexplode(c.relacl) a
        left join pg_roles r on r.oid = a.grantee
        where c.relnamespace = %s and c.relkind in ('r', 'p', 'v', 'm')
          and a.grantee <> c.relowner
          and exists (select 1 from pg_class n where n.relnamespace = %s
                      and n.relname = c.relname)
        """, (old_oid, new_oid)).fetchall()
    for table, grantee, name, privilege, grantable in table_acl:
        conn.execute(sql.SQL("grant {} on {} to {}{}").format(
            sql.SQL(privilege), sql.Identifier(PUBLISHED, table), _role(grantee, name),
            sql.SQL(" with grant option" if grantable else "")))
        moved += 1
    default_acl = conn.execute(
        """
        select o.rolname, d.defaclobjtype, a.grantee, r.rolname, a.privilege_type
        from pg_default_acl d
        join pg_roles o on o.oid = d.defaclrole
        cross join aclexplode(d.defaclacl) a
        left join pg_roles r on r.oid = a.grantee
        where d.defaclnamespace = %s
        """, (old_oid,)).fetchall()
    kinds = {"r": "tables", "S": "sequences", "f": "functions", "T": "types"}
    # a table that arrives with this swap (no namesake in the old marts: a new mart, say the
    # back-test's, rebuilt whole in the shadow) gets what the default privileges give a table
    # its owner creates in `marts`
    arriving = conn.execute(
        """
        select c.relname, pg_get_userbyid(c.relowner) from pg_class c
        where c.relnamespace = %s and c.relkind in ('r', 'p', 'v', 'm')
          and not exists (select 1 from pg_class o where o.relnamespace = %s
                          and o.relname = c.relname)
        """, (new_oid, old_oid)).fetchall()
    for owner, kind, grantee, name, privilege in default_acl:
        if kind != "r":
            continue
        for table, table_owner in arriving:
            if table_owner == owner:
                conn.execute(sql.SQL("grant {} on {} to {}").format(
                    sql.SQL(privilege), sql.Identifier(PUBLISHED, table), _role(grantee, name)))
                moved += 1
    for owner, kind, grantee, name, privilege in default_acl:
        if kind not in kinds:
            continue
        for schema, verb, direction in ((PUBLISHED, "grant", "to"), (SHADOW, "revoke", "from")):
            conn.execute(sql.SQL(
                "alter default privileges for role {} in schema {} {} {} on {} {} {}"
            ).format(sql.Identifier(owner), sql.Identifier(schema), sql.SQL(verb),
                     sql.SQL(privilege), sql.SQL(kinds[kind]), sql.SQL(direction),
                     _role(grantee, name)))
        moved += 1
    return moved
