"""Spellings of durations (`72h`, `1-12:00:00`) and memory (`64G`) in grids and profiles (counts: study.counts)."""
from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_CLOCK = re.compile(r"^\s*(?:(\d+)-)?(\d+):(\d+)(?::(\d+))?\s*$")


def parse_minutes(v: Any) -> int:
    """A time limit in minutes from `90` (minutes), `"30m"`, `"72h"`, `"2d"`, `"HH:MM[:SS]"` or `"D-HH:MM[:SS]"`."""
    if isinstance(v, bool):
        raise ValueError(f"expected a duration such as 90, 30m, 72h, 2d or 12:00:00, got {v!r}")
    if isinstance(v, (int, float)) and v > 0:
        return max(1, round(v))
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m:
            n = float(m.group(1))
            minutes = {"s": n / 60, "m": n, "min": n, "h": n * 60, "d": n * 1440}[m.group(2)]
            if minutes > 0:
                return max(1, round(minutes))
        m = _CLOCK.match(v)
        if m:
            days, hours, mins, secs = (int(x) if x else 0 for x in m.groups())
            minutes = days * 1440 + hours * 60 + mins + (1 if secs else 0)
            if minutes > 0:
                return minutes
    raise ValueError(f"expected a duration such as 90, 30m, 72h, 2d or 12:00:00, got {v!r}")


_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*$")


def parse_mem_gb(v: Any) -> float:
    """Memory in GB from `64` (GB), `"64G"`, `"500M"`, `"1T"`."""
    if isinstance(v, bool):
        raise ValueError(f"expected memory such as 64G or 500M, got {v!r}")
    if isinstance(v, (int, float)) and v > 0:
        return float(v)
    if isinstance(v, str):
        m = _MEM.match(v)
        if m and float(m.group(1)) > 0:
            scale = {"": 1.0, "k": 1 / 1024**2, "m": 1 / 1024, "g": 1.0, "t": 1024.0}[m.group(2).lower()]
            return float(m.group(1)) * scale
    raise ValueError(f"expected memory such as 64G or 500M, got {v!r}")
