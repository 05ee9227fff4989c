"""Counts of images as people write them (`50000`, `50k`, `1M`, `2.5k`, `1_000`) and their short spelling; one
grammar for grids, profiles and the manifest commands."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_COUNT = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")
_MULT = {"": 1, "k": 1_000, "m": 1_000_000}
EXAMPLES = "such as 50000, 50k or 1M"


def parse_count(v: Any, minimum: int = 0) -> int:
    """`50000`, `"50k"`, `"1.5M"`, `"2_500"` -> int >= `minimum`. ValueError otherwise (bools, negative numbers
    and counts that are not whole included); its message starts with "expected a count"."""
    value = None
    if isinstance(v, int) and not isinstance(v, bool):
        value = v
    elif isinstance(v, str):
        m = _COUNT.match(v.strip().replace("_", ""))
        if m:
            d = Decimal(m.group(1)) * _MULT[m.group(2).lower()]  # exact: "1.25M", and 20 digits, as written
            value = int(d) if d == d.to_integral_value() else None
    if value is None:
        whole = isinstance(v, float) and v.is_integer() and v >= 0  # `5e4` or `50000.0` in YAML: a float
        spellings = dict.fromkeys((str(int(v)), format_count(int(v)))) if whole else {}  # `500`: one spelling
        hint = f" (a float: write {' or '.join(spellings)})" if whole else ""
        raise ValueError(f"expected a count {EXAMPLES}, got {v!r}{hint}")
    if value < minimum:
        raise ValueError(f"expected a count >= {minimum}, got {v!r}")
    return value


def parse_labeled_size(v: Any) -> int | str:
    """A labeled size: `"all"` (every row of the train manifest), or a count >= 1 (`parse_count`). ValueError
    otherwise, its message ending "(or all)"."""
    if v == "all":
        return v
    try:
        return parse_count(v, minimum=1)
    except ValueError as e:
        raise ValueError(f"{e} (or all)") from None


def format_count(n: int | None) -> str:
    """The short spelling: 1000000 -> `1M`, 1250000 -> `1.25M`, 125000 -> `125k`, 7500 -> `7.5k`, 1234 -> `1234`,
    None -> `-`."""
    if n is None:
        return "-"
    if n >= 1_000_000 and n % 10_000 == 0:
        return _in_units(n, 1_000_000, "M")
    if n >= 1_000 and n % 100 == 0:
        return _in_units(n, 1_000, "k")
    return str(n)


def _in_units(n: int, unit: int, suffix: str) -> str:
    """`n` / `unit` written exactly (no float rounding at any size), then `suffix`: 1250000 -> `1.25M`."""
    whole, part = divmod(n, unit)
    decimals = f"{part:0{len(str(unit)) - 1}d}".rstrip("0")
    return f"{whole}.{decimals}{suffix}" if decimals else f"{whole}{suffix}"
