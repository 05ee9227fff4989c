"""What a `study submit` queues: missing jobs, plus failed and cancelled ones with `--retry-failed`; never a
done or live (pending/running) job; never a job whose dependency failed and is not retried (blocked)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from study.launch.state import LIVE, JobState, blocked


@dataclass
class Selection:
    to_run: list[Any]  # jobs, topological order
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> job ids

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in self.skipped.items() if v]
        return ", ".join(parts) if parts else "nothing"


def select(jobs: list[Any], states: dict[str, JobState], retry_failed: bool) -> Selection:
    wanted = {"missing"} | ({"failed", "cancelled"} if retry_failed else set())
    candidates = {j.id for j in jobs if states[j.id].state in wanted}
    stuck = blocked(jobs, candidates, states)
    sel = Selection(to_run=[j for j in jobs if j.id in candidates and j.id not in stuck])
    skipped: dict[str, list[str]] = {"done": [], "pending or running": [], "failed (rerun with --retry-failed)": [],
                                     "cancelled (rerun with --retry-failed)": [], "blocked by a failed dependency": []}
    for j in jobs:
        st = states[j.id].state
        if j.id in candidates and j.id in stuck:
            skipped["blocked by a failed dependency"].append(j.id)
        elif j.id in candidates:
            continue
        elif st == "done":
            skipped["done"].append(j.id)
        elif st in LIVE:
            skipped["pending or running"].append(j.id)
        elif st == "failed":
            skipped["failed (rerun with --retry-failed)"].append(j.id)
        elif st == "cancelled":
            skipped["cancelled (rerun with --retry-failed)"].append(j.id)
    sel.skipped = skipped
    return sel
