"""Load a night's export files into raw.*, one transaction per (system, date, entity).

Per file: take an advisory lock on (system, date, entity); skip an identical
re-delivery; otherwise create the night's partition-to-be, stream the file into it
through COPY (`scanner`) while spooling bad rows, check the manifest and the quarantine
threshold, attach it to the raw table as the night's partition (replacing the one of an
earlier delivery), write quarantine and ledger rows and commit. Any rejection rolls
everything back and writes the ledger row (and the quarantined rows of a file
rejected for its share of bad rows) in a transaction of its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from queue import Queue

import psycopg
from psycopg import Connection, sql
from psycopg.copy import QueuedLibpqWriter
from upath import UPath

from customer_health import settings
from customer_health.contract import MANIFEST_NAME, SYSTEMS, Entity, entities
from customer_health.contract import entity as contract_entity
from customer_health.loading import compaction, formats, ledger
from customer_health.loading.formats.delivery import NativeDelivery
from customer_health.loading.landing import (
    ExportFolder,
    LoadError,
    Manifest,
    ManifestError,
    export_folder_status,
    parse_export_date,
)
from customer_health.loading.quarantine import QuarantineSpool
from customer_health.loading.raw_schema import contract_columns_ddl, ensure_schemas, partition_name
from customer_health.loading.results import FileResult
from customer_health.loading.scanner import CHUNK_SIZE, Scanner, UnreadableFile

log = logging.getLogger(__name__)

Landing = str | os.PathLike[str] | UPath
Progress = Callable[[FileResult], object]
QUEUE_DEPTH = 32  # buffers of at most 128 KiB waiting for the server


class _ContractDelivery:
    """An entity's file written as the contract says: read by the contract scanner."""

    def __init__(self, folder: ExportFolder, ent: Entity) -> None:
        self.folder = folder
        self.entity = ent
        self.file_name = ent.file_name
        self.provenance: str | None = folder.relative(ent.file_name)

    def missing(self) -> list[str]:
        return [] if self.folder.exists(self.file_name) else [self.file_name]

    def sha256(self) -> str:
        return _sha256(self.folder.file(self.file_name))

    @contextmanager
    def scanner(self, spool: QuarantineSpool) -> Iterator[Scanner]:
        with self.folder.file(self.file_name).open("rb") as stream:
            yield Scanner(stream, self.entity, spool, chunk_size=CHUNK_SIZE)


Delivery = _ContractDelivery | NativeDelivery


def _delivery(folder: ExportFolder, ent: Entity) -> Delivery:
    fmt = formats.for_system(folder.system)
    if fmt is None:
        return _ContractDelivery(folder, ent)
    return NativeDelivery(fmt, folder.path, folder.relative, ent,
                          folder.export_date.isoformat())


