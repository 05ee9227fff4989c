"""study.manifests.parallel.run_jobs: the same results here and in a pool; progress that a log file can read."""
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.manifests.parallel import run_jobs


def _odd(n: int) -> str | None:
    return f"{n} is odd" if n % 2 else None


def test_results_in_job_order_here_and_in_a_pool_and_progress_lines_off_a_terminal(capsys):
    jobs = list(range(40))
    assert run_jobs(_odd, jobs, 1, "numbers") == [f"{n} is odd" for n in jobs if n % 2]
    assert run_jobs(_odd, jobs, 2, "numbers") == [f"{n} is odd" for n in jobs if n % 2]
    err = capsys.readouterr().err  # not a terminal: whole lines, a tenth at a time, no carriage returns
    assert "\r" not in err and err.splitlines()[:2] == ["[manifest] 4/40 numbers", "[manifest] 8/40 numbers"]
    assert err.count("[manifest] 40/40 numbers\n") == 2


def test_the_last_progress_line_says_every_job_done_when_the_count_is_not_a_multiple_of_the_step(capsys):
    """25 jobs, a line every 2: the 25th still gets its line (a log would otherwise end at 24/25)."""
    assert run_jobs(_odd, list(range(25)), 1, "numbers") == [f"{n} is odd" for n in range(25) if n % 2]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[manifest] 2/25 numbers" and lines[-1] == "[manifest] 25/25 numbers" and len(lines) == 13


_OFFSET = 0


def _set_offset(n: int) -> None:
    global _OFFSET
    _OFFSET = n


def _shifted(n: int) -> str:
    return str(n + _OFFSET)


def test_the_initializer_sets_up_the_jobs_here_as_in_a_pool(capsys):
    """One worker runs the jobs in this process: the initializer (what `verify --files` and `materialize` set up
    each worker with) must run here too."""
    try:
        for workers in (2, 1):
            assert run_jobs(_shifted, [1, 2, 3], workers, "jobs", initializer=_set_offset, initargs=(10,)) == \
                ["11", "12", "13"]
    finally:
        _set_offset(0)


_ORPHAN_SCRIPT = """
import multiprocessing, os, sys, time
from study.manifests.parallel import run_jobs


def job(n):
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
    time.sleep(0.1)

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[2])
    run_jobs(job, list(range(2000)), 2, "jobs")
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("start_method", ["fork", "forkserver"])  # forkserver: Python 3.14's default on Linux
def test_pool_workers_end_when_the_parent_is_killed(tmp_path, start_method):
    """A `materialize --workers N` killed by SIGKILL: its workers must not live on as orphans waiting for jobs (they
    hold the folder lock they inherited, so every rerun was refused as `another materialize is writing`). Forked
    from a forkserver, they end with it, and it with this process."""
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    script = tmp_path / "run.py"
    script.write_text(_ORPHAN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, str(script), str(pids_dir), start_method], env=env)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = [int(p.name) for p in pids_dir.iterdir()]
        assert len(workers) == 2, "the pool's workers did not start"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "pool workers outlived their killed parent"
    finally:
        proc.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_pool_runs_under_the_forkserver_start_method(tmp_path):
    """Python 3.14's default on Linux: a forkserver's child is not this process's, so every worker took its parent
    for dead and exited (BrokenProcessPool: no `materialize --workers N` ran)."""
    script = tmp_path / "run.py"
    script.write_text("import multiprocessing\nfrom study.manifests.parallel import run_jobs\n\n"
                      "def job(n):\n    return str(n)\n\nif __name__ == '__main__':\n"
                      "    multiprocessing.set_start_method('forkserver')\n"
                      "    print(len(run_jobs(job, list(range(20)), 2, 'jobs')))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path.cwd()), str(tmp_path),
                                                                   os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "20"), done.stderr[-2000:]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_pool_worker_whose_parent_died_before_it_started_exits_and_is_told_this_process(monkeypatch):
    """A worker checks its parent against the pid of the process that made the pool (it read its own parent's pid,
    which is whoever adopted it once that process died): one started after that died exits before its initializer,
    where it would wait for jobs forever holding the locks it inherited."""
    import study.manifests.parallel as parallel

    script = ("import os, sys\nfrom study.manifests.parallel import _start_worker\n"
              "_start_worker(int(sys.argv[1]) or os.getpid(), print, ('initialized',))\nprint('went on')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")])))
    for parent, said in ((os.getpid(), (0, "initialized\nwent on")), (0, (1, ""))):  # 0: not its parent (itself)
        done = subprocess.run([sys.executable, "-c", script, str(parent)], env=env, capture_output=True, text=True,
                              timeout=60)
        assert (done.returncode, done.stdout.strip()) == said, done.stderr[-2000:]
    made, real = [], parallel.ProcessPoolExecutor
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda *a, **kw: made.append(kw) or real(*a, **kw))
    assert run_jobs(_odd, [1, 2, 3], 2, "numbers") == ["1 is odd", "3 is odd"]
    assert made[0]["initargs"][0] == os.getpid()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_rewritten_in_place_and_few_jobs_get_a_line_each(monkeypatch, capsys):
    """On a terminal: a line rewritten every hundredth of the jobs, ended once all are done; off it, fewer than ten
    jobs still get a line each."""
    terminal = _Terminal()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        run_jobs(_odd, list(range(200)), 1, "numbers")
    said = terminal.getvalue()
    assert said.startswith("\r[manifest] 2/200 numbers\r[manifest] 4/200")
    assert said.endswith("\r[manifest] 200/200 numbers\n")
    run_jobs(_odd, [1, 2, 3], 1, "numbers")  # off a terminal, fewer than ten jobs: a line for each
    assert capsys.readouterr().err.splitlines() == [f"[manifest] {i}/3 numbers" for i in (1, 2, 3)]


def test_off_a_terminal_a_slow_run_gets_a_line_each_time_the_interval_passes(capsys, monkeypatch):
    """A tenth of ImageNet's decodes takes minutes: a log gets a line whenever PROGRESS_EVERY_S has passed, too."""
    import study.manifests.parallel as parallel
    monkeypatch.setattr(parallel, "PROGRESS_EVERY_S", 0.0)
    assert run_jobs(_odd, list(range(40)), 1, "numbers") == [f"{n} is odd" for n in range(40) if n % 2]
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"[manifest] {i}/40 numbers" for i in range(1, 41)]
