"""The landing area: where a night's export folder is, its manifest, its completeness.

Paths are built only from the contract (system, date, entity file names), after
checking that system and date are well-formed, so nothing read from an export can
point outside the landing area. The landing area is a local folder or any URL
fsspec / universal-pathlib understand (`s3://...`, `memory://...`), or an Airflow
`ObjectStoragePath` (a UPath, passed through with its storage options).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date

from upath import UPath

from customer_health.contract import MANIFEST_NAME, SYSTEMS, entities

_DATE_RX = re.compile(r"\d{4}-\d{2}-\d{2}")


class LoadError(RuntimeError):
    """A whole run cannot go ahead (bad arguments, incomplete export); the message says why."""


def parse_export_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    if not _DATE_RX.fullmatch(value):
        raise LoadError(f"export date {value!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LoadError(f"export date {value!r} is not a valid date") from None


def check_system(system: str) -> str:
    if system not in SYSTEMS:
        raise LoadError(f"unknown system {system!r}: expected one of {', '.join(SYSTEMS)}")
    return system


def landing_path(landing: str | os.PathLike[str] | UPath) -> UPath:
    return landing if isinstance(landing, UPath) else UPath(os.fspath(landing))


@dataclass(frozen=True)
class ManifestEntry:
    rows: int | None
    sha256: str | None


@dataclass(frozen=True)
class Manifest:
    full: bool
    files: dict[str, ManifestEntry] = field(default_factory=dict)


class ManifestError(ValueError):
    pass


class ExportFolder:
    """`<landing>/<system>/<export_date>/`."""

    def __init__(self, landing: str | os.PathLike[str] | UPath, system: str,
                 export_date: date | str) -> None:
        self.system = check_system(system)
        self.export_date = parse_export_date(export_date)
        self.path = landing_path(landing) / self.system / self.export_date.isoformat()

    def relative(self, name: str) -> str:
        """How files are named in the ledger, quarantine and provenance."""
        return f"{self.system}/{self.export_date.isoformat()}/{name}"

    def file(self, name: str) -> UPath:
        return self.path / name

    def exists(self, name: str) -> bool:
        return self.file(name).exists()

    def manifest(self) -> Manifest | None:
        """The folder's manifest, None without one; ManifestError when it is unusable."""
        path = self.file(MANIFEST_NAME)
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = self.relative(MANIFEST_NAME)
            raise ManifestError(f"{where} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
            raise ManifestError(f"{self.relative(MANIFEST_NAME)} has no \"files\" object")
        where = self.relative(MANIFEST_NAME)
        if doc.get("system", self.system) != self.system:
            raise ManifestError(f"{where} says system {doc.get('system')!r}")
        if str(doc.get("export_date", self.export_date)) != self.export_date.isoformat():
            raise ManifestError(f"{where} says export_date {doc.get('export_date')!r}")
        files = {}
        for name, entry in doc["files"].items():
            entry = entry if isinstance(entry, dict) else {}
            rows, sha = entry.get("rows"), entry.get("sha256")
            if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool)):
                raise ManifestError(f"{where}: rows of {name} is not a whole number")
            files[name] = ManifestEntry(rows, str(sha).lower() if sha is not None else None)
        return Manifest(bool(doc.get("full", False)), files)


def export_folder_status(landing: str | os.PathLike[str] | UPath, system: str,
                         export_date: date | str) -> tuple[bool, list[str]]:
    """The contract's completeness rule: (complete, the files still missing).

    With a manifest, the folder is complete when every file it lists is there (an
    unreadable manifest counts as complete: the load then rejects it loudly).
    Without one, every entity file of the system must be there. A native format
    (`formats`) names its own files: every file its declaration reads must be there.
    """
    from customer_health.loading import formats

    folder = ExportFolder(landing, system, export_date)
    fmt = formats.for_system(system)
    if fmt is not None:  # a native exporter's files, named by its declaration
        names = fmt.complete_files()
        missing = [folder.relative(n) for n in names if not folder.exists(n)]
        return not missing, missing
    try:
        manifest = folder.manifest()
    except ManifestError:
        return True, []
    if manifest is not None:
        names = sorted(manifest.files)
    else:
        names = [e.file_name for e in entities(system)]
    missing = [folder.relative(n) for n in names if not folder.exists(n)]
    if manifest is None and missing and not folder.path.exists():
        missing = [folder.relative(n) for n in names]
    return not missing, missing
