"""benchmarks/report_bench.py runs (one seed: 436 jobs): each reader's seconds and ratio, the table's shape."""
import re

from benchmark_runs import bench_lines


def test_report_bench_smoke_prints_each_readers_ratio():
    lines = bench_lines("report_bench.py", "--seeds", "1")
    assert lines[0].startswith("jobs: 436; result files: ")
    rows, columns = map(int, re.fullmatch(r"table: (\d+) rows x (\d+) columns", lines[1]).groups())
    assert rows > 436 and columns > 20  # a row per metric of ~97% of the jobs, the protocol's columns
    ratios = {line.split(":")[0]: float(line.rsplit(" ", 1)[1]) for line in lines if "ratio_to_reference" in line}
    assert set(ratios) == {"read_results", "records_to_table (every record)", "gather (the plan's)", "study status",
                           "build_report"} and all(r > 0 for r in ratios.values())
    assert lines[-1].startswith("peak memory: ")
