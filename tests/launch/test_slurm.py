"""Integration tests on a real single-node Slurm cluster on localhost (scripts/slurm_cluster.sh), with real tiny
jobs: pretraining a thin ResNet on PNG files for a few steps with a checkpoint at every step, and linear probes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.grids import plan_grid
from study.launch.ledger import Ledger, user
from study.launch.traces import RUN_HEADER, _writes_headers, requeue_history
from study.results import read_result

from launch_helpers import (PROFILE, all_results, fake_commands, grid_text, metrics, queued, run_cli, running_locally,
                            start_cluster, status, submit, submit_argv, task_log, wait_until)

pytestmark = pytest.mark.slurm
LONG_STEPS = 400  # long enough to be interrupted mid-run (~10 s of CPU; a checkpoint every step)


@pytest.fixture(scope="session")
def slurm_cluster():
    start_cluster("slurm_cluster.sh", FAKE_CPUS="8")
    return True


def submit_killed_after_sbatch(grid: Path, wd: Path, monkeypatch) -> None:
    """`study submit` killed once its first array went to sbatch, before the array's `queued` lines."""
    real_append = Ledger.append

    def killed_after_sbatch(self, events):
        events = list(events)
        if any(e["event"] == "queued" for e in events):
            raise KeyboardInterrupt
        real_append(self, events)

    monkeypatch.setattr(Ledger, "append", killed_after_sbatch)
    with pytest.raises(KeyboardInterrupt):
        submit(grid, wd)
    monkeypatch.setattr(Ledger, "append", real_append)


@pytest.fixture(scope="module")
def reference(slurm_cluster, manifests, tmp_path_factory):
    """The `long` grid (2 pretraining jobs, 2 probes) submitted, submitted again at once, run to the end."""
    root = tmp_path_factory.mktemp("slurm_ref")
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_MANIFESTS", str(manifests))

    (root / "profile.yaml").write_text(PROFILE)
    grid = root / "long.yaml"
    grid.write_text(grid_text("long", seeds=(0, 1), steps=LONG_STEPS))
    wd = root / "wd"
    plan = plan_grid(grid)
    t0 = time.time()
    first = submit(grid, wd)
    submit_s = time.time() - t0
    second = submit(grid, wd)
    wait_until(all_results(plan, wd), 240, "every result of the reference grid", grid, wd)
    third = submit(grid, wd)
    yield {"plan": plan, "grid": grid, "wd": wd, "first": first, "second": second, "third": third,
           "submit_s": submit_s}
    mp.undo()


def test_tiny_grid_submitted_to_slurm_completes_with_every_result(reference):
    plan, wd = reference["plan"], reference["wd"]
    assert "queued 4 job(s) in 3 array(s)" in reference["first"]
    assert reference["submit_s"] < 30  # returns once queued, long before the jobs end
    for job in plan.jobs:
        rec = read_result(wd / "results" / f"{job.id}.json")
        assert rec["grid"] == "long" and rec["metrics"]
    out = status(reference["grid"], wd)
    assert out.splitlines()[2].split() == ["pretrain", "2", "0", "0", "0", "0", "0", "0"]
    assert out.splitlines()[3].split() == ["evaluate", "2", "0", "0", "0", "0", "0", "0"]


def test_submit_twice_submits_nothing_the_second_time(reference):
    assert "queued 0 job(s) in 0 array(s); skipped: 4 pending or running" in reference["second"]
    assert "queued 0 job(s) in 0 array(s); skipped: 4 done" in reference["third"]
    assert sorted(e["job"] for e in queued(reference["wd"], "long")) == sorted(j.id for j in reference["plan"].jobs)


