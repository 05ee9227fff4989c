"""benchmarks/scan_bench.py --quick runs (20k empty files): both readers' rates and the verdict printed."""
import re

from benchmark_runs import bench_lines


def test_scan_bench_quick_prints_both_rates_and_the_verdict():
    lines = bench_lines("scan_bench.py", "--quick")
    assert lines[0].startswith("made 20000 empty files in 500 class folders")
    rates = [float(re.fullmatch(r".+: +([\d.]+) s +([\d,]+) files/s", line).group(2).replace(",", ""))
             for line in lines[1:3]]
    assert lines[1].startswith("study imagefolder reader:") and lines[2].startswith("torchvision-style os.walk:")
    speedup = float(re.fullmatch(r"speed-up ([\d.]+)x; target >= 300,000 files/s: (met|NOT met)", lines[-1]).group(1))
    assert speedup > 0 and abs(speedup - rates[0] / rates[1]) <= 0.02 + 0.1 * speedup  # ours over the reference
