"""Writing export folders: CSV files, row counts, checksums and the manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

from customer_health.contract import MANIFEST_NAME, SYSTEMS, Entity, entities
from customer_health.generate.native import NativeFolderWriter
from customer_health.loading.formats import ExportFormat

DAY = 86_400


def quote(field: str) -> str:
    """RFC 4180 quoting, exactly as the csv module's QUOTE_MINIMAL writes a field.

    Rows are joined by hand (4x faster than csv.writer); the simulator quotes the few
    free-text fields with this at set-up time, every other field is a plain token.
    """
    if "," in field or '"' in field or "\n" in field or "\r" in field:
        return '"' + field.replace('"', '""') + '"'
    return field


class Clock:
    """Formats simulation times cheaply.

    A time is an int: seconds since 00:00Z of simulation day 0. Day strings and the
    86,400 clock strings are built once, so formatting is two lookups and a concat.
    """

    def __init__(self, day0: date, last_day: int, margin: int = 800) -> None:
        self.day0 = day0
        self._lo = 2  # a local time (negative offset) may fall on day -1
        self.days = [
            (day0 + timedelta(days=d)).isoformat() for d in range(-self._lo, last_day + margin)
        ]
        self._hms = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)]
        self.hmsz = [h + "Z" for h in self._hms]

    def date(self, d: int) -> str:
        return self.days[d + self._lo]

    def z(self, t: int) -> str:
        """ISO 8601 in UTC with `Z`."""
        d, s = divmod(t, DAY)
        return self.days[d + self._lo] + self.hmsz[s]

    def off(self, t: int, off_sec: int, suffix: str) -> str:
        """The same instant as local time at a fixed offset, e.g. `...T15:03:00+01:00`."""
        d, s = divmod(t + off_sec, DAY)
        return self.days[d + self._lo] + self._hms[s] + suffix


class LandingWriter:
    """Writes one export folder per system at a time, then its manifest.

    A system given a native format in `formats` is written as that exporter writes it
    (`native`: its own files, no manifest); the others as the contract says.
    """

    def __init__(self, out: Path, ents: tuple[Entity, ...] | None = None,
                 formats: dict[str, ExportFormat] | None = None) -> None:
        self.out = out
        self.entities = ents or entities()
        self.native = {system: NativeFolderWriter(fmt, out, tuple(
            e for e in self.entities if e.system == system))
            for system, fmt in (formats or {}).items()}
        self._files: list = []
        self._counts: list[int] = []
        self._date: str | None = None
        self._full = False
        self.totals = {(e.system, e.name): 0 for e in self.entities}
        self.folders = 0

    @staticmethod
    def prepare(out: Path, overwrite: bool) -> None:
        """Refuses to mix with an earlier run's folders unless asked to replace them."""
        out.mkdir(parents=True, exist_ok=True)
        for system in SYSTEMS:
            d = out / system
            if d.exists() and any(d.iterdir()):
                if not overwrite:
                    raise FileExistsError(
                        f"{d} already holds exports; pass overwrite=True to replace them"
                    )
                shutil.rmtree(d)

    def open(self, export_date: str, full: bool) -> None:
        self.close()
        self._date, self._full = export_date, full
        for native in self.native.values():
            native.open(export_date)
        for e in self.entities:
            if e.system in self.native:
                self._files.append(None)
                self._counts.append(0)
                continue
            folder = self.out / e.system / export_date
            folder.mkdir(parents=True, exist_ok=True)
            f = open(folder / e.file_name, "w", encoding="utf-8", newline="")  # noqa: SIM115
            f.write(",".join(e.column_names) + "\n")
            self._files.append(f)
            self._counts.append(0)

    def write(self, index: int, rows: list[list[str]]) -> None:
        """Writes rows (lists of already quoted fields) of entity number `index`."""
        e = self.entities[index]
        if e.system in self.native:
            self.native[e.system].write(e.name, rows)
            self._counts[index] += len(rows)
            return
        self._files[index].write("".join([",".join(r) + "\n" for r in rows]))
        self._counts[index] += len(rows)

    def close(self) -> None:
        if self._date is None:
            return
        manifests: dict[str, dict] = {}
        for native in self.native.values():
            native.close()
        for e, f, n in zip(self.entities, self._files, self._counts, strict=True):
            if f is None:  # a native format's: no manifest; a snapshot's rows are its own
                self.totals[(e.system, e.name)] += self.native[e.system].rows[e.name]
                continue
            f.close()
            m = manifests.setdefault(
                e.system,
                {"export_date": self._date, "system": e.system, "full": self._full, "files": {}},
            )
            m["files"][e.file_name] = {"rows": n, "sha256": _sha256(Path(f.name))}
            self.totals[(e.system, e.name)] += n
        for system, m in manifests.items():
            path = self.out / system / self._date / MANIFEST_NAME
            path.write_text(json.dumps(m, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        self.folders += 1
        self._files, self._counts = [], []
        self._date = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
