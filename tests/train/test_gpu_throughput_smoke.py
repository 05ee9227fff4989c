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
    fields = {k: float(v) for k, v in (line.split(": ", 1) for line in lines[1:])}
    assert lines[-1].startswith("simclr_vs_bare_per_view: ")
    assert fields["simclr_step_views_per_s"] == pytest.approx(2 * fields["simclr_step_images_per_s"], abs=0.11)
    ratio = fields["simclr_step_views_per_s"] / fields["bare_model_fwd_bwd_views_per_s"]  # views over views
    assert fields["simclr_vs_bare_per_view"] > 0 and fields["simclr_vs_bare_per_view"] == pytest.approx(ratio, rel=0.01)
