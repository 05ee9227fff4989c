"""benchmarks/augment_bench.py runs (small, on CPU): both sides do the same work; the ratios are ours over theirs."""
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from study.train.augment import build_augment

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "augment_bench.py"


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("augment_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_augment_bench_smoke_prints_ratios_of_its_rates(bench, capsys):
    threads, cv2_threads = torch.get_num_threads(), bench.cv2.getNumThreads()
    try:
        bench.main(["--quick", "--rounds", "1", "--size", "64", "--batch", "8"])  # one core for both: set back after
    finally:
        torch.set_num_threads(threads)
        bench.cv2.setNumThreads(cv2_threads)
    lines = capsys.readouterr().out.rstrip().splitlines()
    fields = {k: float(v.split()[0]) for k, v in (line.split(": ", 1) for line in lines if ": " in line)}
    ref, ftz, ours = (fields[k] for k in ("torchvision_v2_images_per_s", "torchvision_v2_flush_denormal_images_per_s",
                                          "ours_images_per_s"))
    assert min(ref, ftz, ours) > 0
    assert lines[-1].startswith("speedup_vs_torchvision: ")  # the last line: against the reference as written
    assert fields["speedup_vs_torchvision"] == pytest.approx(ours / ref, rel=0.01, abs=0.006)
    assert lines[-2].startswith("speedup_vs_torchvision_flush_denormal: ")
    assert fields["speedup_vs_torchvision_flush_denormal"] == pytest.approx(ours / ftz, rel=0.01, abs=0.006)


@pytest.mark.parametrize("size", [224, 64])
def test_reference_and_ours_give_the_same_views(bench, size):
    """Per image: two views of size x size, float32, ImageNet-normalised, from the same JPEG, on both sides (the
    speed-up compares the same work); the reference's blur kernel is ours (10% of the side, made odd)."""
    jpeg = bench.make_jpegs(1)[0]
    tf = bench.reference(size)
    aug = build_augment({"preset": "simclr", "image_size": size})
    blur = [t for t in tf.transforms if isinstance(t, bench.T.RandomApply)
            and isinstance(t.transforms[0], bench.T.GaussianBlur)]
    assert list(blur[0].transforms[0].kernel_size) == [aug.cfg.blur_kernel] * 2
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    theirs = [tf(img) for _ in range(2)]
    samples = [aug.sample(Image.open(io.BytesIO(jpeg)), np.random.default_rng([0, k])) for k in range(2)]
    ours = aug.batch([torch.stack([s[v] for s in samples]) for v in range(aug.num_views)], torch.Generator())
    assert aug.num_views == len(theirs) == 2
    for a, b in zip(theirs, ours):
        assert a.dtype == b.dtype == torch.float32
        assert tuple(a.shape) == (3, size, size) and tuple(b.shape) == (2, 3, size, size)
    lo, hi = (0 - np.array(bench.MEAN)) / np.array(bench.STD), (1 - np.array(bench.MEAN)) / np.array(bench.STD)
    for x in [*theirs, *ours]:  # normalised with the same mean and std: within [(0 - mean) / std, (1 - mean) / std]
        planes = x.reshape(-1, 3, size * size)
        low, high = planes.amin((0, 2)).numpy(), planes.amax((0, 2)).numpy()
        assert bool((low >= lo - 1e-5).all() and (high <= hi + 1e-5).all())


def test_reference_and_ours_normalise_alike(bench):
    """A black image comes out of both pipelines as (0 - mean) / std in every pixel (each photometric step keeps
    black black): the range check above also holds for views left in [0, 1]."""
    buf = io.BytesIO()
    Image.new("RGB", (96, 80)).save(buf, "JPEG")
    tf, aug = bench.reference(64), build_augment({"preset": "simclr", "image_size": 64})
    samples = [aug.sample(Image.open(io.BytesIO(buf.getvalue())), np.random.default_rng([0, k])) for k in range(2)]
    ours = aug.batch([torch.stack([s[v] for s in samples]) for v in range(aug.num_views)], torch.Generator())
    want = torch.tensor([(0 - m) / s for m, s in zip(bench.MEAN, bench.STD)]).view(3, 1, 1)
    for x in [tf(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), *(v for b in ours for v in b)]:
        assert torch.allclose(x, want.expand_as(x), atol=0.05)