def test_requeued_and_usr2_interrupted_jobs_resume_and_match_an_uninterrupted_run(reference, env):
    grid = env / "long.yaml"
    grid.write_text(reference["grid"].read_text())
    wd = env / "wd"
    plan = plan_grid(grid)
    submit(grid, wd)
    ids = {e["job"]: e["slurm_job_id"] for e in queued(wd, "long")}
    pre = [j.id for j in plan.jobs if j.stage == "pretrain"]
    interrupt = (["scontrol", "requeue"],  # an admin's preemption: no USR2
                 ["scancel", "--signal=USR2"])  # submitit's preemption/timeout path
    for job_id, command in zip(pre, interrupt):  # each interrupted as soon as its first checkpoint is on disk
        wait_until(lambda: (wd / "jobs" / job_id / "checkpoint.pt").exists(), 120, f"a checkpoint of {job_id}",
                   grid, wd, poll=0.05)
        subprocess.run([*command, ids[job_id]], check=True)
    wait_until(all_results(plan, wd), 240, "every result after the interruptions", grid, wd)
    for job_id in pre:
        protocol = read_result(wd / "results" / f"{job_id}.json")["protocol"]
        resumed = protocol["resumed_from_steps"]
        assert resumed and 0 < resumed[0] < LONG_STEPS, (job_id, resumed)  # resumed mid-run from a checkpoint
        # what `study status` reads of it: Slurm's requeue line(s) and the training loop's resume lines in its log
        seen = requeue_history(task_log(wd, ids[job_id]))
        assert seen.requeued >= 1 and [s for s, _ in seen.resumed] == resumed, (job_id, seen, resumed)
    for job in plan.jobs:  # same metrics as the uninterrupted run, bit for bit
        assert metrics(wd, job.id) == metrics(reference["wd"], job.id), job.id
    log = task_log(wd, ids[pre[1]]).read_text()  # in its array's folder
    assert "SIGUSR2" in log  # went through submitit's handler, which requeued it
    for job_id in pre:  # each start of the run said so in task 0's log, the first near its top (traces.progress)
        starts = [ln for ln in task_log(wd, ids[job_id]).read_text().splitlines() if ln.startswith(RUN_HEADER)]
        assert len(starts) >= 2 and _writes_headers(task_log(wd, ids[job_id])), (job_id, starts)


def test_failing_pretraining_job_gets_its_dependents_cancelled_not_pending(slurm_cluster, env):
    grid = env / "fail.yaml"
    grid.write_text(grid_text("fail", datasets=("toy", "bad")))
    wd = env / "wd"
    plan = plan_grid(grid)
    by = {j.axes["dataset"] + ":" + j.stage: j.id for j in plan.jobs}
    submit(grid, wd)

    def settled():
        out = status(grid, wd)
        cancelled = f"their dependency {by['bad:pretrain']} failed: {by['bad:evaluate']}"
        return (wd / "results" / f"{by['toy:evaluate']}.json").exists() and cancelled in out

    wait_until(settled, 120, "the good probe's result and the bad probe's cancellation", grid, wd)
    out = status(grid, wd)
    assert f"failed pretrain {by['bad:pretrain']}" in out
    assert "bad_train" in out  # the failure's last error lines name the manifest
    assert "_log.err" in out  # and its log path
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j",
                            {e["job"]: e["slurm_job_id"] for e in queued(wd, "fail")}[by["bad:evaluate"]]],
                           capture_output=True, text=True).stdout
    assert state.startswith("CANCELLED")


def test_submit_killed_midway_then_rerun_queues_exactly_the_missing_jobs(slurm_cluster, env, monkeypatch):
    grid = env / "kill.yaml"
    grid.write_text(grid_text("kill", seeds=(0, 1)))
    wd = env / "wd"
    plan = plan_grid(grid)
    submit_killed_after_sbatch(grid, wd, monkeypatch)
    err = submit(grid, wd)
    assert "queued 2 job(s) in 2 array(s); skipped: 2 pending or running" in err  # only the probes
    wait_until(all_results(plan, wd), 180, "every result of the resumed submission", grid, wd)
    ev = queued(wd, "kill")
    assert sorted(e["job"] for e in ev) == sorted(j.id for j in plan.jobs)  # each job queued once
    assert all(e.get("recovered") for e in ev if e["stage"] == "pretrain")
    names = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobName", "-S", "now-1hour"], capture_output=True,
                           text=True).stdout.split()
    ours = {e["name"] for e in Ledger(wd, "kill").events() if e["event"] == "intent"}
    assert len([n for n in names if n in ours]) == 4  # two pretraining tasks, two probes: nothing submitted twice


def test_an_array_whose_call_files_were_never_named_runs_once_the_next_command_writes_them(slurm_cluster, env,
                                                                                          monkeypatch):
    """`study submit` stopped after sbatch queued the pretraining array, before submitit renamed its tasks' call
    files to <id>_submitted.pkl (a kill during sbatch): the tasks wait 60 s for them. The next command finds the
    array by name and writes them, rebuilt from what the submit wrote before sbatch, and the tasks run."""
    import submitit

    grid = env / "calls.yaml"
    grid.write_text(grid_text("calls", seeds=(0, 1)))
    wd = env / "wd"
    plan = plan_grid(grid)
    real_move = submitit.core.utils.JobPaths.move_temporary_file

    def killed_before_rename(self, tmp_path, name, keep_as_symlink=False):
        if name == "submitted_pickle":
            raise KeyboardInterrupt
        real_move(self, tmp_path, name, keep_as_symlink)

    monkeypatch.setattr(submitit.core.utils.JobPaths, "move_temporary_file", killed_before_rename)
    with pytest.raises(KeyboardInterrupt):
        submit(grid, wd)
    monkeypatch.setattr(submitit.core.utils.JobPaths, "move_temporary_file", real_move)
    assert not queued(wd, "calls") and not list((wd / "submitit").glob("*/*_submitted.pkl"))
    err = submit(grid, wd)
    assert "queued 2 job(s) in 2 array(s); skipped: 2 pending or running" in err, err  # only the probes
    wait_until(all_results(plan, wd), 180, "every result, the recovered array's included", grid, wd)
    assert sorted(e["job"] for e in queued(wd, "calls")) == sorted(j.id for j in plan.jobs)


