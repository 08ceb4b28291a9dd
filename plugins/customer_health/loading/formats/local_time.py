"""Timestamps written without an offset, in an exporter's time zone (a HubSpot portal's):
the offset each one had, added so that PostgreSQL reads the right instant."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from customer_health.loading.checks import _TIMESTAMP_RX

_DAY = operator.itemgetter(slice(0, 10))  # YYYY-MM-DD of a timestamp


class LocalTime:
    """Adds the zone's UTC offset to a timestamp written without one (an hour that occurs
    twice when clocks go back is read as its first occurrence; one that does not exist
    gets the offset before the change). Offsets are cached per day: a day without a
    change of offset needs one lookup for all its timestamps."""

    _shared: dict[str, LocalTime] = {}

    @classmethod
    def of(cls, zone: str) -> LocalTime:
        """The zone's converter, one per process: its days are learnt once for all files."""
        if zone not in cls._shared:
            cls._shared[zone] = cls(zone)
        return cls._shared[zone]

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        # day -> its offset, None: it changes that day ("": an empty value stays empty)
        self.days: dict[str, str | None] = {"": ""}

    def column(self, values: Sequence[str]) -> list[str]:
        """A block's values at once: unchanged when each has a Z (or is empty); when none
        has an offset, each takes its day's offset (C loops, once every day is known and
        none changes its offset); otherwise one by one."""
        n = len(values)
        joined = "\x1f".join(values) + "\x1f"
        empty = values.count("")
        if joined.count("Z\x1f") + empty == n:
            return list(values)
        if "Z" not in joined and "+" not in joined and \
                joined.count("-") == 2 * (n - empty):  # only dates' dashes: no offset at all
            days = self.days
            suffixes = list(map(days.get, map(_DAY, values)))
            if None in suffixes:  # days not seen yet: learn them, then again
                for value, suffix in zip(values, suffixes, strict=True):
                    if suffix is None and value[:10] not in days:
                        self(value)
                suffixes = list(map(days.get, map(_DAY, values)))
                if None in suffixes:
                    suffixes = [s or "" for s in suffixes]  # fixed below
            out = list(map(operator.add, values, suffixes))
            if "" in suffixes:  # a day whose offset changes (or not a date): one by one
                for i in [i for i, s in enumerate(suffixes) if not s]:
                    out[i] = self(values[i])
            return out
        return [self(v) for v in values]

    def __call__(self, value: str) -> str:
        m = _TIMESTAMP_RX.fullmatch(value)
        if m is None or m["tz"]:
            return value
        day = value[:10]
        suffix = self.days.get(day, "")
        if suffix:
            return value + suffix
        try:
            y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
            if suffix == "":  # not seen yet
                first, last = (self._offset(datetime(y, mo, d, h, tzinfo=self.zone))
                               for h in (0, 23))
                self.days[day] = first if first == last else None
            return value + self._offset(datetime(y, mo, d, int(m["H"]), int(m["M"]),
                                                 tzinfo=self.zone))
        except ValueError:
            return value  # an impossible date: the check says why

    @staticmethod
    def _offset(local: datetime) -> str:
        off = int(local.utcoffset().total_seconds()) // 60
        return f"{'-' if off < 0 else '+'}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
