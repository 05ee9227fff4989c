"""benchmarks/launch_bench.py --quick runs (sacct stubbed inside it: no Slurm is asked): the checks' growth per job
and the failed arrays' query against its reference."""
import re

from benchmark_runs import bench_lines


def test_launch_bench_quick_prints_the_checks_and_the_query():
    lines = bench_lines("launch_bench.py", "--quick")
    assert [line.split()[1] for line in lines[:2]] == ["2000", "10000"]
    assert all("ratio_to_reference: " in line for line in lines[:2])
    assert float(re.fullmatch(r"check time per job, 10 seeds over 2: ([\d.]+) \(1\.0: linear\)", lines[2]).group(1)) > 0
    ref, query, ratio = map(float, re.fullmatch(r"failed Slurm jobs: 2000 in 4 arrays  listing \+ log tails "
                                                r"\(reference\): ([\d.]+) s  query: ([\d.]+) s  "
                                                r"ratio_to_reference: ([\d.]+)", lines[-1]).groups())
    assert ratio > 0 and query >= 0 and ref >= 0
