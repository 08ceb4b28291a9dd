"""The analyst role `chw_analyst`: it reads `marts` and nothing else, whatever happened before.

`grant_analyst(url)` (the CLI's `chw warehouse grant-analyst`) creates the role or repairs
one that someone widened, in one transaction on the warehouse database:

1. the role's attributes: NOLOGIN, no superuser, createdb, createrole, replication or
   bypassrls; it is made a member of no other role (every membership is revoked);
2. everything it owns is reassigned to the user running the command, then `DROP OWNED`
   revokes every privilege granted to it in this database (schemas, tables, columns,
   sequences, functions, types, default privileges) and on shared objects (databases);
   default privileges that still name it are revoked per owning role;
3. PUBLIC (every role, so every analyst login too) loses TEMP and CREATE on the
   database, CREATE on every schema, every write privilege on every table and sequence,
   and everything in the project's private schemas (raw, audit, staging, intermediate,
   seeds, snapshots, marts_shadow), their default privileges included. TEMP is granted
   back explicitly to the roles that own the database or objects in it, or hold CREATE
   on it (the pipeline);
4. the role gets CONNECT on the database, USAGE on `marts`, SELECT on its tables and,
   through default privileges of every role owning a table there, on tables created
   later. The nightly swap (customer_health.publishing.wap) carries these over to the new `marts`.

Then `analyst_leaks` checks the result from the catalogs; a leak left fails the command.

Privileges are what member logins inherit; role settings are not (a setting on the
group never reaches a member's session), so the read-only guarantee rests on privileges
only. `default_transaction_read_only` is still set on the role, for a session that
does `set role`. Limits: what a login holds of its own (direct grants, other roles) is
not the role's; SECURITY DEFINER functions run with their owner's rights; PostgreSQL
checks no privilege for creating a large object (lo_create), so any login may create one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import psycopg
from psycopg import Connection, sql

from customer_health.catalog import table_columns

ANALYST_ROLE = "chw_analyst"
MARTS_SCHEMA = "marts"
#: Schemas of the project that no analyst, and no role through PUBLIC, may read.
PRIVATE_SCHEMAS = ("raw", "audit", "staging", "intermediate", "seeds", "snapshots",
                   "marts_shadow")
_WRITE_TABLE = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
_DEFAULT_KINDS = {"r": "tables", "S": "sequences", "f": "functions", "T": "types",
                  "n": "schemas"}


@dataclass
class GrantResult:
    """What `grant_analyst` did, for the command's output."""

    created: bool = False
    revoked_memberships: list[str] = field(default_factory=list)
    revoked_from_public: list[str] = field(default_factory=list)
    temp_granted_to: list[str] = field(default_factory=list)
    public_reads: list[str] = field(default_factory=list)

    def describe(self, role: str = ANALYST_ROLE) -> list[str]:
        lines = [f"role {role} {'created' if self.created else 'repaired'}:"
                 " it may select from marts and read or write nothing else"]
        if self.revoked_memberships:
            lines.append(f"  revoked its membership in: {', '.join(self.revoked_memberships)}")
        if self.revoked_from_public:
            lines.append("  revoked from PUBLIC: " + "; ".join(self.revoked_from_public))
        if self.temp_granted_to:
            lines.append(f"  TEMP on the database granted to: {', '.join(self.temp_granted_to)}")
        if self.public_reads:
            lines.append("  note: readable by every role (PUBLIC), analysts included: "
                         + ", ".join(self.public_reads))
        return lines


class AnalystRoleError(RuntimeError):
    """The role could not be made read-only; the message lists what is left."""


def _exists(conn: Connection, query: str, *params: object) -> bool:
    return conn.execute(query, params).fetchone() is not None


def _ident(name: str | None) -> sql.Composable:
    return sql.SQL("public") if name is None else sql.Identifier(name)


def grant_analyst(url: str, role: str = ANALYST_ROLE) -> GrantResult:
    """Create or repair `role` so that it, and every login that is a member of it, may
    select from `marts` and do nothing else in the warehouse database. Idempotent."""
    result = GrantResult()
    ident = sql.Identifier(role)
    with psycopg.connect(url, autocommit=True) as conn:
        if not _exists(conn, "select 1 from pg_roles where rolname = %s", role):
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # a concurrent creator
                conn.execute(sql.SQL("create role {} nologin noinherit").format(ident))
                result.created = True
        with conn.transaction():
            _reset_attributes(conn, role)
            result.revoked_memberships = _revoke_memberships(conn, role)
            conn.execute(sql.SQL("reassign owned by {} to current_user").format(ident))
            conn.execute(sql.SQL("drop owned by {}").format(ident))
            _revoke_default_privileges(conn, role)
            result.revoked_from_public = _revoke_from_public(conn)
            result.temp_granted_to = _grant_temp_to_owners(conn, role)
            _grant_marts(conn, role)
            leaks = analyst_leaks(conn, role)
            if leaks:  # rolls the transaction back: nothing half-repaired
                raise AnalystRoleError(f"role {role} still has: " + "; ".join(leaks))
            result.public_reads = _public_reads(conn)
    return result