def test_rerun_queues_the_chosen_done_jobs_and_their_evaluations_again_and_they_train_from_step_0(slurm_cluster,
                                                                                                env):
    """`study submit --cluster slurm --rerun --where stage=pretrain` on a finished grid: the pretraining jobs and the
    evaluations that used them are set aside and queued again with their dependencies, and each pretraining job
    trains from step 0 (no checkpoint left to resume), to the same results on this CPU."""
    grid, wd = env / "again.yaml", env / "wd"
    grid.write_text(grid_text("again"))
    plan = plan_grid(grid)
    submit(grid, wd)
    wait_until(all_results(plan, wd), 180, "the first run's results", grid, wd)
    before = {j.id: metrics(wd, j.id) for j in plan.jobs}
    err = submit(grid, wd, "--where", "stage=pretrain", "--rerun")
    assert "set aside 2 job(s) to run again" in err and "queued 2 job(s) in 2 array(s)" in err, err
    wait_until(all_results(plan, wd), 180, "the results of the rerun", grid, wd)
    assert {j.id: metrics(wd, j.id) for j in plan.jobs} == before
    pre = plan.by_stage("pretrain")[0]
    assert not read_result(wd / "results" / f"{pre.id}.json")["protocol"]["resumed_from_steps"]
    assert len(queued(wd, "again")) == 4


def test_cancel_stops_every_live_job_of_the_grid(slurm_cluster, env):
    grid = env / "cancelg.yaml"
    grid.write_text(grid_text("cancelg", steps=LONG_STEPS))
    wd = env / "wd"
    submit(grid, wd)
    code, out, _ = run_cli(["cancel", str(grid), "--workdir", str(wd)])
    assert code == 0 and "cancelled 2 Slurm job(s)" in out

    def all_cancelled():
        header, *rows = status(grid, wd).splitlines()[1:4]
        column = header.split().index("cancelled")
        return [r.split()[column] for r in rows] == ["1", "1"]

    wait_until(all_cancelled, 60, "both jobs cancelled", grid, wd)
    assert "queued 0 job(s)" in submit(grid, wd)  # cancelled jobs wait for --retry-failed


def test_a_pending_task_cancelled_on_its_own_reads_cancelled_and_is_queued_again(slurm_cluster, env):
    """`study cancel --where` (or a labmate's `scancel 123_2`) cancels a pending task of an array on its own: Slurm
    drops it without a record (sacct read it pending, then not at all, and squeue never lists it again). It read
    pending for ever: never run, never queued again, and its probe, queued again after it, ran at once on an
    encoder never made (an afterok on a task Slurm no longer knows is dropped)."""
    grid = env / "onetask.yaml"
    grid.write_text(grid_text("onetask", seeds=(0, 1, 2), steps=LONG_STEPS))
    (env / "profile.yaml").write_text(PROFILE + "max_parallel_jobs: 1\n")  # one task at a time: seed 2's waits
    wd = env / "wd"
    submit(grid, wd)
    try:
        code, out, _ = run_cli(["cancel", str(grid), "--workdir", str(wd), "--where", "seed=2"])
        assert code == 0 and "cancelled 2 Slurm job(s)" in out, out

        def pretraining_cancelled():
            argv = ["status", str(grid), "--workdir", str(wd), "--where", "seed=2", "--format", "json"]
            return [r["state"] for r in json.loads(run_cli(argv)[1])["jobs"] if r["stage"] == "pretrain"] \
                == ["cancelled"]

        wait_until(pretraining_cancelled, 60, "seed 2's pretraining read cancelled", grid, wd)  # sacct lags a little
        err = submit(grid, wd, "--retry-failed", "--where", "seed=2")
        assert "queued 2 job(s) in 2 array(s)" in err, err  # the pretraining again, and its probe after it
    finally:
        run_cli(["cancel", str(grid), "--workdir", str(wd)])


