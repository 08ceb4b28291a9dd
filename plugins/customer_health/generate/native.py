"""The simulator's contract rows written as a native exporter writes them.

The inverse of the loader's translation (`loading/formats`), read from the same
declaration file: each row goes to the first native file whose rules can express it (a
value map that knows the value, a constant that equals it), and each rule is run
backwards: a rename writes the value, a value map its first native value, a lookup a
key into the lookup file (written whole every night), a transform its `write`, a
timestamp in the format's time zone and `timestamp_format`, a boolean its first native
spelling. Native columns no rule reads (`also`) are not written. A snapshot format
(`export = "snapshot"`, Stripe's) gets every record every night, in its latest version.
Loading these files gives back the contract rows (a snapshot format's: the last version
of each night): the test of identical marts rests on that.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from customer_health.contract import Entity
from customer_health.loading.formats.declaration import ColumnRule, ExportFormat, FileRule
from customer_health.loading.formats.transforms import TRANSFORMS


def _unquote(field: str) -> str:
    """A field as the simulator quoted it (output.quote) back to its value."""
    if field.startswith('"'):
        return field[1:-1].replace('""', '"')
    return field


def _inverse(values: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for native, contract in values.items():
        out.setdefault(contract, native)
    return out


class _Lookup:
    """A lookup file the generator fills: one row per value a rule pointed at."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.columns: list[str] = []
        self.rows: dict[str, dict[str, str]] = {}

    def key_for(self, column: str, value: str) -> str:
        digest = hashlib.sha256(f"{column}:{value}".encode()).hexdigest()[:15]
        key = f"{column[:1].upper()}{digest}"
        if column not in self.columns:
            self.columns.append(column)
        self.rows.setdefault(key, {self.key: key})[column] = value
        return key


class _FileWriter:
    """One native file: which rows it takes, and how a contract row is written in it."""

    def __init__(self, fmt: ExportFormat, rule: FileRule, entity: Entity,
                 lookups: dict[str, _Lookup]) -> None:
        self.fmt = fmt
        self.rule = rule
        self.entity = entity
        self.lookups = lookups
        # A format whose timestamps end in Z (Salesforce's) is written in UTC whatever
        # CHW_CRM_TIMEZONE says; the others in the format's time zone, without offset.
        self.zone = UTC if fmt.timestamp_format.endswith("Z") else ZoneInfo(fmt.timezone)
        self.true_false = _inverse(fmt.booleans)
        self.header = list(dict.fromkeys(n for r in rule.columns.values() for n in r.native))
        self.inverse = {c: _inverse(r.values) for c, r in rule.columns.items()
                        if r.values is not None}
        for column, r in rule.columns.items():
            if len(r.via) > 1:
                raise ValueError(f"{fmt.path.name}: the generator cannot write {column} through"
                                 " a chain of lookups (use a field, e.g. the default"
                                 " CHW_SALESFORCE_TEAM_FIELD)")

    def accepts(self, row: dict[str, str]) -> bool:
        for column, r in self.rule.columns.items():
            value = row[column]
            if r.constant is not None and "${" not in r.constant and value != r.constant:
                return False
            if column in self.inverse and value not in self.inverse[column] and \
                    value != r.default and value != "":
                return False
        return True

    def native_row(self, row: dict[str, str]) -> list[str]:
        out = dict.fromkeys(self.header, "")
        for column, r in self.rule.columns.items():
            if r.constant is not None:
                continue
            value = self._native_value(self.entity.column(column).type, row[column])
            if r.transform:
                parts = TRANSFORMS[r.transform].write(value, {**r.params, "row": row})
                if len(parts) > len(r.native):
                    raise ValueError(f"{r.transform} wrote {len(parts)} values for"
                                     f" {len(r.native)} columns")
                # a transform may write only its first columns (first_filled)
                out.update(zip(r.native, parts, strict=False))
                continue
            out[r.native[0]] = self._rule_value(column, r, value)
        return list(out.values())

    def _rule_value(self, column: str, r: ColumnRule, value: str) -> str:
        if column in self.inverse:
            value = self.inverse[column].get(value, "" if value == r.default else value)
        if r.via and value:
            (step,) = r.via
            value = self.lookups[step.lookup].key_for(step.column, value)
        return value

    def _native_value(self, type_: str, value: str) -> str:
        if not value:
            return value
        if type_ == "timestamp":
            at = datetime.fromisoformat(value).astimezone(self.zone)
            return at.strftime(self.fmt.timestamp_format)
        if type_ == "bool" and self.true_false:
            return self.true_false.get(value, value)
        return value