def _reset_attributes(conn: Connection, role: str) -> None:
    row = conn.execute(
        "select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
        " rolbypassrls, rolinherit from pg_roles where rolname = %s", (role,)).fetchone()
    wanted = ("nologin", "nosuperuser", "nocreatedb", "nocreaterole", "noreplication",
              "nobypassrls", "noinherit")
    changes = [sql.SQL(option) for option, value in zip(wanted, row, strict=True) if value]
    if changes:  # only what differs: a non-superuser may run this on a role it admins
        conn.execute(sql.SQL("alter role {} {}").format(
            sql.Identifier(role), sql.SQL(" ").join(changes)))
    conn.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(
        sql.Identifier(role)))


def _revoke_memberships(conn: Connection, role: str) -> list[str]:
    rows = conn.execute(
        "select g.rolname, gr.rolname from pg_auth_members m"
        " join pg_roles g on g.oid = m.roleid join pg_roles r on r.oid = m.member"
        " left join pg_roles gr on gr.oid = m.grantor where r.rolname = %s", (role,)).fetchall()
    by_grantor = conn.info.server_version >= 160000  # one grant per grantor since 16
    for group, grantor in rows:
        statement = sql.SQL("revoke {} from {}").format(sql.Identifier(group),
                                                         sql.Identifier(role))
        if by_grantor and grantor:
            statement += sql.SQL(" granted by {}").format(sql.Identifier(grantor))
        conn.execute(statement)
    return sorted({group for group, _ in rows})


def _default_acl(conn: Connection, grantee: str | None
                 ) -> list[tuple[str, str | None, str, str | None, str]]:
    """(owner, schema or None, kind, grantee or None for PUBLIC, privilege) rows of the
    default privileges granted to `grantee` (None: to PUBLIC)."""
    return conn.execute(
        "select o.rolname, n.nspname, d.defaclobjtype, g.rolname, a.privilege_type"
        " from pg_default_acl d join pg_roles o on o.oid = d.defaclrole"
        " left join pg_namespace n on n.oid = d.defaclnamespace"
        " cross join aclexplode(d.defaclacl) a left join pg_roles g on g.oid = a.grantee"
        " where (%(grantee)s::text is null and a.grantee = 0) or g.rolname = %(grantee)s",
        {"grantee": grantee}).fetchall()


def _alter_default(conn: Connection, owner: str, schema: str | None, kind: str,
                   grantee: str | None, privilege: str) -> None:
    if kind not in _DEFAULT_KINDS or (kind == "n" and schema is not None):
        return
    where = sql.SQL(" in schema {}").format(sql.Identifier(schema)) if schema else sql.SQL("")
    conn.execute(sql.SQL("alter default privileges for role {}{} revoke {} on {} from {}").format(
        sql.Identifier(owner), where, sql.SQL(privilege), sql.SQL(_DEFAULT_KINDS[kind]),
        _ident(grantee)))


def _revoke_default_privileges(conn: Connection, role: str) -> None:
    for row in _default_acl(conn, role):
        _alter_default(conn, *row)