def test_a_job_shared_with_a_queued_grid_is_not_queued_again_nor_cancelled_with_the_other(slurm_cluster, env):
    """Grids a (seed 0) and b (seeds 0, 1) share seed 0's pretraining and probe: b queues only seed 1's jobs
    while a's are live, and cancelling b leaves a's jobs running to their results."""
    ga, gb = env / "sharea.yaml", env / "shareb.yaml"
    ga.write_text(grid_text("sharea", seeds=(0,), steps=LONG_STEPS))
    gb.write_text(grid_text("shareb", seeds=(0, 1), steps=LONG_STEPS))
    wd = env / "wd"
    submit(ga, wd)
    err = submit(gb, wd)
    assert "queued 2 job(s)" in err and "skipped: 2 pending or running" in err, err
    # whose they are, for the user of grid b (a labmate's grid a): not this grid's to cancel
    assert "of those pending or running, 2 queued on Slurm by grid sharea" in err, err
    out = status(gb, wd)
    assert "2 live job(s) of this grid queued by another grid or user of the workdir:\n  2 queued on Slurm by grid " \
        "sharea: " in out, out
    assert {e["user"] for e in queued(wd, "sharea")} == {user()}
    code, out, _ = run_cli(["cancel", str(gb), "--workdir", str(wd)])
    assert code == 0 and "cancelled 2 Slurm job(s)" in out and "2 shared job(s) queued by another grid" in out, out
    plan_a = plan_grid(ga)
    wait_until(all_results(plan_a, wd), 240, "grid a's results", ga, wd)
    assert {e["job"] for e in queued(wd, "shareb")}.isdisjoint(j.id for j in plan_a.jobs)


def test_two_tasks_of_one_job_train_together_through_torch_distributed(slurm_cluster, env, tmp_path):
    """What a multi-GPU pretraining job does (ntasks-per-node = GPUs), with CPUs: submitit's environment starts
    torch.distributed (gloo here, NCCL on GPUs) in both tasks, which train one model on halves of each batch."""
    import submitit

    from study.train import PretrainConfig, pretrain

    cfg = PretrainConfig.from_dict({
        "manifest": "toy_train", "method": "simclr", "backbone": "resnet18_small", "width": 4, "image_size": 12,
        "steps": 4, "batch_size": 8, "head": [16, 8], "num_workers": 0, "device": "cpu",
        "optim": {"warmup_epochs": 0}})
    ex = submitit.SlurmExecutor(folder=tmp_path / "logs")
    ex.update_parameters(partition="debug", ntasks_per_node=2, cpus_per_task=1, time=10, mem="2G")
    job = ex.submit(pretrain, cfg, str(tmp_path / "run"))
    deadline = time.time() + 300
    while not job.done() and time.time() < deadline:
        time.sleep(1)
    assert job.done(), f"job {job.job_id} still {job.state} after 300 s"
    outs = job.results()  # one per task; raises with the task's traceback if one failed
    assert len(outs) == 2
    for out in outs:
        p = out["protocol"]
        assert (p["devices"], p["per_device_batch"], p["effective_batch"]) == (2, 4, 8)
        assert out["metrics"] == outs[0]["metrics"]  # the loss is the mean over both tasks, the same in each
    assert (tmp_path / "run" / "encoder.pt").exists()


def test_two_submits_at_once_queue_each_job_once(slurm_cluster, env):
    grid = env / "concur.yaml"
    grid.write_text(grid_text("concur", steps=LONG_STEPS))
    wd = env / "wd"
    cmd = [sys.executable, "-m", "study.cli", "submit", str(grid), "--cluster", "slurm", "--profile",
           str(env / "profile.yaml"), "--workdir", str(wd)]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    try:
        assert all(p.returncode == 0 for p in procs), errs
        assert sorted(e["job"] for e in queued(wd, "concur")) == sorted(j.id for j in plan_grid(grid).jobs)
        assert sum("queued 0 job(s)" in e for e in errs) == 1  # the second found the first's jobs live
    finally:
        run_cli(["cancel", str(grid), "--workdir", str(wd)])


def test_a_placement_slurm_refuses_is_a_clear_error_before_any_array_is_queued(slurm_cluster, env):
    """A partition the cluster lacks is refused before any sbatch (sinfo asked: nothing in the ledger), and so is an
    option the controller refuses (a gres the cluster does not know: `sbatch --test-only` asked); an array sbatch
    refuses all the same is recorded lost (tests/launch/test_submit.py, with a stand-in sbatch)."""
    grid = env / "refused.yaml"
    grid.write_text(grid_text("refused"))
    (env / "nopart.yaml").write_text(PROFILE.replace("partition: debug", "partition: gpuz"))
    wd = env / "wd"
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "nopart.yaml"),
                            "--workdir", str(wd)])
    assert code == 2 and "nopart.yaml: partition: 'gpuz' (pretrain, evaluate jobs): not a partition of this " \
        "cluster (sinfo lists debug); nothing was queued" in err, err
    assert Ledger(wd, "refused").events() == []
    (env / "nogres.yaml").write_text(PROFILE + "additional: {gres: 'nonesuch:1'}\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "nogres.yaml"),
                            "--workdir", str(wd)])
    assert code == 2 and "nogres.yaml: Slurm refuses the pretrain jobs (--cpus-per-task=1, " in err, err
    assert "sbatch --test-only said: sbatch: error: Invalid generic resource (gres) specification" in err, err
    assert err.rstrip().endswith("nothing was queued") and "Traceback" not in err, err
    assert Ledger(wd, "refused").events() == []


