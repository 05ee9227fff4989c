"""study.manifests.parallel.run_jobs: the same results here and in a pool; progress that a log file can read."""
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