def _revoke_from_public(conn: Connection) -> list[str]:
    """Take from PUBLIC what would let any login (an analyst's too) write or read the
    project's private schemas. Returns what was revoked, for the command's output."""
    done: list[str] = []
    db = conn.execute("select current_database()").fetchone()[0]
    held = conn.execute(
        "select a.privilege_type from pg_database d, aclexplode(d.datacl) a"
        " where d.datname = current_database() and a.grantee = 0"
        " and a.privilege_type in ('TEMPORARY', 'CREATE')").fetchall()
    # a database without an ACL has the built-in one: CONNECT and TEMP for PUBLIC
    builtin_acl = _exists(
        conn, "select 1 from pg_database where datname = current_database() and datacl is null")
    privileges = sorted({p for (p,) in held} | ({"TEMPORARY"} if builtin_acl else set()))
    if privileges:
        conn.execute(sql.SQL("revoke temporary, create on database {} from public").format(
            sql.Identifier(db)))
        done.append(f"{', '.join(privileges)} on database {db}")
    schemas = conn.execute(
        "select n.nspname, a.privilege_type from pg_namespace n, aclexplode(n.nspacl) a"
        " where a.grantee = 0 and n.nspname !~ '^(pg_|information_schema$)'"
        " and (a.privilege_type = 'CREATE' or n.nspname = any(%s)) order by 1, 2",
        (list(PRIVATE_SCHEMAS),)).fetchall()
    for schema, privilege in schemas:
        conn.execute(sql.SQL("revoke {} on schema {} from public").format(
            sql.SQL(privilege), sql.Identifier(schema)))
        done.append(f"{privilege} on schema {schema}")
    relations = conn.execute(
        "select n.nspname, c.relname, c.relkind, a.privilege_type"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace,"
        " aclexplode(c.relacl) a where a.grantee = 0 and n.nspname !~ '^(pg_|information_schema$)'"
        " and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')"
        " and (n.nspname = any(%s) or a.privilege_type <> 'SELECT')"
        " order by 1, 2, 4", (list(PRIVATE_SCHEMAS),)).fetchall()
    for schema, name, kind, privilege in relations:
        target = sql.SQL("sequence " if kind == "S" else "table ")
        conn.execute(sql.SQL("revoke {} on {}{} from public").format(
            sql.SQL(privilege), target, sql.Identifier(schema, name)))
        done.append(f"{privilege} on {schema}.{name}")
    columns = conn.execute(
        "select distinct n.nspname, c.relname from pg_attribute t"
        " join pg_class c on c.oid = t.attrelid join pg_namespace n on n.oid = c.relnamespace,"
        " aclexplode(t.attacl) a where a.grantee = 0 and n.nspname !~ '^(pg_|information_schema$)'"
        " and (n.nspname = any(%s) or a.privilege_type <> 'SELECT')",
        (list(PRIVATE_SCHEMAS),)).fetchall()
    for schema, name in columns:
        cols = table_columns(conn, schema, name)
        conn.execute(sql.SQL("revoke insert ({c}), update ({c}), references ({c}) on {t}"
                             " from public").format(
            c=sql.SQL(", ").join(map(sql.Identifier, cols)), t=sql.Identifier(schema, name)))
        if schema in PRIVATE_SCHEMAS:
            conn.execute(sql.SQL("revoke select ({c}) on {t} from public").format(
                c=sql.SQL(", ").join(map(sql.Identifier, cols)), t=sql.Identifier(schema, name)))
        done.append(f"column privileges on {schema}.{name}")
    for owner, schema, kind, grantee, privilege in _default_acl(conn, None):
        if kind in ("r", "S") and (schema in PRIVATE_SCHEMAS or privilege != "SELECT"):
            _alter_default(conn, owner, schema, kind, grantee, privilege)
            where = f" in schema {schema}" if schema else ""
            done.append(f"default {privilege} on {_DEFAULT_KINDS.get(kind, kind)}"
                        f" for role {owner}{where}")
    return done


def _grant_temp_to_owners(conn: Connection, role: str) -> list[str]:
    """TEMP, taken from PUBLIC, goes back to the roles that own the database or objects
    in it or may create schemas in it (the pipeline's user, even before it created
    anything; dbt's incremental models use temporary tables), never to the analyst role
    or its members."""
    owners = [r[0] for r in conn.execute(
        """
        with recursive members(oid) as (
            select oid from pg_roles where rolname = %(role)s
            union select m.member from pg_auth_members m join members on m.roleid = members.oid
        ), owners(oid) as (
            select datdba from pg_database where datname = current_database()
            union select nspowner from pg_namespace n
                  where n.nspname !~ '^(pg_|information_schema$)'
            union select relowner from pg_class c join pg_namespace n on n.oid = c.relnamespace
                  where n.nspname !~ '^(pg_|information_schema$)'
            union select oid from pg_roles where rolname = current_user
            union select a.grantee from pg_database d, aclexplode(d.datacl) a
                  where d.datname = current_database() and a.privilege_type = 'CREATE'
                    and a.grantee <> 0
        )
        select r.rolname from owners o join pg_roles r on r.oid = o.oid
        where o.oid not in (select oid from members) and not r.rolsuper
          and r.rolname !~ '^pg_'  -- predefined roles (pg_database_owner owns public)
          and not has_database_privilege(r.oid, current_database(), 'TEMPORARY')
        order by 1
        """, {"role": role}).fetchall()]
    db = conn.execute("select current_database()").fetchone()[0]
    for owner in owners:
        conn.execute(sql.SQL("grant temporary on database {} to {}").format(
            sql.Identifier(db), sql.Identifier(owner)))
    return owners


