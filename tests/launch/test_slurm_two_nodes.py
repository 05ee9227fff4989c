"""Integration tests on a real two-node Slurm cluster on localhost (scripts/slurm_two_nodes.sh: nodes n1 and n2, two
slurmd of one CPU each, beside test_slurm.py's single-node cluster, without accounting): a pretraining job asking
`nodes: 2` runs one torch.distributed rank on each node (their names do not resolve: rank 0's address is its
NodeAddr), and one requeued by USR2 mid-run resumes from its checkpoint to the same result."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from study.grids import plan_grid
from study.launch.traces import requeue_history
from study.results import read_result

from launch_helpers import (PROFILE, REPO, all_results, grid_text, metrics, queued, start_cluster, status, submit,
                            task_log, wait_until)

pytestmark = pytest.mark.slurm
STEPS = 100  # long enough to be interrupted mid-run; a checkpoint at every step
TWO_NODES = "{gpus: 0, cpus: 1, nodes: 2}"


@pytest.fixture(scope="module")
def two_nodes():
    """The cluster's slurm.conf (started anew: no job of an earlier run on it), stopped after the module."""
    conf = start_cluster("slurm_two_nodes.sh").strip().splitlines()[-1]
    yield Path(conf)
    subprocess.run(["bash", str(REPO / "scripts" / "slurm_two_nodes.sh"), "stop"], capture_output=True, timeout=120)


@pytest.fixture
def on_two_nodes(two_nodes, env, monkeypatch):
    """The test's folder (conftest's `env`), every Slurm command of the test (and its jobs) on the two-node one."""
    monkeypatch.setenv("SLURM_CONF", str(two_nodes))
    return env


def run_grid(env: Path, name: str) -> tuple[Path, Path, object]:
    grid = env / f"{name}.yaml"
    grid.write_text(grid_text(name, steps=STEPS, pretrain_resources=TWO_NODES))
    return grid, env / "wd", plan_grid(grid)


@pytest.fixture(scope="module")
def reference(two_nodes, manifests, tmp_path_factory):
    """The two-node grid (one pretraining job on both nodes, its probe) run to the end, uninterrupted."""
    env = tmp_path_factory.mktemp("two_nodes_ref")
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_MANIFESTS", str(manifests))
    mp.setenv("SLURM_CONF", str(two_nodes))
    try:
        (env / "profile.yaml").write_text(PROFILE)
        grid, wd, plan = run_grid(env, "twonodes")
        err = submit(grid, wd)
        wait_until(all_results(plan, wd), 150, "every result of the two-node grid", grid, wd)
        ids = {e["job"]: e["slurm_job_id"] for e in queued(wd, "twonodes")}
        pre = next(j for j in plan.jobs if j.stage == "pretrain")
        job = subprocess.run(["scontrol", "show", "job", "-o", ids[pre.id]], capture_output=True, text=True).stdout
        yield {"plan": plan, "wd": wd, "err": err, "ids": ids, "scontrol": job}
    finally:
        mp.undo()


