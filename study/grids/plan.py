"""`plan_grid(path, profile=None) -> Plan`: every job of a grid, its dependencies, counts and cost estimate.

`Plan.check` runs the pre-run checks (study.grids.checks) and `Plan.manifests` gives the command that makes each
manifest the jobs read (study.grids.manifest_commands); `plan_grid` itself reads no manifest, and of the
registries only those that spell the grid's own values (corruptions, dataset readers): methods and backbones are
`Plan.check`'s.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from study.grids.checks import check_plan
from study.grids.cost import estimate
from study.grids.expand import expand_points
from study.grids.jobs import Job, build_jobs
from study.grids.manifest_commands import manifest_commands
from study.grids.profile import Profile, load_profile
from study.grids.schema import Grid, load_grid


@dataclass
class Plan:
    """A planned grid: `jobs` in topological order (pretraining before the evaluations that need it)."""

    name: str
    path: str
    grid: Grid
    profile: Profile
    jobs: list[Job]
    counts: dict[str, Any] = field(default_factory=dict)
    estimate: dict[str, Any] = field(default_factory=dict)
    # a plan reduced to some jobs (study.grids.where): every job of the grid, where `job()` looks dependencies up
    whole: list[Job] | None = field(default=None, repr=False, compare=False)

    _by_id: dict[str, Job] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        """One line (a notebook shows it), not every job's config: `plan.jobs`, `plan.grid` hold those."""
        stages = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in ("pretrain", "evaluate"))
        return f"Plan({self.name!r}, {self.path!r}, {len(self.jobs)} jobs: {stages}; profile {self.profile.name!r})"

    @property
    def grid_jobs(self) -> list[Job]:
        """Every job of the grid: `jobs`, or `whole` in a reduced plan."""
        return self.jobs if self.whole is None else self.whole

    @property
    def encoders(self) -> dict[str, Job]:
        """The grid's pretraining jobs by id (the whole grid's in a reduced plan): the encoders evaluations name."""
        return {j.id: j for j in self.grid_jobs if j.stage == "pretrain"}

    def job(self, job_id: str) -> Job:
        """The job of id `job_id` (the first, were one listed twice), of the whole grid in a reduced plan; KeyError
        for none. Indexed on first use and again on a miss, so that asking of every job is linear in the plan, not
        quadratic."""
        if job_id not in self._by_id:
            self._by_id = {}
            for j in self.grid_jobs:
                self._by_id.setdefault(j.id, j)
        return self._by_id[job_id]

    def by_stage(self, stage: str) -> list[Job]:
        return [j for j in self.jobs if j.stage == stage]

    def manifests(self) -> dict[str, str]:
        """Every manifest name the jobs read -> the `study manifest ...` command that builds it; in a reduced plan,
        the whole grid's command (a manifest's sizes and taxonomy are part of its content hash: built for the jobs
        selected alone, the rest of the grid would rebuild it under the same name and stale their results)."""
        commands = manifest_commands(self)
        if self.whole is None:
            return commands
        whole = manifest_commands(replace(self, jobs=self.whole, whole=None))
        return {name: whole[name] for name in commands}

    def check(self, manifests: bool = True, images_here: bool = False, todo: Collection[str] | None = None
              ) -> list[str]:
        """Raise one StudyError listing every problem found before anything runs; return the warnings
        (study.grids.checks.check_plan, which says what it checks)."""
        return check_plan(self, manifests, images_here, todo)


def plan_grid(path: str | Path, profile: str | Path | Profile | None = None) -> Plan:
    """Load, validate and expand the grid in `path` (no check of manifests, methods or backbones: see
    `Plan.check`)."""
    grid = load_grid(path)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    points = expand_points(grid)
    jobs = build_jobs(grid, points, prof)
    plan = Plan(name=grid.name, path=str(path), grid=grid, profile=prof, jobs=jobs)
    plan.counts = counts(jobs)
    plan.estimate = estimate(jobs, grid, prof)
    return plan


def counts(jobs: list[Job]) -> dict[str, Any]:
    """Jobs per stage, their total, and evaluations per protocol (`evaluate_by_protocol`)."""
    out: dict[str, Any] = {"pretrain": 0, "evaluate": 0}
    by_protocol: dict[str, int] = {}
    for j in jobs:
        out[j.stage] = out.get(j.stage, 0) + 1
        if j.stage == "evaluate":
            p = j.axes["protocol"]
            by_protocol[p] = by_protocol.get(p, 0) + 1
    out["total"] = len(jobs)
    out["evaluate_by_protocol"] = by_protocol
    return out