class _Rejected(Exception):
    def __init__(self, message: str, load_id: int | None = None, sha256: str | None = None,
                 rows_read: int = 0, spool: QuarantineSpool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.load_id = load_id
        self.sha256 = sha256
        self.rows_read = rows_read
        self.spool = spool


def connect(url: str) -> Connection:
    try:
        return psycopg.connect(url, autocommit=True, application_name="chw-load")
    except psycopg.OperationalError as exc:
        raise LoadError(f"cannot connect to the warehouse: {exc}".strip()) from None


def prepare(conn: Connection) -> None:
    """Create raw.* and audit.* if missing (serialised: parallel load tasks race on DDL)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtextextended('chw:ensure_schemas', 0))")
        ensure_schemas(conn)


def load_export(url: str, landing: Landing, export_date: date | str, system: str | None = None,
                entity: str | None = None, threshold: float | None = None,
                progress: Progress | None = None) -> list[FileResult]:
    """Load one night's export folders: every entity of the system(s), or one entity.

    Without `entity`, a folder that is not complete (contract rule) raises LoadError
    before anything is loaded. `progress` is called with each file's result.
    """
    export_date = parse_export_date(export_date)
    targets = _targets(system, entity)
    _check_formats(e.system for e in targets)
    if entity is None:
        for sys_name in dict.fromkeys(e.system for e in targets):
            complete, missing = export_folder_status(landing, sys_name, export_date)
            if not complete:
                raise LoadError(
                    f"export {sys_name}/{export_date} is not complete, nothing was loaded;"
                    f" missing: {', '.join(missing)}"
                )
    results = []
    with connect(url) as conn:
        prepare(conn)
        folders: dict[str, tuple[ExportFolder, Manifest | None, str | None]] = {}
        for ent in targets:
            if ent.system not in folders:
                folders[ent.system] = _open_folder(landing, ent.system, export_date)
            folder, manifest, manifest_error = folders[ent.system]
            result = _load_entity(conn, folder, ent, _threshold(threshold), manifest,
                                  manifest_error)
            _fold_old_nights(conn, ent, result)
            results.append(result)
            if progress is not None:
                progress(result)
    return results


def load_file(url: str, landing: Landing, export_date: date | str, system: str, entity: str,
              threshold: float | None = None) -> FileResult:
    """Load one (system, date, entity) file: what one task of the nightly DAG runs."""
    (ent,) = _targets(system, entity)
    _check_formats([ent.system])
    with connect(url) as conn:
        prepare(conn)
        folder, manifest, manifest_error = _open_folder(landing, ent.system, export_date)
        result = _load_entity(conn, folder, ent, _threshold(threshold), manifest, manifest_error)
        _fold_old_nights(conn, ent, result)
        return result


def _fold_old_nights(conn: Connection, ent: Entity, result: FileResult) -> None:
    """After a night loaded: old months of the table into monthly partitions (compaction).
    A failure here loses nothing and fails no load: the nights stay as they were and the
    next load tries again."""
    days = settings.raw_nightly_days()
    if result.status != "loaded" or days == 0:
        return
    try:
        for folded in compaction.compact(conn, ent, result.export_date, days):
            log.info("raw.%s: folded %d nights of %s (%d partitions, %d rows) into one"
                     " partition", folded.table, folded.nights, folded.month,
                     folded.partitions, folded.rows)
    except psycopg.Error as exc:
        log.warning("raw.%s: old nights not folded into monthly partitions this time: %s",
                    ent.raw_table, exc)


def _targets(system: str | None, entity: str | None) -> list[Entity]:
    if system is not None and system not in SYSTEMS:
        raise LoadError(f"unknown system {system!r}: expected one of {', '.join(SYSTEMS)}")
    if entity is None:
        return list(entities(system))
    systems = [system] if system else [e.system for e in entities() if e.name == entity]
    try:
        return [contract_entity(systems[0] if systems else SYSTEMS[0], entity)]
    except KeyError as exc:
        raise LoadError(str(exc).strip("\"'")) from None


def _check_formats(systems: Iterable[str]) -> None:
    """Read the configured exporter formats' declarations before anything is loaded: a
    mistake in one stops the run with its file and key."""
    for sys_name in dict.fromkeys(systems):
        try:
            formats.for_system(sys_name)
        except (formats.DeclarationError, ValueError) as exc:
            raise LoadError(str(exc)) from None


def _threshold(threshold: float | None) -> float:
    value = settings.quarantine_threshold() if threshold is None else threshold
    if not 0 <= value <= 1:
        raise LoadError(f"quarantine threshold {value!r} must lie between 0 and 1")
    return value


def _open_folder(landing: Landing, system: str,
                 export_date: date | str) -> tuple[ExportFolder, Manifest | None, str | None]:
    """The folder and its manifest (a native exporter's folder has none: not read)."""
    folder = ExportFolder(landing, system, export_date)
    if formats.for_system(system) is not None:
        return folder, None, None
    try:
        return folder, folder.manifest(), None
    except ManifestError as exc:
        return folder, None, str(exc)


def _now() -> datetime:
    return datetime.now(UTC)


def _load_entity(conn: Connection, folder: ExportFolder, ent: Entity, threshold: float,
                 manifest: Manifest | None, manifest_error: str | None) -> FileResult:
    started_at, t0 = _now(), time.monotonic()
    delivery = _delivery(folder, ent)
    name = delivery.file_name

    def result(status: str, message: str, **counts: object) -> FileResult:
        return FileResult(folder.system, folder.export_date, ent.name, name, status,
                          message=message, seconds=time.monotonic() - t0, **counts)

    listed = manifest.files.get(ent.file_name) if manifest else None
    try:
        if manifest_error:
            raise _Rejected(f"the manifest cannot be used: {manifest_error}")
        missing = delivery.missing()
        if missing:
            if manifest is not None and listed is None:
                return result("absent", f"not part of this export ({MANIFEST_NAME} does not"
                                        " list it)")
            if isinstance(delivery, NativeDelivery):
                raise _Rejected(f"missing native file(s): {', '.join(missing)}")
            raise _Rejected("the file is missing" + (
                f" although {MANIFEST_NAME} lists it" if listed else ""))
        if manifest is not None and listed is None:
            raise _Rejected(f"{MANIFEST_NAME} does not list this file: the export is"
                            " inconsistent, ask the exporter to re-deliver the folder")
        with conn.transaction():
            return _load_in_transaction(conn, folder, ent, delivery, threshold, manifest,
                                        result)
    except _Rejected as rej:
        rejected = result("rejected", rej.message, rows_read=rej.rows_read,
                          rows_quarantined=rej.spool.count if rej.spool else 0,
                          sha256=rej.sha256)
        with conn.transaction():
            load_id = rej.load_id or ledger.next_load_id(conn)
            ledger.record(conn, load_id, rejected, started_at, _now())
            if rej.spool:
                rej.spool.write(conn)
                rej.spool.close()
        return rejected


def _load_in_transaction(conn: Connection, folder: ExportFolder, ent: Entity,
                         delivery: Delivery, threshold: float, manifest: Manifest | None,
                         result: Callable[..., FileResult]) -> FileResult:
    started_at = _now()
    key = f"chw:load:{folder.system}:{ent.name}:{folder.export_date.isoformat()}"
    conn.execute("set local time zone 'UTC'")
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
    previous = ledger.previous_load(conn, folder.system, folder.export_date, ent.name)
    if previous is not None:
        sha = delivery.sha256()
        if sha == previous.sha256:
            skipped = result("skipped", f"identical to the file loaded by load {previous.load_id}"
                             f" at {previous.finished_at:%Y-%m-%d %H:%M:%S%z}; nothing changed",
                             sha256=sha)
            ledger.record(conn, ledger.next_load_id(conn), skipped, started_at, _now())
            return skipped
    load_id = ledger.next_load_id(conn)
    spool = QuarantineSpool(folder.system, folder.export_date, ent.name, delivery.file_name,
                            load_id)
    per_row_source = delivery.provenance is None
    try:
        with delivery.scanner(spool) as scanner:
            try:
                scanner.read_header()
                extra = scanner.has_extra
                loading = _create_loading_table(conn, ent, folder.export_date, extra,
                                                per_row_source)
                cursor = conn.cursor()
                with cursor.copy(_copy_sql(loading, scanner.copy_columns, extra,
                                           per_row_source),
                                 writer=_QueuedWriter(cursor)) as copy:
                    for batch in scanner.batches():
                        copy.write(batch)
            except UnreadableFile as exc:
                raise _Rejected(str(exc), load_id, scanner.sha256(), scanner.rows_read) from None
            sha = scanner.sha256()
    except psycopg.errors.DataError as exc:
        raise _Rejected(f"PostgreSQL refused a row that passed the loader's checks ({exc});"
                        " this is a loader bug: report it with the file", load_id) from None
    except OSError as exc:
        raise _Rejected(f"cannot read the file: {exc}", load_id) from None
    except UnreadableFile as exc:  # a native format's lookup file, read before the scan
        raise _Rejected(str(exc), load_id) from None
    read, bad = scanner.rows_read, scanner.rows_quarantined
    problems = _manifest_problems(manifest, ent, read, sha)
    if problems:
        raise _Rejected(f"does not match {MANIFEST_NAME}: {problems}; nothing loaded",
                        load_id, sha, read, spool)
    if read and bad > threshold * read:
        raise _Rejected(
            f"{bad} of {read} rows ({bad / read:.2%}) do not fit their types, above the"
            f" quarantine threshold of {threshold:.2%}: the whole file is held back"
            f" (first: {_first(spool)}; all in audit.quarantine with load_id {load_id})",
            load_id, sha, read, spool)
    spool.write(conn)
    spool.close()
    replaced = _publish_partition(conn, ent, folder.export_date, delivery.provenance,
                                  extra=scanner.has_extra)
    notes = []
    if bad:
        notes.append(f"{bad} row(s) quarantined ({bad / read:.2%}; first: {_first(spool)})")
    if scanner.drift:
        notes.append("schema drift: unknown column(s) " + ", ".join(scanner.drift) +
                     " kept in _extra")
    if scanner.missing_optional:
        notes.append("optional column(s) " + ", ".join(scanner.missing_optional) +
                     " not in the file: loaded as empty")
    if replaced is not None:
        notes.append(f"replaced {replaced} row(s)" + (
            f" of load {previous.load_id}" if previous is not None else ""))
    if manifest is not None:
        notes.append(f"matches {MANIFEST_NAME}")
    loaded = result("loaded", "; ".join(notes), rows_read=read, rows_loaded=scanner.rows_loaded,
                    rows_quarantined=bad, sha256=sha)
    ledger.record(conn, load_id, loaded, started_at, _now())
    return loaded


class _QueuedWriter(QueuedLibpqWriter):
    """Sends COPY data from a thread, so parsing the next block overlaps the server's work.

    psycopg's queue holds up to 1024 buffers (128 MiB); a short queue keeps the
    loader's memory flat when the server is the slower side.
    """

    def __init__(self, cursor: psycopg.Cursor) -> None:
        super().__init__(cursor)
        self._queue = Queue(maxsize=QUEUE_DEPTH)


def _loading_table(ent: Entity, export_date: date) -> sql.Identifier:
    return sql.Identifier("raw", partition_name(ent, export_date) + "_loading")


def _create_loading_table(conn: Connection, ent: Entity, export_date: date,
                          extra: bool, per_row_source: bool = False) -> sql.Identifier:
    """The table this load fills: the night's partition-to-be, not yet attached to raw.

    It has the contract's columns, `_line_number`, and `_export_date` with the night as
    default and as check (the check lets ATTACH skip its scan); `_extra` too when the
    file has columns the contract does not know (otherwise it is added, NULL, when the
    table is published); `_source_file` too when an entity is read from several native
    files (otherwise it is the load's constant, added when the table is published).
    Created in the load's transaction, it disappears with a rollback or a killed load; no
    reader of raw waits for it. The advisory lock on (system, date, entity) makes its
    name unique.
    """
    table = _loading_table(ent, export_date)
    night = sql.Literal(export_date)
    conn.execute(sql.SQL(
        "create table {} ({}, _line_number bigint not null,"
        " _export_date date not null default {} check (_export_date = {}){}{})"
    ).format(table, contract_columns_ddl(ent), night, night,
             sql.SQL(", _extra jsonb") if extra else sql.SQL(""),
             sql.SQL(", _source_file text not null") if per_row_source else sql.SQL("")))
    return table


def _publish_partition(conn: Connection, ent: Entity, export_date: date,
                       source_file: str | None, extra: bool) -> int | None:
    """Attach the filled table as the night's partition of raw; returns the number of
    rows of the partition it replaces, None if the night had none.

    `_source_file` and `_loaded_at` are added as columns with a constant default, which
    PostgreSQL stores once in the catalogue instead of in every row (measured: sent or
    stored per row, the provenance made the server's COPY about a fifth slower);
    `_extra`, when the file had no unknown columns, is added NULL (no default: nothing
    is written to the rows). The
    old partition of a re-delivered night is dropped here, at the end of the load, so
    readers of raw wait only for the few statements to the commit.
    """
    loading = _loading_table(ent, export_date)
    source = sql.SQL("") if source_file is None else sql.SQL(
        "add column _source_file text not null default {},").format(sql.Literal(source_file))
    conn.execute(sql.SQL(
        "alter table {} {} add column _loaded_at timestamptz not null default now(){}"
    ).format(loading, source,
             sql.SQL("") if extra else sql.SQL(", add column _extra jsonb")))
    conn.execute(sql.SQL(
        "alter table {} alter column _export_date drop default,{}"
        " alter column _loaded_at drop default"
    ).format(loading, sql.SQL("") if source_file is None
             else sql.SQL(" alter column _source_file drop default,")))
    name = partition_name(ent, export_date)
    partition = sql.Identifier("raw", name)
    replaced = compaction.take_out(conn, ent, export_date)
    if conn.execute("select to_regclass(%s)", (partition.as_string(conn),)).fetchone()[0]:
        replaced = conn.execute(sql.SQL("select count(*) from {}").format(partition)).fetchone()[0]
        conn.execute(sql.SQL("drop table {}").format(partition))
    conn.execute(sql.SQL("alter table {} rename to {}").format(loading, sql.Identifier(name)))
    conn.execute(sql.SQL("alter table {} attach partition {} for values in ({})").format(
        sql.Identifier("raw", ent.raw_table), partition, sql.Literal(export_date)))
    return replaced


def _copy_sql(table: sql.Identifier, columns: list[str], extra: bool,
              per_row_source: bool = False) -> sql.Composed:
    """COPY of the contract's columns that the file has, `_extra` when it has unknown
    columns, `_source_file` when the entity is read from several native files, then
    `_line_number`. An empty field reaches COPY unquoted (`scanner`), so CSV's own rule
    makes it NULL."""
    names = [sql.Identifier(c) for c in [*columns, *(["_extra"] if extra else []),
                                         *(["_source_file"] if per_row_source else []),
                                         "_line_number"]]
    return sql.SQL("copy {} ({}) from stdin with (format csv)").format(
        table, sql.SQL(", ").join(names))


def _manifest_problems(manifest: Manifest | None, ent: Entity, rows: int, sha: str) -> str:
    if manifest is None:
        return ""
    entry = manifest.files[ent.file_name]
    problems = []
    if entry.rows is not None and entry.rows != rows:
        problems.append(f"{rows} rows read, the manifest says {entry.rows}")
    if entry.sha256 is not None and entry.sha256 != sha:
        problems.append(f"sha256 {sha} differs from the manifest's {entry.sha256}")
    return " and ".join(problems)


def _first(spool: QuarantineSpool) -> str:
    return "; ".join(f"line {line}: {reason}" for line, reason in spool.first[:1])


def _sha256(path: UPath) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