def test_sacctmgr_answers_the_questions_study_asks_it(slurm_cluster):
    """The accounts of the user and a QOS's flags, asked as study asks them (`sacctmgr show ... where key=value`):
    sacctmgr refuses a condition given as one word ("where name=normal": "Unknown condition"), which left every
    answer unknown. The cluster script's accounting database holds the user's association with account root and
    the QOS normal, without PartitionTimeLimit."""
    from study.launch.ledger import user
    from study.launch.slurm.accounting import (Association, Qos, limits_enforced, qos_record, queued_jobs,
                                               user_accounts, user_associations)
    from study.launch.slurm.params import slurm_config

    config = slurm_config()
    assert config["ClusterName"] == "ci"  # the script's cluster
    assert user_accounts(user()) == ["root"] == user_accounts(user(), config["ClusterName"])
    assert user_accounts(user(), "nonesuch") == []
    assert qos_record("normal") == Qos("normal")  # no flag (PartitionTimeLimit), MaxWall or MaxSubmitJobsPerUser
    assert qos_record("nonesuch") is None
    assert user_associations(user()) == ("root", [Association("root", qos=("normal",))])
    assert user_associations("nonesuch") is None
    assert limits_enforced(config) is False  # the script's AccountingStorageEnforce: none
    assert isinstance(queued_jobs(user()), list)


# a site's limits: a partition of MaxTime 30 min beside debug, the limits of QOS and associations enforced
SITE_CONF = ("PartitionName=short Nodes=ALL MaxTime=30 State=UP\nPartitionName=noroot Nodes=ALL DenyAccounts=root "
             "State=UP\nEnforcePartLimits=NO\nAccountingStorageEnforce=associations,limits,qos")


