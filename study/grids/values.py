"""Spellings of durations (`72h`, `1-12:00:00`) and memory (`64G`) in grids and profiles (counts: study.counts)."""
from __future__ import annotations

import math
import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
# Slurm's --time grammar: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_CLOCK = re.compile(r"^\s*(?:(?P<d>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
                    r"|(?P<h>\d+):(?P<hm>\d+):(?P<hs>\d+)|(?P<m>\d+):(?P<ms>\d+)|(?P<only>\d+))\s*$")
_EXPECTED = "a duration such as 90 (minutes), 30m, 72h, 2d, 30:00 (M:S), 12:00:00 (H:M:S) or 1-12:00:00"


def parse_minutes(v: Any) -> int:
    """A time limit in whole minutes (seconds round up) from `90` (minutes), `"30m"`, `"72h"`, `"2d"`, or Slurm's
    spellings: `"M"`, `"M:S"`, `"H:M:S"`, `"D-H"`, `"D-H:M"`, `"D-H:M:S"`."""
    if isinstance(v, bool):
        raise ValueError(f"expected {_EXPECTED}, got {v!r}")
    if isinstance(v, (int, float)) and 0 < v < math.inf:
        return _whole_minutes(v)
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m:
            n = float(m.group(1))
            minutes = {"s": n / 60, "m": n, "min": n, "h": n * 60, "d": n * 1440}[m.group(2)]
            if minutes > 0:
                return _whole_minutes(minutes)
        m = _CLOCK.match(v)
        if m:
            g = {k: int(x) if x else 0 for k, x in m.groupdict().items()}
            seconds = (g["d"] * 86400 + g["dh"] * 3600 + g["dm"] * 60 + g["ds"] + g["h"] * 3600 + g["hm"] * 60
                       + g["hs"] + g["m"] * 60 + g["ms"] + g["only"] * 60)
            if seconds > 0:
                return _whole_minutes(seconds / 60)
    raise ValueError(f"expected {_EXPECTED}, got {v!r}")


def _whole_minutes(minutes: float) -> int:
    """Rounded up, in every spelling (never under the limit asked for); the float noise of `0.1h`
    (6.000000000000001) is not a minute more."""
    return max(1, math.ceil(round(minutes, 6)))


_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*$")


def parse_mem_gb(v: Any) -> float:
    """Memory in GB from `64` (GB), `"64G"`, `"500M"`, `"1T"`; at least 1 MB (sbatch's unit: `--mem=0` would ask
    for all of a node's memory)."""
    if isinstance(v, bool):
        raise ValueError(f"expected memory such as 64G or 500M, got {v!r}")
    gb = None
    if isinstance(v, (int, float)) and 0 < v < math.inf:
        gb = float(v)
    elif isinstance(v, str):
        m = _MEM.match(v)
        if m and float(m.group(1)) > 0:
            scale = {"": 1.0, "k": 1 / 1024**2, "m": 1 / 1024, "g": 1.0, "t": 1024.0}[m.group(2).lower()]
            gb = float(m.group(1)) * scale
    if gb is None:
        raise ValueError(f"expected memory such as 64G or 500M, got {v!r}")
    if gb < 1 / 1024:
        raise ValueError(f"{v!r} is under 1M, the smallest memory sbatch can be asked for")
    return gb
