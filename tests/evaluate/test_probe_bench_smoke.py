"""benchmarks/probe_bench.py runs (tiny, on CPU): probes at six labeled sizes, their share of the extraction."""
import ast
import importlib.util
import time
from pathlib import Path

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))  # it imports augment_bench's JPEG maker, as when run as a script
    spec = importlib.util.spec_from_file_location("probe_bench", BENCH_DIR / "probe_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_fields(bench, capsys, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    bench.main(["--device", "cpu", "--sample", "2", "--batch", "2", "--select-iter", "3", "--max-iter", "3", *argv])
    lines = capsys.readouterr().out.rstrip().splitlines()
    return lines, dict(line.split(": ", 1) for line in lines if ": " in line and not line.startswith(" "))


def test_probe_bench_smoke_prints_share(bench, capsys):
    lines, fields = run_fields(bench, capsys, ["--classes", "10", "--per-class", "8", "--test-per-class", "2"])
    assert "select_iter 3, max_iter 3" in fields["linear config"]  # the LinearConfig overrides reach the probes
    assert fields["linear config"].endswith("tf32 False")
    assert sum(line.startswith("  ") and "labels: top-1" in line for line in lines) == 6  # progress per size
    sizes = ast.literal_eval(fields["labeled_sizes"])
    assert len(sizes) == 6 and sizes[0] == 10 and sizes[-1] == 80  # 1 .. per_class labels per class
    assert "80 labeled-pool + 20 test images" in fields["extraction_seconds"]  # labeled(largest) + the test split
    per_image = float(fields["extraction_ms_per_image"].split()[0]) / 1e3
    extraction = float(fields["extraction_seconds"].split()[0])
    assert extraction == pytest.approx(per_image * 100, rel=0.01, abs=0.06)  # the rate scaled to the rows extracted
    assert lines[-1].startswith("probe_share_of_extraction: ")
    share = float(lines[-1].split()[-1])
    # probe seconds over extraction seconds, not the other way round (within the printed digits: 0.1 s, 0.001)
    assert share > 0 and abs(share * extraction - float(fields["probe_seconds"])) <= 0.051 + 0.0006 * extraction
    # the probes' memory: a peak over the memory at their start, against the 100 x 2048 float32 features they read
    peak_gb, ratio = fields["probe_peak_memory_gb"].split()[:2]
    assert float(peak_gb) >= 0 and ratio.startswith("(") and " features, 0.8 MB;" in fields["probe_peak_memory_gb"]
    # the warm-up probe is timed apart; the share with it adds its seconds to the probes'
    warmup = float(fields["probe_warmup_seconds"].split()[0])
    with_warmup = float(fields["probe_warmup_seconds"].rstrip(")").split()[-1])
    assert warmup > 0 and abs(with_warmup * extraction - float(fields["probe_seconds"]) - warmup) <= (
        0.06 + 0.0006 * extraction)


def test_probe_bench_sizes_set_the_probes_and_the_rows_extracted(bench, capsys):
    """--sizes (a grid's labeled sizes): a probe per size, the pool (and the rows extracted) the largest of them."""
    lines, fields = run_fields(bench, capsys, ["--classes", "10", "--sizes", "30,10,25", "--test-per-class", "3",
                                               "--tf32"])
    assert ast.literal_eval(fields["labeled_sizes"]) == [10, 25, 30]
    assert fields["linear config"].endswith("tf32 True")  # --tf32 is LinearConfig.tf32 (False in the run above)
    assert sum(line.startswith("  ") and "labels: top-1" in line for line in lines) == 3
    assert "30 labeled-pool + 30 test images" in fields["extraction_seconds"]


def test_synthetic_labeled_prefixes_are_class_balanced(bench):
    """Every prefix of the labeled pool holds as equal a number per class as Manifest.labeled's class-balanced order
    gives (so at n = classes, one image per class: the probe's no-held-out path, as in an evaluation)."""
    classes, per_class = 7, 4
    (x, y), (xt, yt) = bench.synthetic_features(classes, per_class, 2, 16)
    assert x.shape == (classes * per_class, 16) and bool((x >= 0).all())
    for n in range(1, len(y) + 1):
        counts = torch.bincount(y[:n], minlength=classes)
        assert int(counts.max() - counts.min()) <= 1, n
    assert sorted(yt.tolist()) == sorted(list(range(classes)) * 2)


def test_extraction_is_timed_in_the_steady_state(bench, monkeypatch):
    """A decode-bound extraction (each image 'decodes' in 25 ms of sleep in a loader worker, 2 workers: 12.5 ms per
    image) whose first forward takes 1 s, as CUDA's start-up does: the batches the workers decoded meanwhile must not
    count as decoded inside the timed span (timed from the end of the first batch, this measured 0.2-0.3 of the true
    cost here, the consumer's own overhead only)."""
    decode_s, workers = 0.025, 2

    class SleepyViews(torch.utils.data.Dataset):
        def __init__(self, jpegs, aug, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, k):
            time.sleep(decode_s)
            return (torch.zeros(3, 4, 4, dtype=torch.uint8),), 0

    class SlowStart(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls, self.fc = 0, torch.nn.Identity()

        def forward(self, x):
            self.calls += 1
            if self.calls == 1:
                time.sleep(1.0)
            return x.mean(dim=(2, 3))

    monkeypatch.setattr(bench, "JpegViews", SleepyViews)
    monkeypatch.setattr(bench, "make_jpegs", lambda n: [])
    monkeypatch.setattr(bench.torchvision.models, "resnet50", SlowStart)
    per_image = bench.extraction_seconds_per_image(16, 4, torch.device("cpu"), workers)
    assert per_image >= 0.6 * decode_s / workers
