"""scripts/slurm_cluster.sh's pid files: a stale one whose pid now runs another program is not a live daemon, and
stopping it signals nothing (its functions sourced; no daemon is started or stopped)."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm_cluster.sh"


def _call(function: str, pidfile: Path) -> int:
    return subprocess.run(["bash", "-c", f'source "{SCRIPT}"; {function} "$1"', "_", str(pidfile)],
                          capture_output=True, timeout=30).returncode


@pytest.fixture
def program(tmp_path):
    """Start `name` (a copy of sleep under that name, so that its /proc comm is `name`) -> its Popen."""
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        exe = tmp_path / name
        shutil.copy(shutil.which("sleep"), exe)
        started.append(subprocess.Popen([str(exe), "60"]))
        return started[-1]

    yield start
    for p in started:
        p.kill()
        p.wait()


def _pidfile(tmp_path: Path, daemon: str, pid: int) -> Path:
    f = tmp_path / "run" / f"{daemon}.pid"
    f.parent.mkdir(exist_ok=True)
    f.write_text(f"{pid}\n")
    return f


def test_a_pid_file_whose_pid_runs_its_daemon_is_alive_and_is_stopped(tmp_path, program):
    daemon = program("slurmd")
    f = _pidfile(tmp_path, "slurmd", daemon.pid)
    assert _call("alive", f) == 0
    assert _call("stop_pidfile", f) == 0
    assert daemon.wait(timeout=10) is not None  # stopped by the script


def test_a_stale_pid_file_whose_pid_runs_another_program_is_neither_alive_nor_signalled(tmp_path, program):
    other = program("sleep")  # say the test run itself, after a reboot reused the daemon's old pid
    f = _pidfile(tmp_path, "slurmctld", other.pid)
    assert _call("alive", f) == 1
    assert _call("stop_pidfile", f) == 0
    time.sleep(0.3)
    assert other.poll() is None  # still running


def test_a_pid_file_of_a_gone_process_or_an_empty_one_is_not_alive(tmp_path, program):
    gone = program("munged")
    gone.kill()
    gone.wait()
    assert _call("alive", _pidfile(tmp_path, "munged", gone.pid)) == 1
    assert _call("alive", _pidfile(tmp_path, "slurmdbd", 0).with_name("empty.pid")) == 1  # no such file
    empty = tmp_path / "run" / "slurmd.pid"
    empty.write_text("")
    assert _call("alive", empty) == 1


def test_mariadb_counts_as_the_mysqld_pid_files_daemon(tmp_path, program):
    assert _call("alive", _pidfile(tmp_path, "mysqld", program("mariadbd").pid)) == 0
