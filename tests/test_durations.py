"""Durations in logs and status lines."""
from __future__ import annotations

from study.durations import eta, format_clock, format_duration


def test_format_duration_switches_units_at_90_seconds_and_90_minutes():
    assert [format_duration(s) for s in (0, 89, 90, 5399, 5400, 9000)] == \
        ["0 s", "89 s", "2 min", "90 min", "1.5 h", "2.5 h"]


def test_eta_is_the_remaining_units_at_this_sessions_rate():
    assert eta(remaining=30, done=10, elapsed_s=60) == ", eta 3 min"  # 6 s per unit
    assert eta(remaining=1000, done=10, elapsed_s=60) == ", eta 1.7 h"
    assert eta(remaining=5, done=0, elapsed_s=0) == ""  # no rate yet
    assert eta(remaining=0, done=10, elapsed_s=60) == ""  # done
    assert eta(remaining=1, done=1000, elapsed_s=100) == ", eta 1 s"  # 0.1 s: not "eta 0 s" while one remains


def test_format_clock_reads_minutes_and_seconds_then_hours():
    assert [format_clock(s) for s in (0, 7.9, 65, 3599.5, 3600, 3723, -1)] == ["0:00", "0:07", "1:05", "59:59",
                                                                                "1:00:00", "1:02:03", "0:00"]
