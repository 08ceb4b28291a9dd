"""Hostile markup for the export columns, and a scan of a published reports tree for it.

`payload(tag)` is text that runs a script wherever a page prints it unescaped (as an
element or by breaking out of an attribute); `tag` names where it was put, so a scan can
tell which night and column a value came from. `unescaped(root)` lists every file of the
tree that holds it raw; `tags_in(root)` every tag found in any form (escaped or not).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

TAG_PREFIX = "chwxss"
#: Raw markup, as a browser would parse it. Escaped forms (&lt;script&gt;, JSON's
#: \u003c) do not match; neither does the text "onerror=" once its "<img" is escaped.
RAW_MARKUP = re.compile(r"<script>alert\(|<img src=x onerror=", re.IGNORECASE)
#: Files that are data, not pages: the team CSV holds raw values by design (for
#: spreadsheets; formula-like cells are neutralised) and is served as text/csv.
DATA_SUFFIXES = frozenset({".csv"})
#: A whole tag, as the payload holds it: `alert("<tag>")` (the quotes maybe JSON-escaped
#: or doubled by CSV).
#: File names and SVG ids folded from a hostile team name hold fragments of it, not this.
_TAG = re.compile(r'(?:(?<=alert\(")|(?<=alert\(\\")|(?<=alert\(""))' + TAG_PREFIX
                  + r'-[a-z0-9_-]+(?=\\?")')


def payload(tag: str) -> str:
    """Markup that would run `alert` if printed raw in an element or an attribute."""
    tag = f"{TAG_PREFIX}-{tag}"
    return f'"><img src=x onerror=alert("{tag}")><script>alert("{tag}")</script>'


def published_files(root: Path) -> list[Path]:
    """Every file under `root` (the `latest` symlink is not followed: its night is there)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def unescaped(root: Path) -> dict[str, list[str]]:
    """relative path -> the raw markup found in it (data files excepted)."""
    found = {}
    for path in published_files(root):
        if path.suffix.lower() in DATA_SUFFIXES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits = [text[max(m.start() - 40, 0):m.end() + 40] for m in RAW_MARKUP.finditer(text)]
        if hits:
            found[str(path.relative_to(root))] = hits[:3]
    return found


def files_containing(root: Path, needle: str) -> list[str]:
    """Relative paths of the files whose name or text (entities decoded) holds `needle`."""
    return [str(p.relative_to(root)) for p in published_files(root)
            if needle in str(p.relative_to(root))
            or needle in html.unescape(p.read_text(encoding="utf-8", errors="replace"))]


def tags_in(root: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, set[str]]:
    """tag -> the files holding it, in any form (raw, HTML- or JSON-escaped)."""
    found: dict[str, set[str]] = {}
    for path in published_files(root):
        if suffixes and path.suffix.lower() not in suffixes:
            continue
        text = html.unescape(path.read_text(encoding="utf-8", errors="replace"))
        for tag in set(_TAG.findall(text)):
            found.setdefault(tag, set()).add(str(path.relative_to(root)))
    return found
