"""study/launch/runner.py: what a job process decides on its own (the end-to-end runs are test_local's)."""
from __future__ import annotations

import json
import os
import time
import types

import pytest
import torch

import study.evaluate
import study.train
from study.errors import StudyError
from study.grids import Job
from study.launch.runner import (SUBMIT_DIR, SlurmTask, _is_main_task, read_job_file, run_job, threads_from_env,
                                 write_job_file)


@pytest.mark.parametrize("procid, localid, main", [(None, None, True), ("0", "0", True), ("1", "1", False),
                                                   ("2", "0", False)])
def test_only_the_first_task_of_a_job_writes_its_result(monkeypatch, procid, localid, main):
    """One task per GPU: on a two-node job, task 0 of the second node (SLURM_PROCID 2, SLURM_LOCALID 0) is not the
    job's main task; outside Slurm the process is."""
    for name, value in (("SLURM_PROCID", procid), ("SLURM_LOCALID", localid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert _is_main_task() is main


def test_a_local_worker_uses_the_threads_its_scheduler_gave_it(monkeypatch):
    """STUDY_THREADS (the local scheduler's share of the cores per worker) sets torch's threads, as Slurm's
    SLURM_CPUS_PER_TASK does; without it, every worker used every core."""
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setenv("STUDY_THREADS", str(want))
    try:
        threads_from_env()
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)


def test_a_scheduler_share_of_the_cores_wins_over_the_slurm_allocation_it_runs_in(monkeypatch):
    """A local worker started inside a Slurm allocation sees both: its own share (STUDY_THREADS) is the one."""
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", str(want + 1))
    monkeypatch.setenv("STUDY_THREADS", str(want))
    try:
        threads_from_env()
        assert torch.get_num_threads() == want
        monkeypatch.setenv("STUDY_THREADS", "0")  # no share: torch's own count stays, no error
        monkeypatch.delenv("SLURM_CPUS_PER_TASK")
        threads_from_env()
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)


def _fake_training(monkeypatch, seen: dict, wall=None):
    """study.train / study.evaluate replaced by stand-ins recording the run folder they are given; a pretraining
    takes 50 ms."""
    out = {"metrics": [{"metric": "loss", "value": 1.0}], "protocol": {} if wall is None else {"wall_time_s": wall}}
    config = types.SimpleNamespace(from_dict=staticmethod(lambda d: d))
    monkeypatch.setattr(study.train, "PretrainConfig", config)
    monkeypatch.setattr(study.train, "pretrain",
                        lambda cfg, run_dir: seen.update(run_dir=run_dir) or time.sleep(0.05) or out)
    monkeypatch.setattr(study.evaluate, "EvalConfig", config)
    monkeypatch.setattr(study.evaluate, "evaluate", lambda cfg, run_dir, enc, cache: seen.update(enc=enc) or out)


def test_run_job_writes_the_result_of_task_0_with_its_grid_and_the_runs_own_wall_time(monkeypatch, tmp_path):
    """The result names the grid and the wall time the run reported (a resumed run's, not this attempt's); the run
    folder is absolute (the checkpoint a requeue resumes from); another Slurm task writes nothing."""
    seen: dict = {}
    _fake_training(monkeypatch, seen, wall=12.5)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    job = Job("p1", "pretrain", {"axes": {}, "pretrain": {}})
    path = run_job(job, "wd", "g")
    record = json.loads(path.read_text())
    assert (record["grid"], record["wall_time_s"]) == ("g", 12.5) and seen["run_dir"].is_absolute()
    assert seen["run_dir"].is_dir()
    _fake_training(monkeypatch, seen)
    wall = json.loads(run_job(job, "wd", "g").read_text())["wall_time_s"]
    assert 0.05 <= wall < 60  # measured here, where the run reports none
    path.unlink()
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert run_job(job, "wd", "g") is None and not path.exists()
    with pytest.raises(StudyError, match="job p1: unknown stage 'train'"):
        run_job(Job("p1", "train", {"axes": {}}), "wd", "g")


