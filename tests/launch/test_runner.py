"""study/launch/runner.py: what a job process decides on its own (the end-to-end runs are test_local's)."""
from __future__ import annotations

import pytest

from study.launch.runner import _is_main_task


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
