"""What every sbatch call of `study submit` shares: the job script submitit writes (`sbatch_script`) and the
environment sbatch runs in (`submission_env`: the submitting shell's Slurm variables removed)."""
from __future__ import annotations

import os
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

KEPT_SLURM_VARIABLES = ("SLURM_CONF",)  # which cluster to submit to


@contextmanager
def submission_env() -> Iterator[None]:
    """The environment without the submitting shell's Slurm variables (`submitit.helpers.clean_env`), SLURM_CONF
    kept; restored at the end."""
    import submitit

    kept = {k: os.environ[k] for k in KEPT_SLURM_VARIABLES if k in os.environ}
    with submitit.helpers.clean_env():
        os.environ.update(kept)
        yield


def sbatch_script(params: dict[str, Any], folder: Path, n_tasks: int, python: str | None = None) -> str:
    """The sbatch script submitit writes for an array of `n_tasks` with these parameters (its own generator);
    `python`: the command that runs Python there (a profile's `python`), else this interpreter."""
    from submitit.slurm.slurm import _make_sbatch_string

    python = python or shlex.quote(sys.executable)
    command = " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])
    return _make_sbatch_string(command=command, folder=folder, map_count=n_tasks if n_tasks > 1 else None, **params)
