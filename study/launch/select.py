"""What a `study submit` queues: missing jobs, plus failed and cancelled ones with `--retry-failed`; never a
done or live (pending/running) job, nor one whose result a newer version of study wrote (nor its dependents); never
a job whose dependency failed and is not retried (blocked). With `--only` (and `--where`: the jobs it selects), only
the jobs named, whose dependencies must be done, live, or named too."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from study.errors import StudyError
from study.launch.state import LIVE, JobState, behind_newer, blocked, state_of

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job


@dataclass
class Selection:
    to_run: list[Any]  # jobs, topological order
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> job ids

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in self.skipped.items() if v]
        return ", ".join(parts) if parts else "nothing"

    def left_unfinished(self) -> list[str]:
        """The jobs skipped that will not end without `--retry-failed`: failed, cancelled, or blocked by such a
        dependency (`done` and live ones are not, nor those of a newer study's result, which no retry here runs)."""
        return [j for reason, ids in self.skipped.items()
                if reason not in ("done", "pending or running", NEWER, BEHIND_NEWER) for j in ids]


def only_names(values: Iterable[str]) -> list[str]:
    """The names in `--only` values, each a comma-separated list (`a1b2,ff00`; a stray comma adds none); a
    StudyError for a value that names no job."""
    names = []
    for value in values:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts:
            raise StudyError(f"--only {value!r}: names no job: give ids (or unique prefixes) as `study plan` prints "
                             "them, comma-separated")
        names += parts
    return names


def resolve_ids(jobs: list[Job], given: Iterable[str], grid: str) -> set[str]:
    """The ids of `jobs` that `given` names, each a whole id or a prefix of exactly one (as `study plan` prints
    them); a StudyError for a name that matches none or several."""
    ids = [j.id for j in jobs]
    out: set[str] = set()
    for name in given:
        matches = [i for i in ids if i.startswith(name)] if name else []
        if len(matches) != 1:
            found = f"{len(matches)}: {', '.join(matches[:5])}{' ...' * (len(matches) > 5)}" if matches else "none"
            raise StudyError(f"--only {name!r}: expected the id (or an id's unique prefix) of one job of {grid}, "
                             f"matched {found} (`study plan {shlex.quote(str(grid))}` lists them)")
        out.add(matches[0])
    return out


NEWER = "written by a newer version of study (update this checkout)"  # never rerun: `JobState.newer`
BEHIND_NEWER = "blocked by a dependency a newer version of study ran (update this checkout)"  # no retry runs it


def select(jobs: list[Job], states: dict[str, JobState], retry_failed: bool,
           only: set[str] | None = None) -> Selection:
    wanted = {"missing"} | ({"failed", "cancelled"} if retry_failed else set())
    candidates = {j.id for j in jobs if states[j.id].state in wanted and not states[j.id].newer
                  and (only is None or j.id in only)}
    if only is not None:
        _refuse_unnamed_missing_dependencies(jobs, candidates, states)
    stuck = blocked(jobs, candidates, states)
    ended = {j.id for j in jobs if states[j.id].state in ("failed", "cancelled")}  # a retry of these would be stuck too
    behind = behind_newer(jobs, stuck | ended, states)
    sel = Selection(to_run=[j for j in jobs if j.id in candidates and j.id not in stuck])
    skipped: dict[str, list[str]] = {"done": [], "pending or running": [], "failed (rerun with --retry-failed)": [],
                                     "cancelled (rerun with --retry-failed)": [], "blocked by a failed dependency": []}
    for j in jobs:
        if only is not None and j.id not in only:
            continue
        st = states[j.id].state
        if j.id in candidates and j.id in behind:
            skipped.setdefault(BEHIND_NEWER, []).append(j.id)
        elif j.id in candidates and j.id in stuck:
            skipped["blocked by a failed dependency"].append(j.id)
        elif j.id in candidates:
            continue
        elif st == "done":
            skipped["done"].append(j.id)
        elif st in LIVE:
            skipped["pending or running"].append(j.id)
        elif states[j.id].newer:
            skipped.setdefault(NEWER, []).append(j.id)
        elif j.id in behind:
            skipped.setdefault(BEHIND_NEWER, []).append(j.id)
        elif st == "failed":
            skipped["failed (rerun with --retry-failed)"].append(j.id)
        elif st == "cancelled":
            skipped["cancelled (rerun with --retry-failed)"].append(j.id)
    sel.skipped = skipped
    return sel


def _refuse_unnamed_missing_dependencies(jobs: list[Job], candidates: set[str], states: dict[str, JobState]) -> None:
    """A StudyError naming each dependency of a job to run that has no result and is neither live nor named: nothing
    would ever run it (a failed one is the `blocked` case)."""
    waiting = [(j.id, d) for j in jobs if j.id in candidates for d in j.depends_on
               if d not in candidates and state_of(states, d) == "missing"]
    if waiting:
        raise StudyError("--only/--where: " + "; ".join(f"job {j} needs job {d}, which has no result"
                                                       for j, d in waiting[:5])
                         + (" ..." if len(waiting) > 5 else "") + ": name it too (in --only, or a wider --where), or "
                         "submit without them")
