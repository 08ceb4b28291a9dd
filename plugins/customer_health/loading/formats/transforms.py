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

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Transform:
    read: Callable[[Sequence[str], dict], str]
    write: Callable[[str, dict], tuple[str, ...]]
    # optional, for a transform of one column: a block's values at once (speed only: it
    # must give what `read` gives; a ValueError sends the block row by row)
    column: Callable[[Sequence[str], dict], Sequence[str]] | None = None


TRANSFORMS: dict[str, Transform] = {}


def register(name: str, read: Callable[[Sequence[str], dict], str],
             write: Callable[[str, dict], tuple[str, ...]],
             column: Callable[[Sequence[str], dict], Sequence[str]] | None = None) -> None:
    TRANSFORMS[name] = Transform(read, write, column)


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
