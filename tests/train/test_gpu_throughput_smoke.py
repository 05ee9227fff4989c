"""benchmarks/gpu_throughput.py runs (tiny, on CPU) and prints its figures."""
import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_throughput.py"


import pytest


@pytest.mark.parametrize("flag", ["--smoke", "--quick"])  # `make benchmarks` passes --quick to every benchmark
def test_gpu_throughput_smoke_prints_ratio(capsys, flag):
    spec = importlib.util.spec_from_file_location("gpu_throughput", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([flag]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("simclr_vs_bare_per_view: ")
    assert float(lines[-1].split()[-1]) > 0
