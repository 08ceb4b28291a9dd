"""Whole-file and whole-run behaviour: re-delivery, replacement, manifests, folders,
fsspec URLs, concurrency, a killed load, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fsspec
import psycopg
import pytest
from loading_helpers import (
    ACT_HEADER,
    DAY,
    EARLIER_ACTIVITIES_DDL,
    act,
    csv_text,
    ledger,
    manifest_for,
    quarantine,
    query,
    raw_rows,
    write_export,
)

from customer_health.contract import entities
from customer_health.loading import (
    LoadError,
    export_folder_status,
    format_results,
    load_export,
    load_file,
)


@pytest.fixture
def db(fresh_database) -> str:
    return fresh_database()


def activities(n: int, start: int = 1) -> str:
    return csv_text(ACT_HEADER, [act(i) for i in range(start, start + n)])


def test_identical_redelivery_is_skipped(db, tmp_path):
    write_export(tmp_path, "crm", {"activities.csv": activities(3)})
    first = load_file(db, tmp_path, DAY, "crm", "activities")
    before = query(db, "select activity_id, _loaded_at from raw.crm_activities order by 1")
    second = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (first.status, second.status) == ("loaded", "skipped")
    assert second.sha256 == first.sha256
    assert query(db, "select activity_id, _loaded_at from raw.crm_activities order by 1") == before
    rows = ledger(db)
    assert [r[:5] for r in rows] == [("activities", "loaded", 3, 3, 0),
                                     ("activities", "skipped", 0, 0, 0)]
    assert rows[1][5].startswith("identical to the file loaded by load ")
    assert rows[1][5].endswith("; nothing changed")


def test_changed_file_replaces_that_dates_rows(db, tmp_path):
    write_export(tmp_path, "crm", {"activities.csv": activities(3)})
    load_file(db, tmp_path, DAY, "crm", "activities")
    other_day = DAY.replace(day=22)
    write_export(tmp_path, "crm", {"activities.csv": activities(2, start=50)}, day=other_day)
    load_file(db, tmp_path, other_day, "crm", "activities")
    write_export(tmp_path, "crm", {"activities.csv": activities(2, start=10)})
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert result.status == "loaded"
    first_id = query(db, "select min(load_id) from audit.load_ledger")[0][0]
    assert result.message == f"replaced 3 row(s) of load {first_id}"
    assert query(db, "select _export_date, activity_id from raw.crm_activities order by 2") == [
        (DAY, "a10"), (DAY, "a11"), (other_day, "a50"), (other_day, "a51")]
    # a rejected replacement leaves the loaded rows as they were
    write_export(tmp_path, "crm", {"activities.csv": b"\xff" + activities(5).encode()})
    assert load_file(db, tmp_path, DAY, "crm", "activities").status == "rejected"
    assert query(db, "select activity_id from raw.crm_activities where _export_date = %s"
                     " order by 1", (DAY,)) == [("a10",), ("a11",)]
    assert [r[1] for r in ledger(db)] == ["loaded", "loaded", "loaded", "rejected"]
    # one partition per night, the replaced night's swapped whole
    assert query(db, "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits i"
                     " join pg_class c on c.oid = i.inhrelid"
                     " where i.inhparent = 'raw.crm_activities'::regclass order by 1") == [
        ("crm_activities_20261121", "FOR VALUES IN ('2026-11-21')"),
        ("crm_activities_20261122", "FOR VALUES IN ('2026-11-22')")]


def test_a_reader_of_raw_does_not_hold_up_a_night_s_load(db, tmp_path):
    """A load fills a table of its own and attaches it as the night's partition, which
    does not wait for a transaction reading raw (an analyst's query, the quality gate)."""
    write_export(tmp_path, "crm", {"activities.csv": activities(3)})
    load_file(db, tmp_path, DAY, "crm", "activities")
    other_day = DAY.replace(day=22)
    write_export(tmp_path, "crm", {"activities.csv": activities(2, start=50)}, day=other_day)
    with psycopg.connect(db) as reader:
        assert reader.execute("select count(*) from raw.crm_activities").fetchone() == (3,)
        results = []
        loading = threading.Thread(target=lambda: results.append(
            load_file(db, tmp_path, other_day, "crm", "activities")))
        loading.start()
        loading.join(timeout=60)
        assert not loading.is_alive(), "the load waited for the reader's transaction"
        assert [r.status for r in results] == ["loaded"]
        reader.rollback()
    assert query(db, "select _export_date, count(*) from raw.crm_activities group by 1"
                     " order by 1") == [(DAY, 3), (other_day, 2)]


def test_an_unpartitioned_raw_table_of_an_earlier_version_is_split_by_night(db, tmp_path):
    """Raw tables made before raw was partitioned (a BRIN index on `_export_date`) are
    split into one partition per night on the first load, every row kept as it was."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create schema raw")
        conn.execute(EARLIER_ACTIVITIES_DDL)
        conn.execute("create index crm_activities_export_date_idx on raw.crm_activities"
                     " using brin (_export_date)")
        conn.execute("insert into raw.crm_activities values"
                     " ('a1', 'acc1', null, 'call', 'inbound', '2026-11-19T10:00Z', 'x@y.z',"
                     "  's', '2026-11-19T10:00Z', '2026-11-19', 'crm/2026-11-19/activities.csv',"
                     "  2, '2026-11-19T23:00Z'),"
                     " ('a2', 'acc1', null, 'call', 'inbound', '2026-11-20T10:00Z', 'x@y.z',"
                     "  's', '2026-11-20T10:00Z', '2026-11-20', 'crm/2026-11-20/activities.csv',"
                     "  2, '2026-11-20T23:00Z')")
    before = query(db, "select * from raw.crm_activities order by activity_id")
    write_export(tmp_path, "crm", {"activities.csv": activities(2, start=50)})
    assert load_file(db, tmp_path, DAY, "crm", "activities").status == "loaded"
    # every row kept as it was; `_extra` (added since) is NULL: the file had no other columns
    assert query(db, "select * from raw.crm_activities where _export_date < %s"
                     " order by activity_id", (DAY,)) == [(*row, None) for row in before]
    assert query(db, "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                     " where i.inhparent = 'raw.crm_activities'::regclass order by 1") == [
        ("crm_activities_20261119",), ("crm_activities_20261120",), ("crm_activities_20261121",)]
    assert query(db, "select relname from pg_class where relname like '%%unpartitioned%%'") == []


def test_manifest_checked_rows_and_checksum(db, tmp_path):
    good = activities(3)
    write_export(tmp_path, "crm", {"activities.csv": good}, manifest=True)
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (result.status, result.message) == ("loaded", "matches _manifest.json")

    manifest = manifest_for({"activities.csv": good}, "crm")
    manifest["files"]["activities.csv"]["rows"] = 4
    changed = activities(3, start=7)
    manifest["files"]["activities.csv"]["sha256"] = manifest_for(
        {"activities.csv": changed}, "crm")["files"]["activities.csv"]["sha256"]
    write_export(tmp_path, "crm", {"activities.csv": changed}, manifest=manifest)
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert result.status == "rejected"
    assert result.message == \
        "does not match _manifest.json: 3 rows read, the manifest says 4; nothing loaded"

    manifest["files"]["activities.csv"]["rows"] = 3
    manifest["files"]["activities.csv"]["sha256"] = "0" * 64
    write_export(tmp_path, "crm", {"activities.csv": changed}, manifest=manifest)
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert result.status == "rejected"
    assert result.message == (f"does not match _manifest.json: sha256 {result.sha256} differs "
                               f"from the manifest's {'0' * 64}; nothing loaded")
    assert [r[0] for r in raw_rows(db, "crm_activities")] == ["a1", "a2", "a3"]
    assert [r[1:5] for r in ledger(db)] == [("loaded", 3, 3, 0), ("rejected", 3, 0, 0),
                                            ("rejected", 3, 0, 0)]


def test_manifest_lists_files_and_unreadable_manifest(db, tmp_path):
    files = {"activities.csv": activities(2)}
    write_export(tmp_path, "crm", files, manifest=True)
    assert export_folder_status(tmp_path, "crm", DAY) == (True, [])
    results = load_export(db, tmp_path, DAY, system="crm")
    assert {r.entity: r.status for r in results} == {
        "accounts": "absent", "contacts": "absent", "activities": "loaded",
        "support_tickets": "absent", "nps_responses": "absent"}
    assert [r[:2] for r in ledger(db)] == [("activities", "loaded")]

    write_export(tmp_path, "crm", {"contacts.csv": "contact_id\n"})  # present, not listed
    result = load_file(db, tmp_path, DAY, "crm", "contacts")
    assert result.status == "rejected"
    assert result.message.startswith("_manifest.json does not list this file")

    (tmp_path / "crm" / DAY.isoformat() / "_manifest.json").write_text("{not json")
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert result.status == "rejected"
    assert result.message.startswith("the manifest cannot be used: crm/2026-11-21/_manifest.json"
                                     " is not valid JSON")


def test_incomplete_folder_is_not_loaded(db, tmp_path):
    write_export(tmp_path, "crm", {"activities.csv": activities(2)})
    complete, missing = export_folder_status(tmp_path, "crm", DAY)
    assert not complete
    assert missing == ["crm/2026-11-21/accounts.csv", "crm/2026-11-21/contacts.csv",
                       "crm/2026-11-21/support_tickets.csv", "crm/2026-11-21/nps_responses.csv"]
    with pytest.raises(LoadError, match="export crm/2026-11-21 is not complete, nothing was "
                                        "loaded; missing: crm/2026-11-21/accounts.csv"):
        load_export(db, tmp_path, DAY, system="crm")
    assert query(db, "select count(*) from pg_namespace where nspname = 'audit'") == [(0,)]
    # one entity at a time (the DAG's tasks) does not need the whole folder
    (result,) = load_export(db, tmp_path, DAY, system="crm", entity="activities")
    assert result.status == "loaded"
    missing_file = load_file(db, tmp_path, DAY, "crm", "contacts")
    assert (missing_file.status, missing_file.message) == ("rejected", "the file is missing")


def test_bad_arguments_raise_load_error(db, tmp_path):
    with pytest.raises(LoadError, match="unknown system 'erp'"):
        load_export(db, tmp_path, DAY, system="erp")
    with pytest.raises(LoadError, match="export date '2026-11-21/../..' is not YYYY-MM-DD"):
        load_export(db, tmp_path, "2026-11-21/../..", system="crm")
    with pytest.raises(LoadError, match="crm has no entity 'invoices'"):
        load_file(db, tmp_path, DAY, "crm", "invoices")


def test_full_export_of_both_systems_and_summary(db, tmp_path):
    for system in ("crm", "billing"):
        files = {e.file_name: ",".join(e.column_names) + "\n" for e in entities(system)}
        write_export(tmp_path, system, files)
    write_export(tmp_path, "crm", {"activities.csv": activities(2)})
    seen = []
    results = load_export(db, tmp_path, DAY.isoformat(), progress=seen.append)
    assert seen == results
    assert [(r.system, r.entity, r.status) for r in results] == \
        [(e.system, e.name, "loaded") for e in entities()]
    table = format_results(results)
    assert "loaded  crm/2026-11-21/activities.csv" in table
    assert table.splitlines()[-1] == "9 file(s): 9 loaded"


def test_memory_fsspec_url(db):
    fs = fsspec.filesystem("memory")
    base = "memory://landing-test"
    fs.pipe(f"{base}/crm/{DAY}/activities.csv", activities(2, start=5).encode())
    try:
        result = load_file(db, base, DAY, "crm", "activities")
        assert (result.status, result.rows_loaded) == ("loaded", 2)
        assert raw_rows(db, "crm_activities", "activity_id, _source_file") == [
            ("a5", "crm/2026-11-21/activities.csv"), ("a6", "crm/2026-11-21/activities.csv")]
        assert export_folder_status(base, "crm", DAY)[0] is False
    finally:
        fs.rm(base, recursive=True)


def test_concurrent_loads_of_one_file_do_not_interleave(db, tmp_path):
    write_export(tmp_path, "crm", {"activities.csv": activities(2000)})
    load_file(db, tmp_path, DAY, "crm", "activities", threshold=0)  # schemas exist first
    write_export(tmp_path, "crm", {"activities.csv": activities(2000, start=9000)})
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        load_file(db, tmp_path, DAY, "crm", "activities"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["loaded", "skipped"]
    assert query(db, "select count(*), min(activity_id) from raw.crm_activities") == \
        [(2000, "a10000")]


def test_concurrent_loads_of_two_dates_keep_each_rows_provenance(db, tmp_path):
    """Each load fills its own night's partition, whose `_export_date` and `_source_file`
    come from column defaults: two dates of one entity loaded at once must not mix or
    deadlock, and no default may outlive a load, loaded or rejected."""
    other_day = DAY.replace(day=22)
    write_export(tmp_path, "crm", {"activities.csv": activities(3000)})
    write_export(tmp_path, "crm", {"activities.csv": activities(3000, start=5000)}, day=other_day)
    load_file(db, tmp_path, DAY, "crm", "contacts")  # creates the schemas (a rejected file)
    results = []
    threads = [threading.Thread(target=lambda d=d: results.append(
        load_file(db, tmp_path, d, "crm", "activities"))) for d in (DAY, other_day)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == ["loaded", "loaded"]
    assert query(db, "select _export_date, _source_file, count(*), min(_line_number),"
                     " max(_line_number), min(activity_id) from raw.crm_activities"
                     " group by 1, 2 order by 1") == [
        (DAY, f"crm/{DAY}/activities.csv", 3000, 2, 3001, "a1"),
        (other_day, f"crm/{other_day}/activities.csv", 3000, 2, 3001, "a5000")]
    write_export(tmp_path, "crm", {"activities.csv": "activity_id\n"}, day=other_day)
    assert load_file(db, tmp_path, other_day, "crm", "activities").status == "rejected"
    assert query(db, "select column_name, column_default from information_schema.columns"
                     " where table_schema = 'raw' and column_default is not null"
                     " and column_name in ('_export_date', '_source_file')") == []


KILL_SCRIPT = """
import sys
from customer_health.loading import load_file
load_file(sys.argv[1], sys.argv[2], "2026-11-21", "crm", "activities")
"""


def test_killed_load_leaves_no_trace_and_reruns(db, tmp_path):
    rows = [act(i, subject=f'"row {i}, said ""hi"""') for i in range(400_000)]
    write_export(tmp_path, "crm", {"activities.csv": csv_text(ACT_HEADER, rows)})
    load_file(db, tmp_path, DAY, "crm", "contacts")  # creates the schemas (a rejected file)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "plugins")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, db, str(tmp_path)], env=env)
    try:
        deadline = time.monotonic() + 60
        copied = 0
        while copied == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            # the night's partition-to-be exists only inside the load's transaction
            copied = query(db, "select coalesce(max(tuples_processed), 0) from"
                               " pg_stat_progress_copy where command = 'COPY FROM'"
                               " and datname = current_database()")[0][0]
        assert copied > 0, "the load never reached its COPY"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the server notices the dead client and rolls back; wait for its backend to go
    for _ in range(200):
        if not query(db, "select 1 from pg_stat_activity where application_name = 'chw-load'"):
            break
        time.sleep(0.05)
    assert query(db, "select count(*) from raw.crm_activities") == [(0,)]
    assert query(db, "select relname from pg_class where relnamespace = 'raw'::regnamespace"
                     " and relname like 'crm_activities%%'") == [("crm_activities",)]
    assert [r[:2] for r in ledger(db)] == [("contacts", "rejected")]
    assert quarantine(db) == []
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (result.status, result.rows_loaded) == ("loaded", 400_000)


def test_cli_load_prints_summary_and_fails_on_rejection(db, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from customer_health.cli import main

    for system in ("crm", "billing"):
        files = {e.file_name: ",".join(e.column_names) + "\n" for e in entities(system)}
        write_export(tmp_path, system, files)
    write_export(tmp_path, "crm", {"activities.csv": "activity_id\na1\n"})
    monkeypatch.setenv("CHW_WAREHOUSE_URL", db)
    out = CliRunner().invoke(main, ["load", "--date", "2026-11-21", "--landing", str(tmp_path),
                                    "--system", "crm"])
    assert out.exit_code == 1
    assert "rejected  crm/2026-11-21/activities.csv" in out.output
    assert "missing required column(s): account_id, activity_type" in out.output
    out = CliRunner().invoke(main, ["load", "--date", "2026-11-21", "--landing", str(tmp_path),
                                    "--system", "billing"])
    assert out.exit_code == 0, out.output


def test_cli_loads_a_range_of_nights_in_order_and_stops_at_a_rejected_one(
        db, tmp_path, monkeypatch):
    """`chw load --start/--end`: every night in order, one ledger run after another; a
    rejected file stops the range at its night, which names it, and later nights wait."""
    import datetime

    from click.testing import CliRunner

    from customer_health.cli import main
    from customer_health.generate import generate_landing

    first = datetime.date(2026, 10, 1)
    days = [first + datetime.timedelta(days=i) for i in range(5)]
    landing = tmp_path / "landing"
    generate_landing(landing, accounts=8, start=first, days=5, seed=5, history_days=30)
    (landing / "crm" / str(days[3]) / "activities.csv").write_text("activity_id\na1\n")
    monkeypatch.setenv("CHW_WAREHOUSE_URL", db)

    def loaded_nights() -> list[datetime.date]:
        rows = query(db, "select export_date, min(load_id) from audit.load_ledger"
                         " where status = 'loaded' group by 1 order by 2")
        return [r[0] for r in rows]

    out = CliRunner().invoke(main, ["load", "--start", str(days[0]), "--end", str(days[4]),
                                    "--landing", str(landing)])
    assert out.exit_code == 1, out.output
    assert f"rejected  crm/{days[3]}/activities.csv" in out.output
    assert f"load stopped at {days[3]}: crm/{days[3]}/activities.csv: " in out.output
    assert "3 night(s) before it loaded; the nights after it were not" in out.output
    # in order; the rejected night's other files load as on any night (each file is its own
    # transaction), its activities do not, and the night after it is not touched
    assert loaded_nights() == days[:4]
    assert query(db, "select status from audit.load_ledger where export_date = %s"
                     " and entity = 'activities'", (days[3],)) == [("rejected",)]
    assert not query(db, "select 1 from audit.load_ledger where export_date = %s", (days[4],))

    generate_landing(landing, accounts=8, start=first, days=5, seed=5, history_days=30,
                     overwrite=True)  # the exporter re-delivers the night
    out = CliRunner().invoke(main, ["load", "--start", str(days[0]), "--end", str(days[4]),
                                    "--landing", str(landing)])
    assert out.exit_code == 0, out.output
    assert f"loaded 5 nights {days[0]}..{days[4]}: " in out.output
    assert "nights per minute" in out.output
    assert loaded_nights() == days  # the first three were skipped as re-deliveries
    assert query(db, "select count(*) from audit.load_ledger where export_date = %s"
                     " and status = 'skipped'", (days[0],))[0][0] > 0

    out = CliRunner().invoke(main, ["load", "--start", str(days[1]), "--landing", str(landing)])
    assert out.exit_code == 2 and "give --date, or --start and --end" in out.output
