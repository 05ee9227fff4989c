"""`study submit --cluster local` on a GPU machine: which GPU each worker gets. No GPU here: nvidia-smi's presence,
torch.cuda.is_available and torch.cuda.device_count are mocked (the count CUDA reports is relative to the
parent's CUDA_VISIBLE_DEVICES, as the mock's callers assume); the environment is real, through monkeypatch."""
from __future__ import annotations

import pytest
import torch

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


def test_without_gpus_one_worker_per_core(monkeypatch):
    monkeypatch.setattr(scheduler.shutil, "which", lambda name: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    n, devices = scheduler.default_workers()
    assert n == scheduler.usable_cores() and devices == [None] * n
