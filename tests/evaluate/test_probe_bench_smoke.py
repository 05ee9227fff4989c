"""benchmarks/probe_bench.py runs (tiny, on CPU): probes at six labeled sizes, their share of the extraction."""
import ast
import importlib.util
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def test_probe_bench_smoke_prints_share(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))  # it imports augment_bench's JPEG maker, as when run as a script
    spec = importlib.util.spec_from_file_location("probe_bench", BENCH_DIR / "probe_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--classes", "10", "--per-class", "8", "--test-per-class", "2", "--sample", "2", "--batch", "2",
              "--device", "cpu", "--select-iter", "3", "--max-iter", "3"])
    lines = capsys.readouterr().out.rstrip().splitlines()
    fields = dict(line.split(": ", 1) for line in lines if ": " in line and not line.startswith(" "))
    assert "select_iter 3, max_iter 3" in fields["linear config"]  # the LinearConfig overrides reach the probes
    assert sum(line.startswith("  ") and "labels: top-1" in line for line in lines) == 6  # progress per size
    sizes = ast.literal_eval(fields["labeled_sizes"])
    assert len(sizes) == 6 and sizes[0] == 10 and sizes[-1] == 80  # 1 .. per_class labels per class
    assert lines[-1].startswith("probe_share_of_extraction: ") and float(lines[-1].split()[-1]) > 0
