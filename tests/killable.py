"""Run a script that may hang (a forked child stuck for ever) without hanging the test run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_script(path: Path, *args: str, timeout: float, hung: str) -> str:
    """Run the Python file `path` with `args` (the repository first on PYTHONPATH) in a process group of its own ->
    its output (stdout and stderr); the test fails when it exits non-zero, or says `hung` when it outlives `timeout`
    seconds (the whole group, its forked children too, is killed first)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(hung)
    assert proc.returncode == 0, out
    return out
