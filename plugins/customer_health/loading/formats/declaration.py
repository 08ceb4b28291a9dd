"""A native exporter's declaration file (`<name>.toml`) read into rules the translator runs.

The file says, per native CSV file, which contract entity it feeds and how each contract
column is found (a rename, a value map, a lookup in another file, a constant or a named
transform), and, for the whole format, the time zone of timestamps written without an
offset, the number format and the spelling of booleans. docs/exporters.md describes the
syntax; this module checks a declaration against the contract when it is read, so a
mistake in it is reported once, with the file's name, before anything is loaded.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from customer_health import settings
from customer_health.contract import Entity, entities
from customer_health.loading.formats.transforms import TRANSFORMS

FORMATS_DIR = Path(__file__).resolve().parent
_PARAM_RX = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
_SAFE_FILE_RX = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. ()-]*\.csv")


class DeclarationError(ValueError):
    """A declaration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Step:
    """`lookup.column`: find the value among the lookup file's keys, take `column`."""

    lookup: str
    column: str


@dataclass(frozen=True)
class ColumnRule:
    """How one contract column is found in a native row."""

    column: str
    native: tuple[str, ...] = ()  # the native columns read (several for a transform)
    via: tuple[Step, ...] = ()
    values: dict[str, str] | None = None
    values_name: str = ""
    default: str = ""  # used when the native value is empty
    constant: str | None = None
    null_if_prefix: tuple[str, ...] = ()
    transform: str | None = None
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRule:
    """One native file and the entity it feeds."""

    file: str
    entity: str
    columns: dict[str, ColumnRule]
    also: tuple[str, ...] = ()  # native columns known to come, kept in _extra, not drift


@dataclass(frozen=True)
class Lookup:
    name: str
    file: str
    key: str


@dataclass(frozen=True)
class ExportFormat:
    name: str
    system: str
    path: Path
    timezone: str
    case_insensitive: bool
    thousands_separator: str
    decimal_separator: str
    booleans: dict[str, str]
    timestamp_format: str  # how the sample-data generator writes a timestamp
    # True for an exporter whose files are full snapshots of current state (no update
    # stamp, every record every night): the generator then writes each record's latest
    # version every night; dbt drops the versions that change nothing.
    snapshot: bool
    files: tuple[FileRule, ...]
    lookups: dict[str, Lookup]

    def sources(self, entity: str) -> tuple[FileRule, ...]:
        return tuple(f for f in self.files if f.entity == entity)

    def lookups_of(self, entity: str) -> tuple[Lookup, ...]:
        names = dict.fromkeys(s.lookup for f in self.sources(entity)
                              for r in f.columns.values() for s in r.via)
        return tuple(self.lookups[n] for n in names)

    def complete_files(self) -> list[str]:
        """The files of a complete night: every source, and every lookup a rule uses."""
        names = [f.file for f in self.files]
        for ent in dict.fromkeys(f.entity for f in self.files):
            names += [lk.file for lk in self.lookups_of(ent)]
        return list(dict.fromkeys(names))

    def header_key(self, name: str) -> str:
        return name.casefold() if self.case_insensitive else name


def load_declaration(path: Path) -> ExportFormat:
    where = path.name
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DeclarationError(f"{path}: cannot be read as TOML: {exc}") from None
    try:
        return _parse(doc, path)
    except DeclarationError as exc:
        if str(exc).startswith(where):
            raise
        raise DeclarationError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise DeclarationError(f"{where}: {detail}") from None


def _parse(doc: dict, path: Path) -> ExportFormat:
    where = path.name
    system = doc["system"]
    known = {e.name: e for e in entities(system)}
    params = _parameters(doc.get("parameters", {}), where)
    tz = settings.export_timezone(system) or doc.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeclarationError(f"{where}: time zone {tz!r} is not an IANA time zone") from None
    value_maps: dict[str, dict[str, str]] = {
        name: {str(k): str(v) for k, v in table.items()}
        for name, table in doc.get("values", {}).items()}
    lookups = {name: Lookup(name, _safe_file(t["file"], where), t["key"])
               for name, t in doc.get("lookups", {}).items()}
    files = []
    for file_name, table in doc.get("files", {}).items():
        ent = known.get(table.get("entity", ""))
        if ent is None:
            raise DeclarationError(f"{where}: [files.{file_name!r}] entity must be one of "
                                   f"{', '.join(known)}")
        columns = {}
        for column, spec in table.get("columns", {}).items():
            if column not in ent.column_names:
                raise DeclarationError(f"{where}: [files.{file_name!r}.columns] {column}: "
                                       f"{ent.system}/{ent.name} has no such column")
            columns[column] = _rule(column, _substitute(spec, params), value_maps, lookups,
                                    f"{where}: [files.{file_name!r}.columns] {column}")
        _check_coverage(ent, columns, f"{where}: [files.{file_name!r}]")
        files.append(FileRule(_safe_file(file_name, where), ent.name, columns,
                              tuple(table.get("also", ()))))
    export = doc.get("export", "delta")
    if export not in ("delta", "snapshot"):
        raise DeclarationError(f"{where}: export must be \"delta\" or \"snapshot\"")
    missing = [e for e in known if not any(f.entity == e for f in files)]
    if missing:
        raise DeclarationError(f"{where}: no file feeds {', '.join(missing)}")
    return ExportFormat(
        name=doc.get("name", path.stem), system=system, path=path, timezone=tz,
        case_insensitive=doc.get("header_case", "exact") == "insensitive",
        thousands_separator=doc.get("thousands_separator", ""),
        decimal_separator=doc.get("decimal_separator", "."),
        booleans={str(k): str(v) for k, v in doc.get("booleans", {}).items()},
        timestamp_format=doc.get("timestamp_format", "%Y-%m-%dT%H:%M:%SZ"),
        snapshot=export == "snapshot",
        files=tuple(files), lookups=lookups)


