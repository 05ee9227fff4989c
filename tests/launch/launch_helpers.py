"""Helpers of the launcher tests: tiny real manifests over PNG files, tiny grids, the `study` commands of
study.launch (and the planner) run in-process as the front runs them."""
from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from image_trees import write_quadrant_tree

from study.errors import StudyError

REPO = Path(__file__).resolve().parents[2]


def fake_plan(name: str, jobs: list, snapshot_code: bool = False) -> Any:
    """What the local scheduler and the ledger readers read of a plan: its name, jobs, grid file (none) and profile
    (by default one whose workers run the study installed, as stand-in workers take no copy of its code)."""
    from study.grids.profile import Profile

    return SimpleNamespace(name=name, jobs=jobs, path=None, profile=Profile(snapshot_code=snapshot_code))


def stand_in_workers(monkeypatch, command) -> None:
    """`run_local` starts `command(job_id, env)` (an argv) in place of each job's worker (study.launch.local.worker,
    which it gives `--job <workdir>/jobs/<id>/job.json`), with the worker's environment and streams."""
    from study.launch.local import scheduler

    real_popen = subprocess.Popen

    def popen(args, **kwargs):
        return real_popen(command(Path(args[args.index("--job") + 1]).parent.name, kwargs["env"]), **kwargs)

    monkeypatch.setattr(scheduler.subprocess, "Popen", popen)


def fake_commands(bin_dir: Path, **scripts: str) -> Path:
    """Shell scripts `bin_dir/<name>` with the given bodies: stand-ins for commands (sacct, squeue, ...) answering
    what a real cluster cannot be made to answer in a test; returns `bin_dir`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def fake_test_only(root: Path) -> str:
    """The first line of a stand-in sbatch: `sbatch --test-only` (the script on stdin) queues nothing, and answers as
    the real one: where `root/test_only_refuse` exists and the script holds its first line, the rest on stderr and
    exit 1, else that the job would start; each call's arguments are appended to `root/test_only_calls`."""
    refuse = f'"{root}/test_only_refuse"'
    return (f'case "$1" in --test-only) s=$(cat); echo "$@" >> "{root}/test_only_calls"; '
            f'if [ -e {refuse} ] && printf "%s" "$s" | grep -qF -- "$(sed -n 1p {refuse})"; then '
            f'sed -n "2,\\$p" {refuse} >&2; exit 1; fi; '
            'echo "sbatch: Job 0 to start at 2026-01-01T00:00:00 using 1 processors on nodes n1 in partition debug" '
            '>&2; exit 0;; esac')


def fake_slurm(root: Path) -> Path:
    """Stand-ins for a whole Slurm in `root/bin` (returned; put it first on PATH), driven and read through files in
    `root`: sbatch answers "Submitted batch job <n>" (n = 101, 102, ...; its environment saved in sbatch_env_<n>, its
    script in sbatch_script_<n>), and `sbatch --test-only` as `fake_test_only` says;
    sacct prints a header and the lines of `sacct` (`<id>|<state>|<nodes>|<end>`, then `|<account>` where one is
    to be said); squeue prints `squeue` (its
    listing, `<id> <state> <reason>`), or `squeue_name` when asked for a job name, and without a `squeue` file,
    asked for states (`%T`), the jobs `sacct` says queued or running; scancel appends its arguments to
    `scancelled`; scontrol says MaxArraySize = 1001; sinfo lists the partitions of `sinfo`, else `debug`, and the
    node states (`%t`) of `sinfo_states`, else `idle`; `sacctmgr show assoc` lists the accounts of `sacctmgr_assoc`
    (without it, and for anything else, says it cannot reach the database); srun does nothing. Real commands
    elsewhere on PATH are never reached for these names."""
    d = str(root)
    # squeue's lines for the jobs the `sacct` file says queued or running, where no `squeue` file says otherwise: a
    # real controller lists every one of them (a pending task it does not list was cancelled: slurm.state.REMOVED)
    live = ("awk -F'|' '$2 ~ /^(PENDING|RUNNING|REQUEUED|COMPLETING|SUSPENDED)/ {print $1, $2, %s\"None\"}' "
            "\"%s/sacct\" 2>/dev/null")
    return fake_commands(
        root / "bin",
        sbatch=f'{fake_test_only(root)}\nn=$(cat "{d}/counter" 2>/dev/null || echo 100); n=$((n+1)); '
               f'echo $n > "{d}/counter"\n'
               f'env > "{d}/sbatch_env_$n"\ncp "$1" "{d}/sbatch_script_$n"\necho "Submitted batch job $n"',
        sacct=f'case "$*" in *--name*) exit 0;; esac\necho "JobID|State|NodeList|End|Account"\n'
              f'cat "{d}/sacct" 2>/dev/null; exit 0',
        squeue=(f'case "$*" in *--name*) cat "{d}/squeue_name" 2>/dev/null;; *) if [ -e "{d}/squeue" ]; then '
                f'cat "{d}/squeue"; else case "$*" in *%e*) {live % ("$4, ", d)};; *%T*) {live % ("", d)};; esac; fi;; '
                'esac\nexit 0'),
        scancel=f'echo "$@" >> "{d}/scancelled"',
        scontrol='echo "MaxArraySize = 1001"',
        sinfo=f'case "$*" in *%t*) cat "{d}/sinfo_states" 2>/dev/null || echo idle; exit 0;; esac\n'
              f'cat "{d}/sinfo" 2>/dev/null || echo debug',
        sacctmgr=f'case "$*" in *assoc*) [ -e "{d}/sacctmgr_assoc" ] && cat "{d}/sacctmgr_assoc" && exit 0;; esac\n'
                 'echo "sacctmgr: error: Problem talking to the database: Connection refused" >&2; exit 1',
        srun="exit 0")


