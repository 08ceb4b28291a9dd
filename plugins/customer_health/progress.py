"""Progress of long commands: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts steps of a long command and shows them.

    On a terminal the line is redrawn in place; in a pipe or a CI log each step is a
    line of its own (at most one every `min_interval` seconds, plus the last).
    """

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, min_interval: float = 5.0
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.min_interval = min_interval
        self.done = 0
        self.started = time.monotonic()
        self._last_line = 0.0

    def update(self, done: int, note: str = "") -> None:
        self.done = min(done, self.total)
        elapsed = time.monotonic() - self.started
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(
                f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.0f}s {note[:40]:<40}"
            )
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        now = time.monotonic()
        if self.done >= self.total or now - self._last_line >= self.min_interval:
            self._last_line = now
            suffix = f" ({note})" if note else ""
            self.stream.write(
                f"{self.label}: {self.done}/{self.total} after {elapsed:.0f}s{suffix}\n"
            )
            self.stream.flush()

    def step(self, note: str = "") -> None:
        self.update(self.done + 1, note)


def say(message: str, stream: TextIO | None = None) -> None:
    """A plain status line on stderr (stdout stays for a command's result)."""
    stream = stream or sys.stderr
    if stream.isatty():
        stream.write("\r\033[K")
    stream.write(message + "\n")
    stream.flush()