def _sacctmgr(*args: str) -> None:
    subprocess.run(["sacctmgr", "-i", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def site_limits(slurm_cluster):
    """The cluster with SITE_CONF and two QOS root may use: study_long (flag PartitionTimeLimit) and study_capped
    (MaxWall 20 min, MaxSubmitJobsPerUser 3). Afterwards root's jobs are cancelled, the QOS deleted, root's QOS and
    MaxSubmitJobs and QOS normal's flags reset, and the script's own configuration restored."""
    try:
        start_cluster("slurm_cluster.sh", FAKE_CPUS="8", SLURM_EXTRA_CONF=SITE_CONF)
        _sacctmgr("add", "qos", "study_long", "Flags=PartitionTimeLimit")
        _sacctmgr("add", "qos", "study_capped", "MaxWall=00:20:00", "MaxSubmitJobsPerUser=3")
        _sacctmgr("modify", "user", "root", "set", "qos+=study_long,study_capped")
        yield
    finally:
        subprocess.run(["scancel", "--user=root"], capture_output=True)
        subprocess.run(["sacctmgr", "-i", "delete", "qos", "study_long,study_capped"], capture_output=True)
        # root's QOS inherited again, as the script's database has it (the delete leaves a list of its own)
        subprocess.run(["sacctmgr", "-i", "modify", "user", "root", "set", "qos=", "MaxSubmitJobs=-1"],
                       capture_output=True)
        subprocess.run(["sacctmgr", "-i", "modify", "qos", "normal", "set", "Flags=-1"], capture_output=True)
        start_cluster("slurm_cluster.sh", FAKE_CPUS="8")


def _evaluate_on(env: Path, placement: str) -> None:
    """The profile beside the workdirs, its evaluations 1h long and placed so (`partition: short, qos: x`)."""
    evaluate = "evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}"
    (env / "profile.yaml").write_text(PROFILE.replace(evaluate, evaluate.replace("10m}", f"1h, {placement}}}")))


def test_a_qos_that_lifts_the_partitions_maxtime_is_read_as_slurm_reads_it(site_limits, env):
    """1h evaluations on partition short (MaxTime 30 min), where Slurm pends a job for ever (PartitionTimeLimit)
    unless its QOS has the flag PartitionTimeLimit. sacctmgr's answers had never been read on a real cluster: QOS
    study_long's flag is read, and its jobs run to their results; QOS normal, without it, is refused before any
    sbatch, saying so; a stage that names no QOS gets its association's default (normal), once given the flag, and
    was refused all the same. A 1h job on QOS study_capped (MaxWall 20 min) pended for ever
    (QOSMaxWallDurationPerJobLimit), as did a job of an account its partition denies (EnforcePartLimits=NO), and one
    on a list of partitions of which one is too short and the other denies the account: each refused before any
    sbatch."""
    grid, wd = env / "lifted.yaml", env / "wd"
    grid.write_text(grid_text("lifted"))
    _evaluate_on(env, "partition: short, qos: study_long")
    assert "queued 2 job(s) in 2 array(s)" in submit(grid, wd)
    wait_until(all_results(plan_grid(grid), wd), 180, "the results, the probe's on short past its MaxTime", grid, wd)
    _evaluate_on(env, "partition: short, qos: normal")
    code, _, err = run_cli(submit_argv(grid, env / "wd_normal"))
    assert code == 2 and ("more than the MaxTime of stages.evaluate.partition 'short' (30m, sinfo), which its QOS "
                          "'normal' does not lift (no flag PartitionTimeLimit, sacctmgr)") in err, err
    assert Ledger(env / "wd_normal", "lifted").events() == []
    _evaluate_on(env, "partition: short")
    code, _, err = run_cli(submit_argv(grid, env / "wd_default"))
    assert code == 2 and "more than the MaxTime of stages.evaluate.partition 'short'" in err, err
    _sacctmgr("modify", "qos", "normal", "set", "Flags=PartitionTimeLimit")
    assert "queued 2 job(s) in 2 array(s)" in submit(grid, env / "wd_default")
    wait_until(all_results(plan_grid(grid), env / "wd_default"), 180, "the results on the default QOS", grid,
               env / "wd_default")
    _evaluate_on(env, "qos: study_capped")
    code, _, err = run_cli(submit_argv(grid, env / "wd_wall"))
    assert code == 2 and ("evaluate jobs ask for up to 1h (`time`), more than the 20m MaxWall of QOS 'study_capped' "
                          "(`stages.evaluate.qos`, sacctmgr)") in err, err
    assert Ledger(env / "wd_wall", "lifted").events() == []
    _evaluate_on(env, "partition: noroot")  # root's default account, which the partition denies: pends for ever
    code, _, err = run_cli(submit_argv(grid, env / "wd_denied"))
    assert code == 2 and ("evaluate jobs: partition 'noroot' does not take account 'root' (DenyAccounts) (scontrol "
                          "show partition)") in err, err
    assert Ledger(env / "wd_denied", "lifted").events() == []
    _sacctmgr("modify", "qos", "normal", "set", "Flags=-1")  # which lifted short's MaxTime
    _evaluate_on(env, "partition: 'short,noroot'")  # short: too short; noroot: denies root; pends for ever
    code, _, err = run_cli(submit_argv(grid, env / "wd_split"))
    assert code == 2 and ("evaluate jobs, up to 1h long (`time`): no partition of stages.evaluate.partition "
                          "'short,noroot' takes them: 'short' has a MaxTime of 30m (sinfo); 'noroot' does not take "
                          "account 'root' (DenyAccounts) (scontrol show partition)") in err, err
    assert Ledger(env / "wd_split", "lifted").events() == []


def test_a_limit_on_queued_jobs_is_told_by_a_dry_run_and_the_next_submit_queues_the_rest(site_limits, env):
    """QOS study_capped lets root have 3 jobs in the queue (MaxSubmitJobsPerUser), a grid has 4 (2 pretraining, 2
    probes): the dry run says 3 fit, the submit queues 3 (sbatch refuses the last probe) and says so, and once they
    have ended the same submit queues the fourth. Without the QOS the association's MaxSubmitJobs (2) is read; with
    the QOS for the pretraining alone, the association's counts the pretraining jobs too, as Slurm does."""
    grid, wd = env / "capped.yaml", env / "wd"
    grid.write_text(grid_text("capped", seeds=(0, 1)))
    (env / "profile.yaml").write_text(PROFILE + "qos: study_capped\n")
    code, _, err = run_cli(submit_argv(grid, wd, "--dry-run"))
    assert code == 0 and ("Slurm's limit on your jobs in its queue lets in 3 of this submit's 4 job(s): QOS "
                          "'study_capped' (`qos`, sacctmgr) lets you have 3 jobs in Slurm's queue at once (its "
                          "MaxSubmitJobsPerUser), and you have 0 there now (squeue -u root)") in err, err
    code, _, err = run_cli(submit_argv(grid, wd))
    assert code == 2 and "QOSMaxSubmitJobPerUserLimit" in err and "Queued by this submit: 3 job(s)" in err, err
    plan = plan_grid(grid)
    done = lambda: sum((wd / "results" / f"{j.id}.json").exists() for j in plan.jobs) == 3  # noqa: E731
    wait_until(done, 180, "the results of the 3 jobs queued", grid, wd)
    assert "queued 1 job(s) in 1 array(s); skipped: 3 done" in submit(grid, wd)
    wait_until(all_results(plan, wd), 180, "every result", grid, wd)
    # a job whose result is written still ends (its worker exits, submitit writes its outcome): out of the queue
    # first, or the count below reads it there
    queue = ["squeue", "-h", "-u", "root"]
    wait_until(lambda: not subprocess.run(queue, capture_output=True, text=True).stdout.strip(), 60, "the queue empty",
               grid, wd)
    (env / "profile.yaml").write_text(PROFILE)
    _sacctmgr("modify", "user", "root", "set", "MaxSubmitJobs=2")
    code, _, err = run_cli(submit_argv(grid, env / "wd_assoc", "--dry-run"))
    assert code == 0 and ("lets in 2 of this submit's 4 job(s): your association with account 'root' (sacctmgr) lets "
                          "you have 2 jobs in Slurm's queue at once (its MaxSubmitJobs)") in err, err
    # the pretraining under QOS study_capped (3), the probes under the association (2), which counts both stages'
    (env / "profile.yaml").write_text(PROFILE.replace("time: 10m}", "time: 10m, qos: study_capped}", 1))
    code, _, err = run_cli(submit_argv(grid, env / "wd_both", "--dry-run"))
    assert code == 0 and ("lets in 2 of this submit's 4 job(s): your association with account 'root' (sacctmgr) lets "
                          "you have 2 jobs in Slurm's queue at once (its MaxSubmitJobs), and you have 0 there now "
                          "(squeue -u root) besides this submit's 2 pretrain job(s) queued before them") in err, err
    code, _, err = run_cli(submit_argv(grid, env / "wd_both"))
    assert code == 2 and "AssocMaxSubmitJobLimit" in err and "Queued by this submit: 2 job(s)" in err, err


def test_queued_jobs_run_the_code_their_submit_copied_not_the_checkout_as_it_is_when_they_start(slurm_cluster, env):
    """A job imported the study checkout as it was when the job started (an editable install, or the submit folder
    first on sys.path): an edit or update between a submit and its jobs' start, or a requeue, changed what they ran.
    They import the copy their submit took: held jobs, the copy's version file changed meanwhile, both results record
    it (a pretraining and the probe that waited on it)."""
    grid, wd = env / "snapreal.yaml", env / "wd"
    grid.write_text(grid_text("snapreal"))
    (env / "profile.yaml").write_text(PROFILE + "additional: {hold: true}\n")
    submit(grid, wd)
    (folder,) = (wd / "code").iterdir()
    (folder / "study" / "CODE_VERSION").write_text("0.0.0+as-submitted\n")
    ids = [e["slurm_job_id"] for e in queued(wd, "snapreal")]
    subprocess.run(["scontrol", "release", *ids], check=True, capture_output=True)
    plan = plan_grid(grid)
    wait_until(all_results(plan, wd), 180, "the results of the released jobs", grid, wd)
    assert {read_result(wd / "results" / f"{j.id}.json")["protocol"]["code_version"] for j in plan.jobs} == {
        "0.0.0+as-submitted"}


def test_an_account_the_user_has_none_with_is_warned_of_and_slurm_puts_its_jobs_on_the_default_one(slurm_cluster,
                                                                                                     env):
    """The localhost cluster does not enforce associations: sbatch takes an account root has none with, and Slurm
    queues the jobs on root's default account. The submit says so before its first sbatch (sacctmgr asked), and
    sacct shows where the jobs went."""
    grid, wd = env / "acct.yaml", env / "wd"
    grid.write_text(grid_text("acctreal"))
    (env / "profile.yaml").write_text(PROFILE + "account: proj_nonesuch\n")
    err = submit(grid, wd)
    assert ("account 'proj_nonesuch' (`account`) is not one you have an association with (yours: root (sacctmgr "
            "show assoc user=root)); this cluster does not enforce associations") in err, err
    ids = [e["slurm_job_id"] for e in queued(wd, "acctreal")]

    def accounts() -> set[str]:
        run = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "Account", "-j", ",".join(ids)], capture_output=True,
                             text=True)
        return {a for a in run.stdout.split() if a}

    wait_until(lambda: accounts() == {"root"}, 60, "sacct to list the jobs on account root", grid, wd)
    assert run_cli(["cancel", str(grid), "--workdir", str(wd)])[0] == 0


