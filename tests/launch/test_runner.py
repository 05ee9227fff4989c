"""study/launch/runner.py: what a job process decides on its own (the end-to-end runs are test_local's)."""
from __future__ import annotations

import pytest
import torch

from study.launch.runner import _is_main_task, threads_from_env


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
