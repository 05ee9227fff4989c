"""The time a local run has left (study.launch.local.eta.Eta): the plan's cost model calibrated per stage by the
jobs finished, the larger of the work shared by the workers and the longest job."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from study.grids import plan_grid
from study.grids.cost import job_hours
from study.launch.local.eta import Eta

from launch_helpers import fake_plan, grid_text


def _job(job_id: str, stage: str):
    return SimpleNamespace(id=job_id, stage=stage)


def test_nothing_is_said_before_a_job_has_finished():
    eta = Eta({"p": 100.0, "e": 10.0})
    assert eta.left([_job("p", "pretrain"), _job("e", "evaluate")], [], 2) is None


def test_each_stage_scales_by_its_own_finished_jobs_and_the_rest_by_all():
    jobs = {"p1": 100.0, "p2": 100.0, "p3": 50.0, "e1": 10.0, "e2": 10.0}
    eta = Eta(dict(jobs))
    eta.finish(_job("p1", "pretrain"), 300.0)  # pretraining runs 3x its estimate
    p2, p3, e1 = _job("p2", "pretrain"), _job("p3", "pretrain"), _job("e1", "evaluate")
    assert eta.left([e1], [], 1) == pytest.approx(30.0)  # no evaluation finished: all finished jobs' ratio
    eta.finish(_job("e2", "evaluate"), 5.0)  # evaluations: half
    assert eta.ratio("evaluate") == pytest.approx(0.5) and eta.ratio("pretrain") == pytest.approx(3.0)
    assert eta.left([e1], [], 1) == pytest.approx(5.0)
    # p2 has run 100 s of its 300: 200 left; p3 150; e1 5: 355 s on one worker; with two more p3, 655 s on two: ...
    assert eta.left([p3, e1], [(p2, 100.0)], 1) == pytest.approx(355.0)
    assert eta.left([p3, e1, p3, p3], [(p2, 100.0)], 2) == pytest.approx(655.0 / 2)
    # ... but not less than the longest job left
    assert eta.left([p3, e1], [(p2, 100.0)], 5) == pytest.approx(200.0)
    assert eta.left([], [(p2, 1000.0)], 1) == 0.0  # past its estimate: nothing said to be left
    assert eta.left([_job("unknown", "pretrain")], [], 1) is None  # a job without an estimate: no figure


def test_a_stage_is_scaled_by_all_its_finished_jobs_together():
    """Measured over estimated seconds summed over the stage's finished jobs, not the last job's alone; and nothing
    is said before a job has finished, even with no job left."""
    eta = Eta({"p1": 100.0, "p2": 300.0, "p3": 100.0})
    assert eta.left([], [], 1) is None
    eta.finish(_job("p1", "pretrain"), 300.0)
    eta.finish(_job("p2", "pretrain"), 300.0)
    assert eta.ratio("pretrain") == pytest.approx(1.5)  # 600 s measured over 400 s estimated
    assert eta.left([_job("p3", "pretrain")], [], 1) == pytest.approx(150.0)


def test_a_stage_whose_finished_jobs_were_estimated_at_nothing_gives_no_estimate():
    """A job the cost model counts at 0 s (pretraining on a pooled set without a size: 0 images) calibrates nothing:
    no time left is said, rather than a division by zero in the scheduler's reaping of that job."""
    eta = Eta({"p0": 0.0, "p1": 50.0})
    eta.finish(_job("p0", "pretrain"), 30.0)
    assert eta.ratio("pretrain") is None and eta.ratio("evaluate") is None
    assert eta.left([_job("p1", "pretrain")], [], 1) is None


def test_the_estimates_are_the_plans_cost_model(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("etag"))
    plan = plan_grid(grid)
    eta = Eta.of_plan(plan, plan.jobs)
    assert set(eta.estimated) == {j.id for j in plan.jobs}
    for job in plan.jobs:
        assert eta.estimated[job.id] == pytest.approx(3600 * job_hours(job, plan.grid, plan.profile.cost, set(),
                                                                         {j.id: j for j in plan.by_stage("pretrain")}))
        assert eta.estimated[job.id] > 0
    bare = Eta.of_plan(fake_plan("jobs", plan.jobs), plan.jobs)  # no cost model: no figure
    bare.finish(plan.jobs[0], 10.0)
    assert bare.left(plan.jobs[1:], [], 1) is None


def test_a_probes_estimate_counts_the_width_of_its_pretraining_jobs_encoder(tmp_path):
    """A dataset that gives its classes prices each probe by the features' width: that of the encoder its pretraining
    job trains (a thin ResNet here), not resnet50's 2048 counted for an encoder the plan does not hold."""
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("etaw").replace("{reader: imagefolder,", "{reader: imagefolder, classes: 1000,"))
    plan = plan_grid(grid)
    eta = Eta.of_plan(plan, plan.jobs)
    pretrain = {j.id: j for j in plan.by_stage("pretrain")}
    probes = plan.by_stage("evaluate")
    assert probes
    for job in probes:
        want = 3600 * job_hours(job, plan.grid, plan.profile.cost, set(), pretrain)
        assert eta.estimated[job.id] == pytest.approx(want)
        assert want != pytest.approx(3600 * job_hours(job, plan.grid, plan.profile.cost, set(), {}))
    # a rerun of the probes alone (their pretraining done, not among the jobs run): the same widths
    assert Eta.of_plan(plan, probes).estimated == {j.id: eta.estimated[j.id] for j in probes}