class NativeFolderWriter:
    """Writes one system's export folders in a native format, night by night."""

    def __init__(self, fmt: ExportFormat, out: Path, ents: tuple[Entity, ...]) -> None:
        self.fmt = fmt
        self.out = out
        self.lookups = {name: _Lookup(lk.key) for name, lk in fmt.lookups.items()}
        self.writers = {e.name: [_FileWriter(fmt, r, e, self.lookups)
                                 for r in fmt.sources(e.name)] for e in ents}
        self.entities = {e.name: e for e in ents}
        self._files: dict[str, tuple] = {}
        self.folder: Path | None = None
        # a snapshot format's records: entity -> key -> (version instant, file, native row)
        self.latest: dict[str, dict[str, tuple]] = {e.name: {} for e in ents} \
            if fmt.snapshot else {}

    def open(self, export_date: str) -> None:
        self.folder = self.out / self.fmt.system / export_date
        self.rows = dict.fromkeys(self.entities, 0)  # data rows written this night
        self.folder.mkdir(parents=True, exist_ok=True)
        for writers in self.writers.values():
            for w in writers:
                f = open(self.folder / w.rule.file, "w", encoding="utf-8",  # noqa: SIM115
                         newline="")
                out = csv.writer(f, lineterminator="\n")
                out.writerow(w.header)
                self._files[w.rule.file] = (f, out)

    def write(self, entity: str, rows: list[list[str]]) -> None:
        ent = self.entities[entity]
        names = ent.column_names
        writers = self.writers[entity]
        latest = self.latest.get(entity)
        for fields in rows:
            row = dict(zip(names, map(_unquote, fields), strict=True))
            w = next((w for w in writers if w.accepts(row)), None)
            if w is None:
                raise ValueError(f"{self.fmt.path.name}: no native file of {entity} can hold"
                                 f" {row}")
            if latest is None:
                self._files[w.rule.file][1].writerow(w.native_row(row))
                self.rows[entity] += 1
                continue
            at = datetime.fromisoformat(row[ent.version_column]) if ent.version_column \
                else None
            known = latest.get(row[ent.key])
            if known is None or at is None or at >= known[0]:
                latest[row[ent.key]] = (at, w.rule.file, w.native_row(row))

    def _write_snapshots(self) -> None:
        """A snapshot exporter's night: every record ever seen, in its latest version."""
        for entity, latest in self.latest.items():
            for _, file, native in latest.values():
                self._files[file][1].writerow(native)
            self.rows[entity] += len(latest)

    def close(self) -> None:
        self._write_snapshots()
        for f, _ in self._files.values():
            f.close()
        self._files = {}
        assert self.folder is not None
        needed = self.fmt.complete_files()
        for lookup in self.fmt.lookups.values():
            if lookup.file not in needed:
                continue
            state = self.lookups[lookup.name]
            with open(self.folder / lookup.file, "w", encoding="utf-8", newline="") as f:
                out = csv.writer(f, lineterminator="\n")
                out.writerow([lookup.key, *state.columns])
                for key in sorted(state.rows):
                    out.writerow([state.rows[key].get(c, "") for c in [lookup.key,
                                                                      *state.columns]])
