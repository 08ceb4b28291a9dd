"""Named transforms: the few mappings that are not a rename, a value map or a lookup.

A declaration names one with `{ transform = "<name>", from = [<native columns>], ...}`;
`read` gets the row's values of those columns (in that order) and the rule's other keys
(plus `export_date`, the night's date), returns the contract value, and raises
ValueError with a reason for a value it cannot use. `write` is its inverse for the
sample-data generator: the contract value to the native values (its params hold the
whole contract row as `row`, for a value computed from several columns). Vendor logic that does
not fit the declaration's plain forms lives here, named, one function each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


@dataclass(frozen=True)
class Transform:
    read: Callable[[Sequence[str], dict], str]
    write: Callable[[str, dict], tuple[str, ...]]
    # optional, for a transform of one column: a block's values at once (speed only: it
    # must give what `read` gives; a ValueError sends the block row by row)
    column: Callable[[Sequence[str], dict], Sequence[str]] | None = None
    # optional, the same for a transform of several columns: gets the block's columns
    columns: Callable[[Sequence[Sequence[str]], dict], Sequence[str]] | None = None


TRANSFORMS: dict[str, Transform] = {}


def register(name: str, read: Callable[[Sequence[str], dict], str],
             write: Callable[[str, dict], tuple[str, ...]],
             column: Callable[[Sequence[str], dict], Sequence[str]] | None = None,
             columns: Callable[[Sequence[Sequence[str]], dict], Sequence[str]] | None = None
             ) -> None:
    TRANSFORMS[name] = Transform(read, write, column, columns)


def _join_read(values: Sequence[str], params: dict) -> str:
    return str(params.get("separator", " ")).join(v for v in values if v)


def _join_write(value: str, params: dict) -> tuple[str, ...]:
    first, _, rest = value.partition(str(params.get("separator", " ")))
    return first, rest


# A person's name from its parts (FirstName, LastName): the parts that are not empty,
# joined by a space. The generator splits at the first space.
register("join", _join_read, _join_write)


def _first_id_read(values: Sequence[str], params: dict) -> str:
    (ids,) = values
    return ids.split(str(params.get("separator", ";")), 1)[0].strip()


def _first_id_write(value: str, params: dict) -> tuple[str, ...]:
    return (value,)


def _first_id_column(values: Sequence[str], params: dict) -> Sequence[str]:
    text = "".join(values)
    if str(params.get("separator", ";")) in text or text != text.strip() or " " in text:
        return [_first_id_read((v,), params) for v in values]
    return values  # one id each, nothing to strip


# An association column that lists several record ids (`123;456`): the first one, the
# primary association in HubSpot's exports.
register("first_id", _first_id_read, _first_id_write, _first_id_column)


def _upper_read(values: Sequence[str], params: dict) -> str:
    (value,) = values
    return value.strip().upper()


def _upper_write(value: str, params: dict) -> tuple[str, ...]:
    return (value.lower(),)


def _upper_column(values: Sequence[str], params: dict) -> Sequence[str]:
    joined = "\x1f".join(values)
    if not any(c in joined for c in " \t\r\n\v\f"):  # nothing to strip: all in C
        upper = joined.upper().split("\x1f")
        if len(upper) == len(values):
            return upper
    return [v.strip().upper() for v in values]


# A currency code written in lower case (Stripe's `usd`): ISO 4217's upper case.
register("upper", _upper_read, _upper_write, _upper_column)


def _first_filled_read(values: Sequence[str], params: dict) -> str:
    return next((v for v in values if v), "")


def _first_filled_columns(columns: Sequence[Sequence[str]], params: dict) -> Sequence[str]:
    if "" not in columns[0]:
        return columns[0]
    return [next((v for v in row if v), "") for row in zip(*columns, strict=True)]


def _first_filled_write(value: str, params: dict) -> tuple[str, ...]:
    return (value,)  # the first column only: the others are written by their own rules


# The first of several columns that is not empty: Stripe leaves an invoice's `Due Date`
# empty when it is charged automatically (due when issued), so `Date (UTC)` stands in.
register("first_filled", _first_filled_read, _first_filled_write,
         columns=_first_filled_columns)


def _utc_date_read(values: Sequence[str], params: dict) -> str:
    (value,) = values
    text = value.strip()
    if not text:
        return ""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date and time") from None
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.date().isoformat()


# values that are a date, or a date and a valid time without an offset (UTC), joined by \x1f
_NAIVE = r"(?:\d{4}-\d\d-\d\d(?:[ T](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?)?)?"
_NAIVE_TIMES = re.compile(_NAIVE + r"(?:\x1f" + _NAIVE + ")*")


def _utc_date_column(values: Sequence[str], params: dict) -> Sequence[str]:
    if not _NAIVE_TIMES.fullmatch("\x1f".join(values)):
        return [_utc_date_read((v,), params) for v in values]
    # a bad date (2026-13-01) fails the column's date check: the row path gives the reason
    return [v[:10] for v in values]


def _utc_date_write(value: str, params: dict) -> tuple[str, ...]:
    return (f"{value} 00:00:00" if value else "",)


# A date and time written as UTC (Stripe's `Current Period End (UTC)`) where the contract
# wants the date (`current_term_end`).
register("utc_date", _utc_date_read, _utc_date_write, _utc_date_column)

_MONTHS_PER = {"day": Decimal(12) / Decimal(365), "week": Decimal(12) / Decimal(52),
               "month": Decimal(1), "year": Decimal(12)}
_CENT = Decimal("0.01")


def _decimal(text: str, what: str, separator: str) -> Decimal:
    try:
        return Decimal(text.replace(separator, "") if separator else text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a number") from None


def _stripe_mrr_read(values: Sequence[str], params: dict) -> str:
    """Monthly recurring revenue of a Stripe subscription: the price's amount per unit
    and interval, times the quantity, over the interval's length in months."""
    amount, quantity, interval, count = (v.strip() for v in values)
    separator = str(params.get("thousands_separator", ","))
    per = _MONTHS_PER.get(interval.lower())
    if per is None:
        raise ValueError(f"interval {interval!r} is not one of {', '.join(_MONTHS_PER)}")
    months = per * _decimal(count or "1", "interval count", separator)
    if months <= 0:
        raise ValueError(f"interval count {count!r} is not positive")
    total = _decimal(amount, "amount", separator) * _decimal(quantity or "1", "quantity",
                                                             separator)
    return str((total / months).quantize(_CENT, ROUND_HALF_UP))


def _stripe_mrr_write(value: str, params: dict) -> tuple[str, ...]:
    row = params["row"]
    quantity = int(row["quantity"])
    interval = row["billing_interval"]
    amount = Decimal(value) * _MONTHS_PER[interval] / quantity
    if amount != amount.quantize(_CENT):
        raise ValueError(f"MRR {value} of {quantity} units is no whole amount per unit")
    return f"{amount.quantize(_CENT):,}", str(quantity), interval, "1"


# Stripe's subscriptions export has no MRR: it is the amount per unit and interval
# (`Amount`, thousands separators allowed) x `Quantity` / the interval (`Interval`:
# day, week, month, year; `Interval Count`, empty: 1) in months, rounded to the cent.
register("stripe_mrr", _stripe_mrr_read, _stripe_mrr_write)