def test_an_evaluation_waits_for_a_pretraining_job_that_runs_locally(slurm_cluster, env):
    """Its dependency has no Slurm id to wait for: it is held back, not queued without one."""
    grid = env / "mixed.yaml"
    grid.write_text(grid_text("mixed"))
    with running_locally(grid, env / "wd"):
        err = submit(grid, env / "wd")
    assert "queued 0 job(s)" in err and "1 waiting for a dependency that runs outside Slurm" in err, err


def test_a_local_submit_sees_the_slurm_states_of_the_same_jobs(slurm_cluster, env):
    """A job that failed on Slurm is failed for `--cluster local` too (sacct asked), not forever pending."""
    grid = env / "lf.yaml"
    grid.write_text(grid_text("lf", datasets=("bad",)))
    wd = env / "wd"
    submit(grid, wd)
    wait_until(lambda: "failed pretrain" in status(grid, wd) and "because their dependency" in status(grid, wd), 240,
               "the failure and its dependent's cancellation", grid, wd)
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 1 and "no job to run here" in err and "1 failed (rerun with --retry-failed)" in err, err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1",
                            "--retry-failed"])
    assert code == 1 and "running 2 job(s)" in err, err  # both rerun here (the data is still bad)


def test_cancel_after_an_edit_of_the_grid_stops_the_jobs_of_the_earlier_version(slurm_cluster, env):
    grid = env / "edited.yaml"
    grid.write_text(grid_text("edited", steps=LONG_STEPS))
    wd = env / "wd"
    submit(grid, wd)
    grid.write_text(grid_text("edited", steps=LONG_STEPS + 1))  # new job ids: the queued ones left the plan
    out = status(grid, wd)
    assert "2 Slurm job(s) queued by an earlier version of this grid file are still live" in out, out
    code, out, _ = run_cli(["cancel", str(grid), "--workdir", str(wd)])
    assert code == 0 and "cancelled 2 Slurm job(s) of grid edited (2 of them queued by an earlier version" in out
    wait_until(lambda: "earlier version" not in status(grid, wd), 60, "the old jobs gone", grid, wd)


