"""`chw warehouse grant-analyst` repairs a widened analyst role: a login that is a member of
it reads `marts` (before and after the nightly swap) and writes or reads nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_health.cli import main
from customer_health.publishing import wap
from customer_health.publishing.analyst_role import analyst_leaks, grant_analyst

pytestmark = pytest.mark.cluster_roles  # chw_analyst is cluster-wide: tests/conftest.py

SCHEMAS = ("raw", "audit", "staging", "intermediate", "seeds", "marts", "marts_shadow",
           "analytics")


def _as(url: str, user: str, password: str) -> str:
    params = conninfo_to_dict(url)
    params.update(user=user, password=password)
    return make_conninfo(**params)


@pytest.fixture
def roles(fresh_database: Callable[[], str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh database and role names of this test only (roles are cluster-wide)."""
    url = fresh_database()
    tag = uuid.uuid4().hex[:8]
    names = {"analyst": f"chw_analyst_{tag}", "member": f"alice_{tag}",
             "owner": f"loader_{tag}", "new_owner": f"loader_{tag}_new"}
    yield url, names
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names.values():
            ident = sql.Identifier(name)
            if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("drop owned by {} cascade").format(ident))
        for name in names.values():
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def _build(conn: psycopg.Connection, owner: str) -> None:
    for schema in SCHEMAS:
        conn.execute(sql.SQL("create schema {s}; create table {s}.t (id int, note text);"
                             " insert into {s}.t values (1, {v})").format(
            s=sql.Identifier(schema), v=sql.Literal(schema)))
    conn.execute("create sequence raw.ids; create table public.kept (x int)")
    conn.execute(sql.SQL("create role {} login; alter table public.kept owner to {}").format(
        sql.Identifier(owner), sql.Identifier(owner)))
    conn.execute(sql.SQL("create role {} login; grant create on database {} to {}").format(
        sql.Identifier(f"{owner}_new"), sql.Identifier(conn.info.dbname),
        sql.Identifier(f"{owner}_new")))


def _widen(conn: psycopg.Connection, role: str, db: str) -> None:
    """What a hurried DBA might have granted over the months."""
    r = sql.Identifier(role)
    for schema in ("raw", "audit", "staging", "marts_shadow", "public", "marts", "analytics"):
        conn.execute(sql.SQL("grant usage, create on schema {} to {}").format(
            sql.Identifier(schema), r))
    conn.execute(sql.SQL(
        "grant select on all tables in schema raw, audit, staging, marts_shadow to {r};"
        " grant insert, update, delete, truncate on marts.t to {r};"
        " grant update (note) on marts.t to {r};"
        " grant usage, update on sequence raw.ids to {r};"
        " alter default privileges in schema raw grant select, insert on tables to {r};"
        " alter default privileges grant all on tables to {r};"
        " grant temporary, create on database {db} to {r};"
        " grant pg_write_all_data to {r};"
        " alter role {r} createdb;"
        " create table analytics.theirs (x int); alter table analytics.theirs owner to {r};"
        # and through PUBLIC, which every login is a member of
        " grant create on schema public to public;"
        " grant usage on schema raw to public; grant select, insert on raw.t to public;"
        " grant insert on marts.t to public"
    ).format(r=r, db=sql.Identifier(db)))


MEMBER_DENIED = (
    "insert into marts.t values (2, 'x')",
    "update marts.t set note = 'x'",
    "delete from marts.t",
    "truncate marts.t",
    "create table marts.mine (x int)",
    "create table public.mine (x int)",
    "create table analytics.mine (x int)",
    "create table raw.mine (x int)",
    "create schema mine",
    "create temporary table mine (x int)",
    "insert into public.kept values (1)",
    "insert into analytics.theirs values (1)",
    "select nextval('raw.ids')",
    "select * from raw.t",
    "select * from audit.t",
    "select * from staging.t",
    "select * from intermediate.t",
    "select * from seeds.t",
    "select * from marts_shadow.t",
    "select * from raw.later",
)


def test_a_widened_role_is_repaired_and_its_members_only_read_marts(roles) -> None:
    url, names = roles
    analyst, member, owner = names["analyst"], names["member"], names["owner"]
    db = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(analyst)))
        _build(conn, owner)
        _widen(conn, analyst, db)
        assert len(analyst_leaks(conn, analyst)) > 20

    result = grant_analyst(url, role=analyst)
    assert result.revoked_memberships == ["pg_write_all_data"]
    assert f"TEMPORARY on database {db}" in result.revoked_from_public
    assert "CREATE on schema public" in result.revoked_from_public
    # the roles owning objects, or that may create schemas, keep temporary tables
    assert result.temp_granted_to == sorted([owner, names["new_owner"]])
    assert grant_analyst(url, role=analyst).revoked_from_public == []  # idempotent

    with psycopg.connect(url, autocommit=True) as conn:
        assert analyst_leaks(conn, analyst) == []
        assert conn.execute("select rolcreatedb from pg_roles where rolname = %s",
                            (analyst,)).fetchone() == (False,)
        assert conn.execute("select r.rolname from pg_class c join pg_roles r"
                            " on r.oid = c.relowner where c.oid = 'analytics.theirs'::regclass"
                            ).fetchone()[0] != analyst
        # a table created later in raw: no default privilege reaches the analyst
        conn.execute("create table raw.later (x int)")
        conn.execute(sql.SQL("create role {} login password 'pw'; grant {} to {}").format(
            sql.Identifier(member), sql.Identifier(analyst), sql.Identifier(member)))
        # the nightly swap: marts and marts_shadow change places, grants follow `marts`
        conn.execute("update marts_shadow.t set note = 'tonight'")
    wap.swap_in(url)

    with psycopg.connect(_as(url, member, "pw"), autocommit=True) as conn:
        assert conn.execute("select current_user").fetchone()[0] == member
        assert conn.execute("select note from marts.t").fetchall() == [("tonight",)]
        for statement in MEMBER_DENIED:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set role pg_write_all_data")
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(analyst)))
        assert conn.execute("select count(*) from marts.t").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from marts_shadow.t")


def test_the_cli_command_repairs_the_analyst_role(
        fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists raw; create table raw.t (x int)")
        if not conn.execute("select 1 from pg_roles where rolname = 'chw_analyst'").fetchone():
            conn.execute("create role chw_analyst nologin")  # roles are cluster-wide
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("grant usage, create on schema raw to chw_analyst;"
                     " grant select on raw.t to chw_analyst")
    monkeypatch.setenv("CHW_WAREHOUSE_URL", url)
    result = CliRunner().invoke(main, ["warehouse", "grant-analyst"])
    assert result.exit_code == 0, result.output
    assert "chw_analyst" in result.output and "read or write nothing else" in result.output
    with psycopg.connect(url) as conn:
        assert analyst_leaks(conn) == []
        assert conn.execute("select has_schema_privilege('chw_analyst', 'raw', 'usage'),"
                            " has_table_privilege('chw_analyst', 'raw.t', 'select'),"
                            " has_schema_privilege('chw_analyst', 'marts', 'usage')"
                            ).fetchone() == (False, False, True)
