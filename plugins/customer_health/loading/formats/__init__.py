"""Exporter formats: how a CRM's or billing system's own CSV exports map onto the contract.

`CHW_CRM_FORMAT` / `CHW_BILLING_FORMAT` choose one per system: `contract` (files written
as `shared/spec/exports.md` says: no translation, the loader's fast path), a format the
project ships (a declaration file next to this module: `salesforce.toml`, ...), or the
path of a declaration file of one's own. See docs/exporters.md.
"""

from __future__ import annotations

from pathlib import Path

from customer_health import settings
from customer_health.loading.formats.declaration import (
    FORMATS_DIR,
    DeclarationError,
    ExportFormat,
    load_declaration,
)

__all__ = ["DeclarationError", "ExportFormat", "declaration_path", "for_system", "load_format"]


def declaration_path(name: str) -> Path:
    """A shipped format's declaration file, or the path given."""
    return Path(name) if name.endswith(".toml") else FORMATS_DIR / f"{name}.toml"


def load_format(name: str, system: str) -> ExportFormat:
    path = declaration_path(name)
    if not path.is_file():
        raise DeclarationError(f"no declaration file {path} for format {name!r}")
    fmt = load_declaration(path)
    if fmt.system != system:
        raise DeclarationError(f"{path.name} declares a {fmt.system} format, not {system}")
    return fmt


def for_system(system: str) -> ExportFormat | None:
    """The configured format of `system`; None for the contract's own files."""
    name = settings.export_format(system)
    return None if name == "contract" else load_format(name, system)
