"""Type checks of the contract's column types, in two forms that agree.

`fast_line_pattern` builds one regular expression that matches a whole physical
line of plain, valid records; the loader runs it over a block of lines at C speed
and passes what it matches to COPY unchanged. It is deliberately narrower than
the contract (e.g. 29 February, 10-digit ints, multi-line quoted fields fall
outside it): whatever it does not match goes through `check_value`, the exact
check that gives the per-field reason. What the fast pattern accepts, the exact
check accepts too, and PostgreSQL parses both the same way.

Only type and shape are checked here: enums and ranges are the quality suite's
job (Great Expectations validates the raw layer).
"""

from __future__ import annotations

import re
from datetime import date

from customer_health.contract import Column

INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# -- exact checks (one field at a time, with a reason) ---------------------------------

_DATE = r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
_TIME = r"(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?"
_OFFSET = r"(?P<tz>Z|[+-](?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?"
# re.ASCII: \d must not match other scripts' digits, which PostgreSQL refuses.
_TIMESTAMP_RX = re.compile(_DATE + "[T ]" + _TIME + _OFFSET, re.ASCII)
_DATE_RX = re.compile(_DATE, re.ASCII)
_INT_RX = re.compile(r"-?\d+", re.ASCII)
_NUMERIC_RX = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)

EXPECTED = {
    "int": "a whole number such as 42",
    "numeric": "a decimal number with '.' as separator and no thousands separator, e.g. 1234.50",
    "bool": "true or false",
    "date": "a date YYYY-MM-DD",
    "timestamp": "an ISO 8601 timestamp such as 2026-11-21T14:03:00Z or 2026-11-21T15:03:00+01:00",
}


def _valid_date(m: re.Match[str]) -> bool:
    try:
        date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return False
    return True


def _type_problem(type_: str, value: str) -> str | None:
    """None when `value` is a valid `type_`, else what is wrong (without the value)."""
    if type_ == "text":
        return None
    if type_ == "bool":
        return None if value in ("true", "false") else "not a boolean"
    if type_ == "int":
        if not _INT_RX.fullmatch(value):
            return "not a whole number"
        return None if INT_MIN <= int(value) <= INT_MAX else "out of the integer range"
    if type_ == "numeric":
        return None if _NUMERIC_RX.fullmatch(value) else "not a decimal number"
    if type_ == "date":
        m = _DATE_RX.fullmatch(value)
        return None if m and _valid_date(m) else "not a valid date"
    if type_ == "timestamp":
        m = _TIMESTAMP_RX.fullmatch(value)
        if not m or not _valid_date(m):
            return "not a valid timestamp"
        if int(m["H"]) > 23 or int(m["M"]) > 59 or int(m["S"] or 0) > 59:
            return "not a valid time of day"
        if m["oh"] and (int(m["oh"]) > 15 or int(m["om"] or 0) > 59):
            return "an impossible UTC offset"
        return None
    raise ValueError(f"unknown contract type {type_!r}")


def check_value(column: Column, value: str) -> str | None:
    """None when the field fits its column, else a reason a person can act on."""
    if value == "":
        return None if column.nullable else f"{column.name}: required value is empty"
    if "\x00" in value:
        return f"{column.name}: contains a NUL character"
    problem = _type_problem(column.type, value)
    if problem is None:
        return None
    shown = value if len(value) <= 60 else value[:57] + "..."
    return f"{column.name}: {shown!r} is {problem}: expected {EXPECTED[column.type]}"


# -- the fast pattern (a whole line of plain valid fields) -----------------------------

_FAST_DATE = (
    rb"(?!0000)\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])"
    rb"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_FAST_VALUE = {
    "int": rb"-?\d{1,9}",
    "numeric": rb"-?\d++(?:\.\d++)?+",
    "bool": rb"(?:true|false)",
    "date": _FAST_DATE,
    "timestamp": _FAST_DATE + rb"[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?+)?+"
    rb"(?:Z|[+-](?:0\d|1[0-5])(?::?[0-5]\d)?+)?+",
}
# Text: unquoted (no quote, comma, CR, LF or NUL) or quoted on one line ("" escapes).
# A quoted empty field ("") is left to the exact path, which writes it unquoted: COPY
# reads an unquoted empty field as NULL, the contract's empty value, without FORCE_NULL
# (which costs the server about 5% of a COPY).
_TEXT_REQUIRED = rb'(?:[^,"\r\n\x00]++|"(?:[^"\r\n\x00]++|"")++")'
_TEXT_OPTIONAL = rb'(?:[^,"\r\n\x00]++|"(?:[^"\r\n\x00]++|"")++")?+'
# A column of the file the contract does not know: any plain field.
_ANY_FIELD = _TEXT_OPTIONAL


def _fast_field(column: Column | None) -> bytes:
    if column is None:
        return _ANY_FIELD
    if column.type == "text":
        return _TEXT_OPTIONAL if column.nullable else _TEXT_REQUIRED
    value = _FAST_VALUE[column.type]
    if column.nullable:
        return rb'(?:' + value + rb'|"' + value + rb'")?+'
    return rb'(?:' + value + rb'|"' + value + rb'")'


def fast_block_pattern(columns: list[Column | None]) -> re.Pattern[bytes]:
    """Matches the longest run of plain valid lines (LF or CRLF ended) from a position."""
    line = b",".join(_fast_field(c) for c in columns)
    return re.compile(rb"(?:" + line + rb"\r?\n)*+")