def test_an_interrupted_submit_of_another_grid_is_settled_before_its_shared_jobs_are_queued(slurm_cluster, env,
                                                                                          monkeypatch):
    """Grid a's submit is killed after sbatch took its pretraining array, before the `queued` lines: a's ledger
    holds an open intent. A submit of grid b, which shares that job, used to see it missing and queue it again."""
    ga, gb = env / "intenta.yaml", env / "intentb.yaml"
    ga.write_text(grid_text("intenta", seeds=(0,)))
    gb.write_text(grid_text("intentb", seeds=(0,)))  # the same jobs under another grid name
    wd = env / "wd"
    submit_killed_after_sbatch(ga, wd, monkeypatch)
    err = submit(gb, wd)
    assert "skipped: 1 pending or running" in err, err  # a's pretraining job, found by its array's name
    plan = plan_grid(gb)
    wait_until(all_results(plan, wd), 180, "grid b's results", gb, wd)
    names = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobName", "-S", "now-1hour"], capture_output=True,
                           text=True).stdout.split()
    pretrain_names = {e["name"] for g in ("intenta", "intentb") for e in Ledger(wd, g).events()
                      if e["event"] == "intent" and e["stage"] == "pretrain"}
    assert len([n for n in names if n in pretrain_names]) == 1  # the pretraining job ran once
    assert [e for e in queued(wd, "intenta") if e.get("recovered")]  # a's intent settled by b's command


def test_an_sbatch_that_fails_after_queueing_is_found_and_its_jobs_run(slurm_cluster, env, monkeypatch, tmp_path):
    """A busy controller can answer sbatch with an error for a job it queued (a socket timeout). Recorded as lost,
    the array ran beside the one the next submit queued. Here an `sbatch` earlier on PATH queues through the real
    one, then fails as such a timeout does: the array is found by its name, recorded, and its tasks run (their
    pickles, which submitit names only after sbatch returns, are written for them)."""
    import shutil

    real = shutil.which("sbatch")
    bin_dir = fake_commands(tmp_path / "bin", sbatch=f"{real} \"$@\" > /dev/null || exit 1\n"
                            "echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv "
                            "operation' >&2\nexit 1")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    grid = env / "timeout.yaml"
    grid.write_text(grid_text("timeout", seeds=(0, 1)))
    wd = env / "wd"
    err = submit(grid, wd)
    assert "queued 4 job(s) in 3 array(s)" in err and "Socket timed out" in err and "but Slurm had queued" in err
    monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])
    plan = plan_grid(grid)
    wait_until(all_results(plan, wd), 180, "every result of the arrays sbatch said it failed", grid, wd)
    assert sorted(e["job"] for e in queued(wd, "timeout")) == sorted(j.id for j in plan.jobs)
    assert "queued 0 job(s) in 0 array(s); skipped: 4 done" in submit(grid, wd)
