"""`study submit --cluster local`: which GPU each worker gets, and how many workers a CPU quota allows. No GPU here:
nvidia-smi's presence, torch.cuda.is_available and torch.cuda.device_count are mocked (the count CUDA reports is
relative to the parent's CUDA_VISIBLE_DEVICES, as the mock's callers assume); the environment is real, through
monkeypatch."""
from __future__ import annotations

import io

import pytest
import torch
from launch_helpers import fake_plan, stand_in_workers

from study.grids import Job
from study.launch.local import scheduler


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(scheduler.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_workers_get_the_parents_visible_gpus_not_the_first_ones(two_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert scheduler.default_workers() == (2, ["2", "3"])


def test_visible_gpus_may_be_uuids_or_mig_ids(two_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f3a1c2e-0000-1111-2222-333344445555, MIG-0c9d7a6b-aaaa-bbbb")
    assert scheduler.default_workers() == (2, ["GPU-8f3a1c2e-0000-1111-2222-333344445555", "MIG-0c9d7a6b-aaaa-bbbb"])


def test_without_visible_devices_workers_get_indices(two_gpus, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert scheduler.default_workers() == (2, ["0", "1"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # set but empty reads as unset here (CUDA would see no GPU)
    assert scheduler.default_workers() == (2, ["0", "1"])


def test_gpu_devices_takes_as_many_entries_as_cuda_counts():
    assert scheduler.gpu_devices(2, "5,6,7") == ["5", "6"]
    assert scheduler.gpu_devices(3, None) == ["0", "1", "2"]


def test_gpus_torch_cannot_use_give_one_worker_per_core(monkeypatch):
    """nvidia-smi there and CUDA counting devices, but torch unable to use them (a driver too old for its CUDA):
    the workers run on the cores, not on GPUs each would fail to start on."""
    monkeypatch.setattr(scheduler.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(scheduler, "usable_cores", lambda: 3)
    assert scheduler.default_workers() == (3, [None, None, None])


def test_without_gpus_one_worker_per_core(monkeypatch):
    monkeypatch.setattr(scheduler.shutil, "which", lambda name: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(scheduler, "usable_cores", lambda: 3)  # what the CPU affinity and a cgroup quota allow
    assert scheduler.default_workers() == (3, [None, None, None])


def _worker_envs(monkeypatch, tmp_path, n_jobs: int, workers: int | None = None) -> list[dict]:
    """The environment each worker of `run_local` was started with, in job order, over `n_jobs` independent jobs
    started at once; each worker is `true` instead of study.launch.local.worker (it ends at once, without a result:
    failed)."""
    envs = {}

    def worker(job_id, env):
        envs[job_id] = env
        return ["true"]

    stand_in_workers(monkeypatch, worker)
    jobs = [Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in range(n_jobs)]
    scheduler.run_local(fake_plan("dev", jobs), tmp_path / "wd", workers=workers,
                        err=io.StringIO())
    return [envs[j.id] for j in jobs]


def test_each_worker_runs_on_its_own_gpu(two_gpus, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    envs = _worker_envs(monkeypatch, tmp_path, 2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["3", "5"]


def test_without_visible_devices_each_worker_is_given_its_own_gpu(two_gpus, monkeypatch, tmp_path):
    """Also with the parent's CUDA_VISIBLE_DEVICES unset, GPU 0's worker included: it would otherwise see both."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    envs = _worker_envs(monkeypatch, tmp_path, 2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1"]


def test_workers_set_by_the_flag_take_the_gpus_in_turn_and_share_the_cores(two_gpus, monkeypatch, tmp_path):
    """`--workers 4` on two GPUs: two workers per GPU (not the parent's whole CUDA_VISIBLE_DEVICES each), and each
    worker's torch threads are its share of the usable cores."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setattr(scheduler, "usable_cores", lambda: 8)
    envs = _worker_envs(monkeypatch, tmp_path, 4, workers=4)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["3", "5", "3", "5"]
    assert {(e["STUDY_THREADS"], e["OMP_NUM_THREADS"]) for e in envs} == {("2", "2")}


def test_more_workers_than_cores_run_one_thread_each(monkeypatch, tmp_path):
    """`--workers 4` on 2 usable cores: each worker still gets one thread (not 0, which its torch would refuse)."""
    monkeypatch.setattr(scheduler, "usable_cores", lambda: 2)
    monkeypatch.setattr(scheduler, "_gpu_count", lambda: 0)
    envs = _worker_envs(monkeypatch, tmp_path, 4, workers=4)
    assert {(e["STUDY_THREADS"], e["OMP_NUM_THREADS"]) for e in envs} == {("1", "1")}