def _grant_marts(conn: Connection, role: str) -> None:
    ident, marts = sql.Identifier(role), sql.Identifier(MARTS_SCHEMA)
    db = conn.execute("select current_database()").fetchone()[0]
    conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(db), ident))
    conn.execute(sql.SQL("create schema if not exists {}").format(marts))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(marts, ident))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(marts, ident))
    owners = {r[0] for r in conn.execute(
        "select r.rolname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " join pg_roles r on r.oid = c.relowner where n.nspname = %s", (MARTS_SCHEMA,))}
    owners.add(conn.execute("select current_user").fetchone()[0])
    for owner in sorted(owners):
        conn.execute(sql.SQL(
            "alter default privileges for role {} in schema {} grant select on tables to {}"
        ).format(sql.Identifier(owner), marts, ident))


def analyst_leaks(conn: Connection, role: str = ANALYST_ROLE) -> list[str]:
    """Everything `role` may do beyond reading `marts` (its own privileges and PUBLIC's,
    which is what a member login inherits through it), from the catalogs."""
    leaks: list[str] = []
    params = {"role": role, "private": list(PRIVATE_SCHEMAS), "marts": MARTS_SCHEMA}
    queries = {
        "membership in": "select g.rolname from pg_auth_members m join pg_roles g"
        " on g.oid = m.roleid join pg_roles r on r.oid = m.member where r.rolname = %(role)s",
        "attribute": "select 'login/superuser/createdb/createrole/replication/bypassrls'"
        " from pg_roles where rolname = %(role)s and (rolcanlogin or rolsuper or rolcreatedb"
        " or rolcreaterole or rolreplication or rolbypassrls)",
        "database privilege": "select p from unnest(array['CREATE', 'TEMPORARY']) p"
        " where has_database_privilege(%(role)s, current_database(), p)",
        "schema privilege": "select n.nspname || ': ' || p from pg_namespace n,"
        " unnest(array['CREATE', 'USAGE']) p where"
        " n.nspname !~ '^(pg_|information_schema$)' and has_schema_privilege(%(role)s, n.oid, p)"
        " and (p = 'CREATE' or n.nspname = any(%(private)s))",
        "table privilege": "select n.nspname || '.' || c.relname || ': ' || p"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace,"
        " unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER',"
        " 'SELECT']) p where c.relkind in ('r', 'p', 'v', 'm', 'f')"
        " and n.nspname !~ '^(pg_|information_schema$)'"
        " and (p <> 'SELECT' or n.nspname = any(%(private)s))"
        " and (has_table_privilege(%(role)s, c.oid, p) or (p in ('INSERT', 'UPDATE',"
        " 'REFERENCES', 'SELECT') and has_any_column_privilege(%(role)s, c.oid, p)))",
        "sequence privilege": "select n.nspname || '.' || c.relname || ': ' || p"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace,"
        " unnest(array['USAGE', 'UPDATE']) p where c.relkind = 'S'"
        " and n.nspname !~ '^(pg_|information_schema$)'"
        " and has_sequence_privilege(%(role)s, c.oid, p)",
        "owns": "select n.nspname || '.' || c.relname from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace join pg_roles r on r.oid = c.relowner"
        " where r.rolname = %(role)s union all select n.nspname from pg_namespace n"
        " join pg_roles r on r.oid = n.nspowner where r.rolname = %(role)s",
        "default privilege": "select coalesce(n.nspname, '(all schemas)') || ': '"
        " || a.privilege_type from pg_default_acl d left join pg_namespace n"
        " on n.oid = d.defaclnamespace cross join aclexplode(d.defaclacl) a"
        " join pg_roles g on g.oid = a.grantee where g.rolname = %(role)s"
        " and not (n.nspname = %(marts)s and d.defaclobjtype = 'r'"
        " and a.privilege_type = 'SELECT')",
    }
    for what, query in queries.items():
        leaks += [f"{what} {r[0]}" for r in conn.execute(query, params).fetchall()]
    return leaks


def _public_reads(conn: Connection) -> list[str]:
    """Schemas outside the project's where PUBLIC may select from some table: the command
    leaves other people's deliberate sharing alone but names it."""
    return [r[0] for r in conn.execute(
        "select distinct n.nspname from pg_class c join pg_namespace n"
        " on n.oid = c.relnamespace, aclexplode(c.relacl) a"
        " where a.grantee = 0 and a.privilege_type = 'SELECT'"
        " and n.nspname !~ '^(pg_|information_schema$)'"
        " and n.nspname <> all(%s) and n.nspname <> %s"
        " and has_schema_privilege('public', n.oid, 'USAGE') order by 1",
        (list(PRIVATE_SCHEMAS), MARTS_SCHEMA)).fetchall()]
