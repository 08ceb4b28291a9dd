"""Publishing a rendered night to an object store (CHW_REPORTS_DIR=s3://bucket/reports).

An object store has no rename and no symlink, so a night is published in steps, each
object written whole (a reader never sees half a file):

1. the night, rendered and checked on local disk, is uploaded under a hidden staging
   prefix `.tmp-<night>-<epoch>-<token>/` that nothing links to;
2. it is copied (server side) over `<night>/`, index.html last; files an earlier run of
   the same night had and this one has not are deleted afterwards;
3. when it is the newest night, the same copy over `latest/` (a copy, not a link);
4. last, the pointer object `LATEST` (the newest night's name) is written;
5. the staging prefix is removed.

Meanwhile a reader of `LATEST` (and of the night it names) sees the previous complete
night; a reader of `<night>/` or `latest/` during steps 2-3 may get some pages of the
earlier run of that folder and some of this one, file by file, for the seconds the copy
takes. A failure in step 1 leaves nothing visible (the staging prefix is removed, or,
after a crash, swept by a later publish once it is STALE_SECONDS old); a failure later
leaves `LATEST` naming the previous night.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from upath import UPath

POINTER = "LATEST"
_STAGING = re.compile(r"^\.tmp-.+-(\d{9,})-[0-9a-f]{8}$")


def is_remote(root: Path | UPath) -> bool:
    """True for a location that is not the local file system (s3://, gs://, memory://...)."""
    return not isinstance(root, Path)


def _key(path: UPath) -> str:
    return path.path.rstrip("/")


def published_nights(root: UPath, pattern: re.Pattern[str]) -> list[str]:
    """The nights' folder names under `root`, newest first."""
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted({p.name for p in entries if pattern.match(p.name)}, reverse=True)


def _files(fs, prefix: str) -> list[str]:
    """Keys under `prefix`, relative to it."""
    try:
        found = fs.find(prefix)
    except FileNotFoundError:
        return []
    return sorted(f[len(prefix) + 1:] for f in found if f.startswith(prefix + "/"))


def _upload(local: Path, dest: UPath) -> None:
    fs = dest.fs
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{_key(dest)}/{path.relative_to(local).as_posix()}")


def _mirror(fs, source: str, dest: str) -> None:
    """Make `dest/` hold exactly `source/`'s files: copy each (top-level index.html last),
    then delete what `dest/` held beyond them."""
    wanted = _files(fs, source)
    ordered = sorted(wanted, key=lambda rel: (rel == "index.html", rel))
    for rel in ordered:
        fs.copy(f"{source}/{rel}", f"{dest}/{rel}")
    extra = [f"{dest}/{rel}" for rel in _files(fs, dest) if rel not in set(wanted)]
    if extra:
        fs.rm(extra)
    fs.invalidate_cache()


def clean_stale(root: UPath, stale_seconds: int) -> None:
    """Remove staging prefixes of crashed publishes older than `stale_seconds`."""
    now = time.time()
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        found = _STAGING.match(entry.name)
        if found and now - int(found.group(1)) >= stale_seconds:
            root.fs.rm(_key(entry), recursive=True)


def publish_night(local: Path, root: UPath, name: str, latest: str,
                  newest: bool) -> None:
    """Upload the rendered night `local` as `root/name/` (steps 1-5 above); with
    `newest`, also `root/<latest>/` and the pointer."""
    fs = root.fs
    staging = root / f".tmp-{name}-{int(time.time())}-{uuid.uuid4().hex[:8]}"
    try:
        _upload(local, staging)
        _mirror(fs, _key(staging), _key(root / name))
        if newest:
            _mirror(fs, _key(staging), _key(root / latest))
            (root / POINTER).write_text(name + "\n", encoding="utf-8")
    finally:
        try:
            fs.rm(_key(staging), recursive=True)
        except FileNotFoundError:
            pass
        fs.invalidate_cache()


def read_pointer(root: UPath) -> str | None:
    """The night `LATEST` names, or None before the first publish."""
    try:
        return (root / POINTER).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