def test_a_finished_job_counts_its_results_wall_time_over_every_session(tmp_path):
    """A job resumed near its end took its worker seconds, not the hours its estimate is of: calibrating by the
    worker's time alone shrank every other job's time left. Its result's wall time counts; the worker's where that
    is more (the process's start-up) or where no result reads."""
    import json

    from study.launch.local.scheduler import job_seconds
    from study.results.record import make_record, write_result

    job = SimpleNamespace(id="abc123", stage="pretrain", config={"axes": {}}, depends_on=[])
    write_result(tmp_path, make_record(job, {"metrics": [], "protocol": {}}, wall_time_s=5400.0))
    assert job_seconds(tmp_path, "abc123", 300.0) == 5400.0
    assert job_seconds(tmp_path, "abc123", 6000.0) == 6000.0
    assert job_seconds(tmp_path, "nothere", 300.0) == 300.0
    (tmp_path / "results" / "abc123.json").write_text(json.dumps({"torn": True}))
    assert job_seconds(tmp_path, "abc123", 300.0) == 300.0


def test_a_reaped_job_calibrates_the_time_left_by_its_results_wall_time_not_its_workers(tmp_path):
    """The scheduler's reaping of a done job (not job_seconds alone): a job resumed from its checkpoint whose worker
    ran its last minute, and whose result records 1.5 h over its sessions, calibrates the other jobs' estimates by
    the 1.5 h; its worker's minute would have said about a minute left for an hour and a half of work."""
    import io
    import os
    import subprocess
    import sys
    import time

    from study.grids import Job
    from study.launch.ledger import Ledger
    from study.launch.local.scheduler import _LocalRun, _Running
    from study.results.record import make_record, write_result

    jobs = [Job(id="p1", stage="pretrain", config={"axes": {}}), Job(id="p2", stage="pretrain", config={"axes": {}})]
    plan, err = fake_plan("etar", jobs), io.StringIO()
    run = _LocalRun(plan, tmp_path, Ledger(tmp_path, "etar"), err, [jobs[1]], set(), [1], [None, None], 1)
    run.eta = Eta({"p1": 3600.0, "p2": 3600.0})  # the cost model's hour each
    write_result(tmp_path, make_record(jobs[0], {"metrics": [], "protocol": {}}, wall_time_s=5400.0))
    worker = subprocess.Popen([sys.executable, "-c", "pass"])
    worker.wait()
    lock = os.open(tmp_path / "p1.lock", os.O_CREAT | os.O_RDWR)
    run.running["p1"] = _Running(jobs[0], worker, 0, tmp_path / "p1.log", time.time() - 60.0, lock)  # a minute ago
    run.reap()
    assert "p1" in run.done and not run.running
    assert run.eta.finished == {"pretrain": [3600.0, 5400.0]}
    # the progress line says the worker's minute, and the time left of p2 at 1.5 times its hour
    assert re.search(r"\| done pretrain p1 in \d+ s; about 1\.5 h left$", err.getvalue(), re.M), err.getvalue()


def test_the_time_left_takes_off_what_the_running_jobs_have_run_and_shares_the_rest_by_the_workers(tmp_path):
    """The scheduler's time left (not Eta.left alone): every job it runs estimated by the plan's cost model, a
    running job's seconds already run taken off its estimate, the rest shared by all the command's workers."""
    import io
    import time

    from study.durations import format_left
    from study.launch.ledger import Ledger
    from study.launch.local.scheduler import _LocalRun, _Running

    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("etas", datasets=("toy", "bad")))
    plan = plan_grid(grid)
    run = _LocalRun(plan, tmp_path, Ledger(tmp_path, "etas"), io.StringIO(), list(plan.jobs), set(), [0, 1],
                    [None, None], 1)
    assert set(run.eta.estimated) == {j.id for j in plan.jobs}
    first, running, *todo = plan.jobs
    run.eta = Eta({j.id: 1000.0 for j in plan.jobs})
    run.eta.finish(first, 1000.0)  # as estimated
    run.todo = todo
    run.running[running.id] = _Running(running, None, 0, tmp_path / "r.log", time.time() - 400.0, -1)
    parts = [1000.0] * len(todo) + [600.0]
    want = max(sum(parts) / 2, 1000.0)  # 22 min
    assert len(todo) == 2 and run.time_left() == f"; about {format_left(want)} left"
    assert format_left(want) not in (format_left(sum(parts)), format_left(3000.0 / 2))  # one worker; nothing run