def test_an_evaluation_is_refused_before_it_starts_when_an_encoder_is_missing(monkeypatch, tmp_path):
    seen: dict = {}
    _fake_training(monkeypatch, seen)
    job = Job("e1", "evaluate", {"axes": {}, "encoders": ["p1"], "evaluate": {}}, ("p1",))
    with pytest.raises(StudyError, match=r"job e1: encoder\(s\) of its pretraining job\(s\) not found: .*p1") as e:
        run_job(job, tmp_path, "g")
    assert seen == {}
    # a pretraining result copied in from another workdir without its job folder: the way out is to copy that too;
    # else (its result still counts done) to make the encoder again
    assert "copied in from another workdir, copy its job folder (jobs/<id>/, with encoder.pt)" in str(e.value)
    assert ("to make the encoder again here, remove that pretraining job's results/<id>.json, then `study submit "
            "--retry-failed` reruns it (from its last checkpoint) and this job") in str(e.value)


def test_a_job_file_reads_back_as_the_job_it_was_written_from(tmp_path):
    job = Job("e1", "evaluate", {"axes": {"seed": 1}, "encoders": ["p1", "p2"]}, ("p1", "p2"))
    assert read_job_file(write_job_file(tmp_path, job)) == job


@pytest.fixture
def job_environ():
    """A SlurmTask sets its call's variables in os.environ, as a job's process does: the test's process has them
    taken back afterwards (a STUDY_SUBMIT_DIR left behind sent a later test's worker to that folder)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_slurm_task_runs_with_its_env_and_threads_and_requeues_the_same_call_on_a_preemption(monkeypatch,
                                                                                              job_environ):
    """submitit calls `checkpoint` on a timeout or preemption: the same call again (resumed from the run folder);
    None would end the job there."""
    called = []
    monkeypatch.setattr("study.launch.runner.run_job", lambda *a: called.append((a, os.environ.get("STUDY_T"))))
    for name in ("STUDY_T", "STUDY_THREADS", "SLURM_CPUS_PER_TASK"):  # absent before the call (job_environ restores)
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    env = {"STUDY_T": "x", "SLURM_CPUS_PER_TASK": str(want)}
    task, args = SlurmTask(), (Job("p1", "pretrain", {}), "/wd", "g", env)
    try:
        assert task(*args) is None
        assert called == [(args[:3], "x")] and torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
    delayed = task.checkpoint(*args)
    assert delayed.function is task and delayed.args == args


def test_a_slurm_task_reads_relative_paths_from_the_folder_study_submit_ran_in(monkeypatch, tmp_path, capsys,
                                                                              job_environ):
    """Slurm starts a job in sbatch's folder only where the node has it (else /tmp), and a profile's
    `additional: {chdir: ...}` moves it: the task enters the submit's folder, where a grid's relative
    `pretrained.encoder_file` is read from; one the node lacks is said, and the job stays where it started."""
    submitted, started = tmp_path / "submitted", tmp_path / "started"
    submitted.mkdir()
    started.mkdir()
    seen = []
    monkeypatch.setattr("study.launch.runner.run_job", lambda *a: seen.append(os.getcwd()))
    monkeypatch.setattr("study.launch.runner.threads_from_env", lambda: None)
    monkeypatch.chdir(started)
    SlurmTask()(Job("p1", "pretrain", {}), "/wd", "g", {SUBMIT_DIR: str(submitted)})
    monkeypatch.chdir(started)
    SlurmTask()(Job("p1", "pretrain", {}), "/wd", "g", {SUBMIT_DIR: str(tmp_path / "not-on-this-node")})
    SlurmTask()(Job("p1", "pretrain", {}), "/wd", "g", {})  # a call queued by an older study: where it started
    assert seen == [str(submitted), str(started), str(started)]
    err = capsys.readouterr().err
    assert f"the folder study submit ran in, {tmp_path / 'not-on-this-node'}, cannot be entered" in err, err
    assert f"is read from {started}" in err, err
