"""benchmarks/plan_bench.py runs (`--quick`, as `make benchmarks` passes it): the 10,000-job grid, both timings."""
import re

from benchmark_runs import bench_lines


def test_plan_bench_prints_both_timings_against_the_target():
    lines = bench_lines("plan_bench.py", "--quick")
    assert lines[0] == "jobs: 10000 (5000 pretrain, 5000 evaluate)"
    for line in lines[1:]:
        seconds, ratio = map(float, re.fullmatch(r".+: ([\d.]+) s  ratio_to_target: ([\d.]+)", line).groups())
        assert abs(ratio - seconds / 2.0) <= 0.001  # the seconds over the 2 s target
    assert lines[-1].startswith("plan_grid + check (no manifests): ")


def test_plan_bench_help_says_what_it_measures_without_running():
    lines = bench_lines("plan_bench.py", "--help", timeout=60)
    assert lines[0].startswith("usage: plan_bench.py") and not any(line.startswith("jobs:") for line in lines)