def _parameters(table: dict, where: str) -> dict[str, str]:
    """`[parameters.x] setting = "CHW_...", default = "..."`: values a user sets in the
    environment, used in the rules as `${x}`."""
    out = {}
    for name, spec in table.items():
        value = settings.declared(spec["setting"]) if "setting" in spec else None
        out[name] = value if value is not None else str(spec["default"])
    return out


#: Parameters every declaration has, known only when a night is loaded (not substituted
#: here): `${export_date}`, the night's date (YYYY-MM-DD), and `${snapshot_at}`, the
#: instant a snapshot export of that night shows (the last microsecond of the day before,
#: UTC: a contract folder holds the changes up to the end of the day before its date), the
#: `updated_at` of a snapshot export that has no update stamp (Stripe's).
LOAD_PARAMETERS = ("export_date", "snapshot_at")


def load_parameters(export_date: str) -> dict[str, str]:
    """The values of LOAD_PARAMETERS for the night `export_date` (YYYY-MM-DD)."""
    day_before = date.fromisoformat(export_date) - timedelta(days=1)
    return {"export_date": export_date,
            "snapshot_at": f"{day_before.isoformat()}T23:59:59.999999Z"}


def with_load_parameters(text: str, values: dict[str, str]) -> str:
    """`text` with `${export_date}` and `${snapshot_at}` replaced."""
    return _PARAM_RX.sub(lambda m: values.get(m[1], m[0]), text)


def _substitute(spec: object, params: dict[str, str]) -> object:
    if isinstance(spec, str):
        def value(m: re.Match[str]) -> str:
            if m[1] in LOAD_PARAMETERS:
                return m[0]
            if m[1] not in params:
                raise DeclarationError(f"${{{m[1]}}} is no declared [parameters] entry")
            return params[m[1]]
        return _PARAM_RX.sub(value, spec)
    if isinstance(spec, list):
        return [_substitute(s, params) for s in spec]
    if isinstance(spec, dict):
        return {k: _substitute(v, params) for k, v in spec.items()}
    return spec


def _safe_file(name: str, where: str) -> str:
    """A plain file name: declarations cannot point outside the export folder."""
    if not _SAFE_FILE_RX.fullmatch(name) or ".." in name:
        raise DeclarationError(f"{where}: {name!r} is not a plain CSV file name")
    return name


def _path(text: str, lookups: dict[str, Lookup], where: str) -> tuple[str, tuple[Step, ...]]:
    """`OwnerId > users.Email`: a native column, then lookups in other files."""
    first, *rest = [p.strip() for p in text.split(">")]
    steps = []
    for part in rest:
        name, _, column = part.partition(".")
        if name not in lookups or not column:
            raise DeclarationError(f"{where}: {part!r} is not <lookup>.<column> of a declared"
                                   f" lookup ({', '.join(lookups) or 'none declared'})")
        steps.append(Step(name, column))
    return first, tuple(steps)


def _rule(column: str, spec: object, value_maps: dict[str, dict[str, str]],
          lookups: dict[str, Lookup], where: str) -> ColumnRule:
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        raise DeclarationError(f"{where}: expected a native column name or a table")
    if "value" in spec:
        return ColumnRule(column, constant=str(spec["value"]))
    sources = spec["from"]
    if "transform" in spec:
        name = spec["transform"]
        if name not in TRANSFORMS:
            raise DeclarationError(f"{where}: unknown transform {name!r} (known: "
                                   f"{', '.join(sorted(TRANSFORMS))})")
        natives = tuple([sources] if isinstance(sources, str) else sources)
        params = {k: v for k, v in spec.items() if k not in ("from", "transform")}
        return ColumnRule(column, native=natives, transform=name, params=params)
    native, via = _path(sources, lookups, where)
    values, values_name = None, ""
    if "values" in spec:
        values_name = spec["values"] if isinstance(spec["values"], str) else column
        values = value_maps.get(spec["values"]) if isinstance(spec["values"], str) \
            else {str(k): str(v) for k, v in spec["values"].items()}
        if values is None:
            raise DeclarationError(f"{where}: no [values.{spec['values']}] table")
    return ColumnRule(column, native=(native,), via=via, values=values, values_name=values_name,
                      default=str(spec.get("default", "")),
                      null_if_prefix=tuple(spec.get("null_if_prefix", ())))


def _check_coverage(ent: Entity, columns: dict[str, ColumnRule], where: str) -> None:
    missing = [c for c in ent.required_columns if c not in columns]
    if missing:
        raise DeclarationError(f"{where}: no rule for required column(s) {', '.join(missing)}"
                               f" of {ent.system}/{ent.name}")