def build_manifests(root: Path, names: tuple[str, ...] = ("toy",)) -> Path:
    """Manifests <name>_train (32 images, labeled sizes 16, 32) and <name>_test (16) per name under root."""
    from study.manifests.build import BuildConfig, build_manifest

    for k, name in enumerate(names):
        write_quadrant_tree(root / "images" / name / "train", 8, seed=2 * k)
        write_quadrant_tree(root / "images" / name / "test", 4, seed=2 * k + 1)
        build_manifest(BuildConfig(dataset="imagefolder", root=root / "images" / name / "train", split="train",
                                   name=f"{name}_train", sizes=[32], labeled_sizes=[16, 32]))
        build_manifest(BuildConfig(dataset="imagefolder", root=root / "images" / name / "test", split="train",
                                   name=f"{name}_test", sizes=[16]))
    return root / "manifests"


def grid_text(name: str, datasets=("toy",), seeds=(0,), steps: int = 6, loader_workers: int = 0,
              pretrain_resources: str = "") -> str:
    """A tiny grid: SimCLR on a thin ResNet at 12 px, `steps` steps with a checkpoint at every step (its data loaded
    by `loader_workers` processes), and a linear probe at 16 and 32 labels per pretraining job; the pretraining
    stage's resources, where given, as a YAML mapping ("{gpus: 0, cpus: 1, nodes: 2}")."""
    ds = "".join(f"  {d}: {{reader: imagefolder, train: {d}_train, test: {d}_test}}\n" for d in datasets)
    return (f"name: {name}\n"
            f"datasets:\n{ds}"
            "defaults:\n"
            f"  pretrain: {{backbone: resnet18_small, width: 4, image_size: 12, steps: {steps}, batch_size: 8,\n"
            f"             head: [16, 8], checkpoint_every_steps: 1, num_workers: {loader_workers},\n"
            "             log_every_steps: 10,\n"
            "             optim: {warmup_epochs: 0}}\n"
            "  evaluate: {num_workers: 0, batch_size: 16, image_size: 12}\n"
            f"axes: {{method: [simclr], dataset: [{', '.join(datasets)}], size: [32], corruption: [none]}}\n"
            f"seeds: [{', '.join(map(str, seeds))}]\n"
            "stages:\n"
            + (f"  pretrain:\n    resources: {pretrain_resources}\n" if pretrain_resources else "")
            + "  evaluate:\n"
            "    - protocol: linear\n"
            "      eval_datasets: same\n"
            "      labeled_sizes: [16, 32]\n")


PROFILE = """\
name: test
partition: debug
gpus_per_node: 0
cpus_per_node: 8
mem_per_node: 8G
stages:
  pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m}
  evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}
"""


