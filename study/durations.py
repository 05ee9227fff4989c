"""Durations as people read them in logs and status lines: `42 s`, `12 min`, `2.5 h`."""
from __future__ import annotations


def format_duration(seconds: float) -> str:
    """Seconds under 90 s, minutes under 90 min, else hours to a tenth."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_left(seconds: float) -> str:
    """A time still to go, as format_duration says it but at least `1 s` (not `0 s` while work remains)."""
    return format_duration(max(1.0, seconds))


def format_clock(seconds: float) -> str:
    """Elapsed time as a clock reads it: `0:07`, `12:34`, `1:02:03` (whole seconds, rounded down)."""
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def eta(remaining: int, done: int, elapsed_s: float) -> str:
    """`, eta 2.5 h`: the time `remaining` units take at this session's rate (`done` units in `elapsed_s`); empty
    before the first unit of the session or after the last one."""
    if done <= 0 or remaining <= 0:
        return ""
    return f", eta {format_left(remaining * elapsed_s / done)}"
