"""benchmarks/manifest_bench.py --quick runs: a tenth of iNat21's train.json built into a manifest, both timings
printed (its images are empty files, which the reader lists as it lists real ones)."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_manifest_bench_quick_builds_and_prints_both_timings():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "manifest_bench.py"), "--quick"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("generated train.json: 270000 images, 1000 categories")
    assert re.fullmatch(r"bare json\.load: +[\d.]+ s +peak [\d.]+ GB", lines[1]), lines[1]
    assert re.fullmatch(r" +[\d.]+ s +peak [\d.]+ GB +\([\d.]+ x json\.load\)", lines[3]), lines[3]
    assert lines[-1].endswith("not judged (--quick ran a tenth of the size)")
