"""What a load reports: one FileResult per file, and the table the CLI prints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

STATUSES = ("loaded", "skipped", "rejected", "absent")


@dataclass(frozen=True)
class FileResult:
    """One file's outcome, as in its ledger row (`file_name` is e.g. activities.csv).

    `absent`: the folder's manifest does not list the file (no ledger row).
    """

    system: str
    export_date: date
    entity: str
    file_name: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    message: str = ""
    sha256: str | None = None
    seconds: float = 0.0

    @property
    def path(self) -> str:
        """The file within the landing area, e.g. crm/2026-11-21/activities.csv."""
        return f"{self.system}/{self.export_date.isoformat()}/{self.file_name}"

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


def format_results(results: Iterable[FileResult]) -> str:
    """A fixed-width per-file summary; rejected files are listed again with their reason."""
    results = list(results)
    header = ("status", "file", "read", "loaded", "quarantined", "seconds")
    rows = [(r.status, r.path, f"{r.rows_read:,}", f"{r.rows_loaded:,}",
             f"{r.rows_quarantined:,}", f"{r.seconds:.1f}") for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        first = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        rest = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(first + rest).rstrip()

    out = [line(header)] + [line(r) for r in rows]
    rejected = [r for r in results if r.status == "rejected"]
    notes = [r for r in results if r.message and r.status != "rejected"]
    out.append(f"{len(results)} file(s): " + ", ".join(
        f"{sum(r.status == s for r in results)} {s}" for s in STATUSES
        if any(r.status == s for r in results)) if results else "no file")
    out += [f"note: {r.path}: {r.message}" for r in notes]
    out += [f"REJECTED: {r.path}: {r.message}" for r in rejected]
    return "\n".join(out)
