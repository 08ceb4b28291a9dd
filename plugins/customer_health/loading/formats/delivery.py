"""What the loader loads for one entity in a native format: the native files that feed
it (read one after the other, as one scanner), the lookup files their rules use, and the
checksum that makes a re-delivery of the same files a no-op."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from upath import UPath

from customer_health.contract import Entity
from customer_health.loading.formats.declaration import ExportFormat
from customer_health.loading.formats.native import Lookups, NativeScanner
from customer_health.loading.quarantine import QuarantineSpool
from customer_health.loading.scanner import CHUNK_SIZE, UnreadableFile


def read_lookups(folder_path: UPath, fmt: ExportFormat, entity: str,
                 digests: dict[str, str]) -> Lookups:
    """The lookup files an entity's rules use (small files: users, roles, owners), keyed
    by their key column, each row by its header names; their sha256 go to `digests`."""
    out: Lookups = {}
    for lookup in fmt.lookups_of(entity):
        data = (folder_path / lookup.file).read_bytes()
        digests[lookup.file] = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"{lookup.file} (a lookup) is not UTF-8: {exc}") from None
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            names = [fmt.header_key(n) for n in next(reader, [])]
            if fmt.header_key(lookup.key) not in names:
                raise UnreadableFile(f"{lookup.file} (a lookup) has no column {lookup.key!r}"
                                     f" (the header has: {', '.join(names)})")
            k = names.index(fmt.header_key(lookup.key))
            out[lookup.name] = {row[k]: dict(zip(names, row, strict=True))
                                for row in reader if len(row) == len(names)}
        except csv.Error as exc:
            raise UnreadableFile(f"{lookup.file} (a lookup) is not valid CSV: {exc}") from None
    return out


def combined_sha256(digests: dict[str, str]) -> str:
    """One file's own sha256; for several, the sha256 of their names and checksums."""
    if len(digests) == 1:
        return next(iter(digests.values()))
    text = "".join(f"{name} {sha}\n" for name, sha in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()


class NativeDelivery:
    """The native files of one entity in one export folder, as the loader loads them."""

    def __init__(self, fmt: ExportFormat, folder_path: UPath, relative: Callable[[str], str],
                 entity: Entity, export_date: str) -> None:
        self.fmt = fmt
        self.entity = entity
        self.path = folder_path
        self.relative = relative
        self.export_date = export_date
        self.rules = fmt.sources(entity.name)
        self.file_name = "+".join(r.file for r in self.rules)
        self.provenance = relative(self.rules[0].file) if len(self.rules) == 1 else None

    def files(self) -> list[str]:
        return [r.file for r in self.rules] + [lk.file for lk in self.fmt.lookups_of(
            self.entity.name)]

    def missing(self) -> list[str]:
        return [f for f in self.files() if not (self.path / f).exists()]

    def sha256(self) -> str:
        digests = {}
        for name in self.files():
            digest = hashlib.sha256()
            with (self.path / name).open("rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
            digests[name] = digest.hexdigest()
        return combined_sha256(digests)

    @contextmanager
    def scanner(self, spool: QuarantineSpool) -> Iterator[_Chain]:
        with ExitStack() as stack:
            digests: dict[str, str] = {}
            lookups = read_lookups(self.path, self.fmt, self.entity.name, digests)
            several = len(self.rules) > 1
            scanners = [NativeScanner(stack.enter_context((self.path / r.file).open("rb")),
                                      self.entity, spool, self.fmt, r, lookups,
                                      self.relative(r.file), several, self.export_date)
                        for r in self.rules]
            yield _Chain(scanners, digests, spool)


class _Chain:
    """The scanners of an entity's native files, read one after the other, as one."""

    def __init__(self, scanners: list[NativeScanner], digests: dict[str, str],
                 spool: QuarantineSpool) -> None:
        self.scanners = scanners
        self.digests = digests
        self.spool = spool
        self.copy_columns = list(scanners[0].entity.column_names)
        self.source_per_row = len(scanners) > 1
        self.drift: list[str] = []
        self.missing_optional: list[str] = []

    def read_header(self) -> None:
        several = len(self.scanners) > 1
        for s in self.scanners:
            try:
                s.read_header()
            except UnreadableFile as exc:
                raise UnreadableFile(f"{s.rule.file}: {exc}" if several else str(exc)) from None
            self.drift += [f"{s.rule.file}: {d}" if several else d for d in s.drift]
        self.missing_optional = [c for c in self.copy_columns
                                 if all(c in s.missing_optional for s in self.scanners)]
        extra = any(s.has_extra for s in self.scanners)
        for s in self.scanners:
            s.force_extra = extra

    @property
    def has_extra(self) -> bool:
        return any(s.has_extra for s in self.scanners)

    def batches(self) -> Iterator[bytes]:
        for s in self.scanners:
            try:
                yield from s.batches()
            except UnreadableFile as exc:
                raise UnreadableFile(f"{s.rule.file}: {exc}") from None

    @property
    def rows_read(self) -> int:
        return sum(s.rows_read for s in self.scanners)

    @property
    def rows_loaded(self) -> int:
        return sum(s.rows_loaded for s in self.scanners)

    @property
    def rows_quarantined(self) -> int:
        return self.spool.count

    def sha256(self) -> str:
        for s in self.scanners:
            self.digests[s.rule.file] = s.sha256()
        return combined_sha256(self.digests)