def start_cluster(script: str, **env: str) -> str:
    """Run scripts/<script> (a real Slurm cluster on localhost, started as root) with `env` added -> its stdout.
    Skips the calling tests when not root; where the script fails, fails them under CI (CI set), else skips them,
    saying why."""
    if os.geteuid() != 0:
        pytest.skip(f"SLURM TESTS SKIPPED: not root, so scripts/{script} cannot install and start the Slurm daemons. "
                    "Run the suite as root (CI does) to exercise the launcher on a real cluster.")
    proc = subprocess.run(["bash", str(REPO / "scripts" / script)], env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        msg = f"SLURM TESTS: scripts/{script} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return proc.stdout


def submit_argv(grid: Path, wd: Path, *extra: str) -> list[str]:
    """`study submit <grid> --cluster slurm`'s arguments, with the profile beside the workdir (`profile.yaml`)."""
    return ["submit", str(grid), "--cluster", "slurm", "--profile", str(wd.parent / "profile.yaml"), "--workdir",
            str(wd), *extra]


def submit(grid: Path, wd: Path, *extra: str) -> str:
    """`study submit <grid> --cluster slurm` with the profile beside the workdir -> its stderr; asserts exit 0."""
    code, _, err = run_cli(submit_argv(grid, wd, *extra))
    assert code == 0, err
    return err


def status(grid: Path, wd: Path) -> str:
    return run_cli(["status", str(grid), "--workdir", str(wd)])[1]


def wait_until(cond, timeout: float, what: str, grid: Path, wd: Path, poll: float = 1.0) -> None:
    """Return once `cond()` holds; else fail after `timeout` s with the grid's status and squeue (the cluster
    SLURM_CONF names, where set)."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(poll)
    squeue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd)])  # its stderr too: why it said nothing
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\nstatus (exit {code}):\n{out}{err}\n{squeue}")


def task_log(wd: Path, slurm_id: str, task: int = 0, stream: str = "err") -> Path:
    """Task `task`'s log of Slurm job `slurm_id`, in its array's submitit folder (`err`: the training's lines,
    submitit's warnings; `out`: submitit's INFO lines)."""
    return next((wd / "submitit").glob(f"*/{slurm_id}_{task}_log.{stream}"))


def all_results(plan, wd: Path):
    return lambda: all((wd / "results" / f"{j.id}.json").exists() for j in plan.jobs)


def queued(wd: Path, grid: str) -> list[dict]:
    from study.launch.ledger import Ledger

    return [e for e in Ledger(wd, grid).events() if e["event"] == "queued"]


def metrics(wd: Path, job_id: str) -> list[dict]:
    from study.results import read_result

    return read_result(wd / "results" / f"{job_id}.json")["metrics"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `study <argv>` through study.launch.cli, StudyError -> 2 as the front does."""
    from study.launch.cli import register

    parser = argparse.ArgumentParser(prog="study")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = int(args.func(args) or 0)
        except StudyError as e:
            print(f"study: error: {e}", file=sys.stderr)
            code = e.exit_code
    return code, out.getvalue(), err.getvalue()


@contextmanager
def running_locally(grid: Path, workdir: Path, stage: str = "pretrain"):
    """The grid's first job of `stage` running on this host meanwhile, as a local command's worker runs it: its
    ledger line says so and its job lock is held; yields the job."""
    from study.grids import plan_grid
    from study.launch.ledger import Ledger
    from study.launch.locks import job_lock

    plan = plan_grid(grid)
    job = next(j for j in plan.jobs if j.stage == stage)
    Ledger(workdir, plan.name).append([{"event": "local", "job": job.id, "stage": stage, "state": "running",
                                        "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    lock = job_lock(workdir, job.id)
    try:
        yield job
    finally:
        os.close(lock)


def write_checkpoint(path: Path, step: int, total: int) -> None:
    """A checkpoint as the training loop writes it (its step and total beside tensors and an optimizer's state)."""
    import torch

    from study.train.checkpoint import save_checkpoint

    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {"step": step, "total_steps": total, "epoch": 0,
                           "method": {"encoder.weight": torch.ones(3, 2)},
                           "optimizer": {"state": {0: {"momentum": torch.zeros(3)}}, "param_groups": [{"lr": 0.3}]},
                           "rng": {"torch": torch.get_rng_state()}})


# a requeued Slurm job's log as the real cluster leaves it (scripts/slurm_cluster.sh): Slurm appends each start to it
REQUEUED_LOG = """[pretrain] step 150/1500 loss 3.3668 lr 0.0183 133.1 img/s, eta 3 min
slurmstepd-vm: error: *** JOB 1609 ON vm CANCELLED AT 2026-12-06T08:43:02 DUE TO JOB REQUEUE ***
slurmstepd-vm: error: *** STEP 1609.0 ON vm CANCELLED AT 2026-12-06T08:43:02 DUE TO JOB REQUEUE ***
[pretrain] checkpoint written at step 173/1500 on SIGTERM
srun: error: vm: task 0: Killed
[pretrain] resuming /wd/jobs/p1 at step 173/1500
[pretrain] step 200/1500 loss 3.4180 lr 0.01795 120.7 img/s, eta 3 min
submitit WARNING (2026-12-06 08:43:32,007) - Caught signal SIGUSR2 on vm: this job is timed-out.
slurmstepd-vm: error: *** STEP 1609.0 ON vm CANCELLED AT 2026-12-06T08:43:48 DUE TO JOB REQUEUE ***
slurmstepd-vm: error: *** JOB 1609 ON vm CANCELLED AT 2026-12-06T08:43:48 DUE TO JOB REQUEUE ***
[pretrain] checkpoint written at step 226/1500 on SIGUSR2 (a requeue or a stop: the job resumes from here)
"""
