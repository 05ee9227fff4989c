"""Launch-side costs that grow with the grid: the plan's checks, and reading the states of failed Slurm arrays.

1. `Plan.check(manifests=False)` on plan_bench's grid at 10 and 50 seeds (10,000 and 50,000 jobs), against
   `plan_grid` of the same grid (the reference: linear in the jobs). Printed: seconds, the ratio check / plan at
   each size and how the check's time per job grows from the small grid to the large one (1.0: linear).
2. `study.launch.slurm.state.query` for ARRAYS arrays of 500 tasks, every task FAILED (sacct stubbed; this host
   has no Slurm), each array's submitit folder holding its tasks' four files (log.err, log.out, submitted and
   result pickles); reference: listing each array folder once and reading each failed task's log tail, which any
   answer needs. Printed: seconds and the ratio to the reference.

    .venv/bin/python benchmarks/launch_bench.py [--quick]   # --quick: 2 and 10 seeds, 4 arrays
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from plan_bench import GRID  # benchmarks/: the folder of the script run

TASKS = 500


def _timed(what):
    t0 = time.perf_counter()
    out = what()
    return out, time.perf_counter() - t0


def bench_check(seeds: list[int], folder: Path) -> None:
    from study.grids import plan_grid

    import study.train.methods  # noqa: F401  (torch and the method registry, imported once by any check)

    per_job = []
    for n in [1] + seeds:  # one seed first, untimed: the imports a first check makes
        path = folder / f"bench{n}.yaml"
        path.write_text(GRID.replace("seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", f"seeds: {list(range(n))}"))
        plan_grid(path)  # warm imports and caches
        plan, t_plan = _timed(lambda: plan_grid(path))
        _, t_check = _timed(lambda: plan.check(manifests=False))
        if n == 1:
            continue
        per_job.append(t_check / len(plan.jobs))
        print(f"jobs: {len(plan.jobs)}  plan_grid (reference): {t_plan:.2f} s  check (no manifests): {t_check:.2f} s"
              f"  ratio_to_reference: {t_check / t_plan:.2f}")
    print(f"check time per job, {seeds[-1]} seeds over {seeds[0]}: {per_job[-1] / per_job[0]:.2f} (1.0: linear)")


def bench_query(arrays: int, folder: Path) -> None:
    import study.launch.slurm.state as slurm_state

    folders, logs = {}, []
    for a in range(arrays):
        sub = folder / "submitit" / f"study-bench-pretrain-{a}"
        sub.mkdir(parents=True)
        for t in range(TASKS):
            sid = f"{1000 + a}_{t}"
            folders[sid] = str(sub)
            for name in (f"{sid}_0_log.err", f"{sid}_0_log.out", f"{sid}_submitted.pkl", f"{sid}_0_result.pkl"):
                (sub / name).write_text("[train] step 10\nsrun: forcing job termination\n" if "err" in name else "")
            logs.append(sub / f"{sid}_0_log.err")
    slurm_state._sacct = lambda ids: {sid: {"State": "FAILED"} for sid in ids}  # no Slurm here

    def reference() -> None:
        for sub in {Path(f) for f in folders.values()}:
            os.listdir(sub)
        for log in logs:
            with open(log, "rb") as f:
                f.read()

    reference()  # warm the page cache for both
    _, t_ref = _timed(reference)
    answer, t_query = _timed(lambda: slurm_state.query(folder, folders))
    assert len(answer.logs) == len(folders)
    print(f"failed Slurm jobs: {len(folders)} in {arrays} arrays  listing + log tails (reference): {t_ref:.2f} s  "
          f"query: {t_query:.2f} s  ratio_to_reference: {t_query / t_ref:.1f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 and 10 seeds (2,000 and 10,000 jobs), 4 arrays")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        os.environ["STUDY_MANIFESTS"] = str(Path(d) / "manifests")
        bench_check([2, 10] if args.quick else [10, 50], Path(d))
        bench_query(4 if args.quick else 20, Path(d))


if __name__ == "__main__":
    sys.exit(main())