def test_a_pretraining_job_of_two_nodes_runs_one_rank_on_each_node_and_its_probe_after_it(reference):
    plan, wd, ids = reference["plan"], reference["wd"], reference["ids"]
    assert "queued 2 job(s) in 2 array(s)" in reference["err"], reference["err"]
    pre, probe = (next(j for j in plan.jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    p = read_result(wd / "results" / f"{pre.id}.json")["protocol"]
    assert (p["devices"], p["per_device_batch"], p["effective_batch"]) == (2, 4, 8), p  # one model, two ranks
    assert p["resumed_from_steps"] == []
    assert re.search(r"\bNodeList=n\[1-2\]\s", reference["scontrol"]), reference["scontrol"]  # Slurm gave it both
    for task in (0, 1):  # each rank ran on its own node: submitit's JobEnvironment line, SLURM_NODEID = rank here
        log = task_log(wd, ids[pre.id], task, "out").read_text()
        assert f"node={task}(2), global_rank={task}(2)" in log, log
    assert read_result(wd / "results" / f"{probe.id}.json")["metrics"]  # the probe read the two-node encoder


def test_a_two_node_job_requeued_by_usr2_resumes_from_its_checkpoint_to_the_uninterrupted_result(reference,
                                                                                                on_two_nodes):
    grid, wd, plan = run_grid(on_two_nodes, "twonodes")
    submit(grid, wd)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    sid = {e["job"]: e["slurm_job_id"] for e in queued(wd, "twonodes")}[pre.id]
    wait_until(lambda: (wd / "jobs" / pre.id / "checkpoint.pt").exists(), 120, "the first checkpoint", grid, wd,
               poll=0.05)
    subprocess.run(["scancel", "--signal=USR2", sid], check=True)  # submitit's timeout/preemption path
    wait_until(all_results(plan, wd), 150, "every result after the requeue", grid, wd)
    resumed = read_result(wd / "results" / f"{pre.id}.json")["protocol"]["resumed_from_steps"]
    assert resumed and 0 < resumed[0] < STEPS, resumed  # resumed mid-run from a checkpoint
    log = task_log(wd, sid)
    assert "SIGUSR2" in log.read_text()  # went through submitit's handler, which requeued it
    seen = requeue_history(log)
    assert seen.requeued >= 1 and [s for s, _ in seen.resumed] == resumed, (seen, resumed)
    again = task_log(wd, sid, 1, "out").read_text().count("node=1(2), global_rank=1(2)")
    assert again >= 2  # on both nodes again once requeued
    for job in plan.jobs:  # the same metrics as the uninterrupted run, bit for bit
        assert metrics(wd, job.id) == metrics(reference["wd"], job.id), job.id


# run by rank 1 alone in place of submitit's entry point: its node fails to read an image at its third step, while
# rank 0 waits for it in the step's all-reduce
RANK_1_FAILS = """\
import runpy, sys
import study.train.loop as loop
real, steps = loop.train_step, []
def train_step(*args, **kwargs):
    steps.append(1)
    if len(steps) == 3:
        raise OSError("[Errno 5] Input/output error: 'train/00042.png' (rank 1's node)")
    return real(*args, **kwargs)
loop.train_step = train_step
sys.argv = ["submitit.core._submit", sys.argv[-1]]
runpy.run_module("submitit.core._submit", run_name="__main__", alter_sys=True)
"""


def test_status_shows_the_log_of_the_rank_that_failed_not_rank_0_s_lost_peer(on_two_nodes):
    """Rank 1 raises mid-run; rank 0, in a collective with it, then raises gloo's "Connection closed by peer" (its log
    too ends in a traceback). `study status` showed rank 0's log and that traceback, the consequence, as the job's
    error; it shows rank 1's log and its error."""
    env = on_two_nodes
    (env / "rank1.py").write_text(RANK_1_FAILS)
    python = env / "python.sh"  # the profile's `python`: rank 1 runs rank1.py, every other task as usual
    python.write_text(f'#!/bin/bash\n[ "$SLURM_PROCID" = 1 ] && exec {sys.executable} -u {env / "rank1.py"} '
                      f'"${{@: -1}}"\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (env / "profile.yaml").write_text(PROFILE + f"python: {python}\n")
    grid, wd, plan = run_grid(env, "rankfails")
    submit(grid, wd)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    sid = {e["job"]: e["slurm_job_id"] for e in queued(wd, "rankfails")}[pre.id]
    wait_until(lambda: f"failed pretrain {pre.id}" in status(grid, wd), 120, "the pretraining job to fail", grid, wd)
    assert "Traceback (most recent call last)" in task_log(wd, sid, 0).read_text()  # rank 0 raised too, after rank 1
    shown = status(grid, wd).split(f"failed pretrain {pre.id}")[1].split("\n\n")[0]
    assert f"log: {task_log(wd, sid, 1)}" in shown, shown
    assert "OSError: [Errno 5] Input/output error: 'train/00042.png'" in shown, shown
    assert "[rank0]" not in shown, shown
