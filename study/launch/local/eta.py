"""The time a local run has left: the plan's cost model (study.grids.cost.job_hours), calibrated by the jobs this
run has finished (each by the seconds it took over every session: a resumed one's result's wall time).

Each stage's estimates are scaled by that stage's ratio of measured to estimated seconds over its finished jobs (a
stage none of whose jobs has finished yet: the ratio over all finished jobs). What is left is the larger of the
remaining work shared by the workers and the longest single job still to run or finish. Dependencies are not
followed: an evaluation that waits for one pretraining job can make the end later than said.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from study.grids.cost import job_hours

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan


@dataclass
class Eta:
    """Seconds left of a run whose jobs the plan's cost model estimates (`estimated`: job id -> seconds)."""

    estimated: dict[str, float]
    finished: dict[str, list[float]] = field(default_factory=dict)  # per stage: [estimated s, measured s]

    @classmethod
    def of_plan(cls, plan: Plan, jobs: list[Job]) -> Eta:
        """The estimates of `jobs` by `plan`'s cost model; none (so no time left said) for a plan without one: jobs
        given to run_local by a program, not expanded from a grid."""
        if getattr(plan, "grid", None) is None or getattr(plan, "profile", None) is None:
            return cls({})
        notes: set[str] = set()  # `study plan` said them
        pretrain = {j.id: j for j in plan.jobs if j.stage == "pretrain"}
        return cls({j.id: 3600 * job_hours(j, plan.grid, plan.profile.cost, notes, pretrain) for j in jobs})

    def finish(self, job: Job, seconds: float) -> None:
        """Record that `job` (run here) took `seconds`."""
        est = self.estimated.get(job.id)
        if est is not None:
            pair = self.finished.setdefault(job.stage, [0.0, 0.0])
            pair[0] += est
            pair[1] += seconds

    def ratio(self, stage: str) -> float | None:
        """Measured over estimated seconds of `stage`'s finished jobs, else of all finished jobs; None before one."""
        est, took = self.finished.get(stage) or [sum(p[i] for p in self.finished.values()) for i in (0, 1)]
        return took / est if est > 0 else None

    def left(self, todo: list[Job], running: list[tuple[Job, float]], workers: int) -> float | None:
        """Seconds until the jobs `todo` and `running` ((job, seconds it has run)) end on `workers` workers; None
        before the first finished job calibrates the estimates."""
        if not self.finished:
            return None
        parts = []
        for job, elapsed in [(j, 0.0) for j in todo] + list(running):
            ratio = self.ratio(job.stage)
            if ratio is None or job.id not in self.estimated:
                return None
            parts.append(max(0.0, ratio * self.estimated[job.id] - elapsed))
        return max([sum(parts) / max(1, workers), *parts]) if parts else 0.0
