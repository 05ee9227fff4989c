"""Linear probes at six labeled sizes vs the one feature extraction they share (study.evaluate), same device.

Measures, in one run:
  extraction: per image, decode of a ~500x375 JPEG + the eval transform (resize 256, centre crop 224) + a ResNet-50
              forward (random weights: the cost is the same) in batches, decoded by `--workers` DataLoader
              processes as an evaluation does (study.evaluate.features.forward_rows: its worker set-up and
              allocator setting), timed in the steady state on at least `--sample` images (see
              extraction_seconds_per_image) before and after the probes (the mean of the two is used), and scaled
              to the rows an evaluation extracts (the largest labeled size + the test split);
  probes:     study.evaluate.linear.train_probe (weight decay chosen on a held-out part, then the final fit) at six
              nested labeled sizes (or `--sizes`), on 2048-d features of a synthetic `--classes`-class problem whose
              labeled prefixes are class-balanced as `Manifest.labeled` gives them, scored on the test rows: the
              work of a `linear` evaluation after extraction.
Prints both, the probes' top-1 and peak memory (`probe_peak_memory_gb`), and as its last line
`probe_share_of_extraction: <probe seconds / extraction seconds>` (the issue's bound: <= 0.10).

    .venv/bin/python benchmarks/probe_bench.py [--quick] [--classes 1000] [--per-class 16] [--select-iter 20]
    .venv/bin/python benchmarks/probe_bench.py --classes 1000 --sizes 10k,50k,100k,250k --test-per-class 50  # a grid's
    .venv/bin/python benchmarks/probe_bench.py --device cuda --workers 8 --sample 2048 --batch 256   # on a GPU
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import math
import time

import numpy as np
import torch
import torchvision
from PIL import Image

from augment_bench import make_jpegs
from study.evaluate import linear, ranking
from study.evaluate.config import LinearConfig
from study.evaluate.features import padded, resolve_device
from study.manifests.sizes import parse_sizes
from study.train.allocator import retain_freed_memory
from study.train.augment import build_augment
from study.train.data import collate_views, opencv_before_fork, worker_init

SEPARATION = 0.15  # class-mean scale vs unit noise: top-1 ~0.5 at 16 labels per class, 100 classes
PREFETCH = 2  # batches each loader worker is handed ahead: torch's default, which forward_rows' DataLoader keeps


class JpegViews(torch.utils.data.Dataset):
    """Row k: the eval transform of in-memory JPEG k mod len(jpegs), as study.train.data.ViewDataset gives it."""

    def __init__(self, jpegs: list[bytes], aug, n: int):
        self.jpegs, self.aug, self.n = jpegs, aug, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        return self.aug.sample(Image.open(io.BytesIO(self.jpegs[k % len(self.jpegs)])), np.random.default_rng(k)), 0


def extraction_seconds_per_image(n: int, batch: int, device: torch.device, workers: int) -> float:
    """Decode + eval transform + ResNet-50 forward (pooled 2048-d features), per image, on `device`, through a
    DataLoader with `workers` decoding processes (0: in this process), as study.evaluate.features.forward_rows
    extracts (its worker_init, retain_freed_memory, pinned memory on CUDA, full batches).

    Timed in the steady state: the model and the device are warmed up on a batch before the loader starts (a long
    first forward, CUDA's and cuDNN's start-up, would otherwise let the workers decode ahead while nothing is timed);
    with loader workers, the batches they are handed at the start (workers x PREFETCH) are not timed, then whole
    rounds of the workers (a multiple of `workers` batches, at least `n` images) are, so that the timed batches are
    decoded inside the timed span, at the pace the consumer and the workers keep together."""
    aug = build_augment({"preset": "eval", "image_size": 224})
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    model = model.eval().to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    jpegs = make_jpegs(16)
    retain_freed_memory()  # as forward_rows does before its DataLoader (the forked workers inherit it)
    skip = workers * PREFETCH
    per_round = max(1, workers)
    timed = math.ceil(max(1, math.ceil(n / batch)) / per_round) * per_round
    dataset = JpegViews(jpegs, aug, (skip + timed) * batch)
    with torch.no_grad():
        views, _ = collate_views([dataset[k] for k in range(batch)])
        (x,) = aug.batch([views[0].to(device)], gen)
        model(padded(x, batch)).float().cpu()
    opencv_before_fork(workers)  # as forward_rows does: the views decoded above may have run OpenCV's pool here
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=collate_views,
                                         pin_memory=device.type == "cuda",
                                         worker_init_fn=worker_init if workers else None)
    t, done = (time.perf_counter() if skip == 0 else None), 0
    with torch.no_grad():
        for i, (views, _) in enumerate(loader):
            (x,) = aug.batch([views[0].to(device, non_blocking=True)], gen)
            model(padded(x, batch)).float()[:len(x)].cpu()
            if i == skip - 1:
                t = time.perf_counter()
            elif i >= skip:
                done += x.shape[0]
    return (time.perf_counter() - t) / done


def synthetic_features(classes: int, per_class: int, test_per_class: int, dim: int, seed: int = 0):
    """Non-negative features of a Gaussian class mixture (pooled ResNet features are post-ReLU); class separation set
    for a mid-range top-1. The labeled pool is in the order of `Manifest.labeled` (study.manifests.ranking's
    class-balanced order: each class's k-th image before any class's (k+1)-th, classes in one fixed random order), so
    that its prefix of n rows is a labeled subset as an evaluation gets it: at n = classes one image per class (no
    class has two to hold one out: the probe takes its single-fit path), never classes left without images. The test
    rows are shuffled (their order changes nothing)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g) * SEPARATION

    def draw(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.relu(means[y] + torch.randn(len(y), dim, generator=g)), y

    pool = torch.randperm(classes, generator=g).repeat(per_class)  # rows are i.i.d. within a class
    test = torch.arange(classes).repeat_interleave(test_per_class)
    return draw(pool), draw(test[torch.randperm(len(test), generator=g)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 classes, 16 extraction images (about 1 min on CPU)")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--per-class", type=int, default=16, help="labeled pool per class (the largest labeled size)")
    ap.add_argument("--sizes", default=None,
                    help="labeled sizes, comma-separated (e.g. a grid's 10k,50k,100k,250k; the pool is then the "
                         "largest); default: six log-spaced sizes from 1 to --per-class labels per class")
    ap.add_argument("--test-per-class", type=int, default=5)
    ap.add_argument("--sample", type=int, default=64,
                    help="images timed for the extraction rate (at least: whole batches, whole rounds of the workers)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=0,
                    help="decoding processes of the extraction's DataLoader (0: in the timing process)")
    ap.add_argument("--tf32", action="store_true", default=None,
                    help="LinearConfig.tf32: the probes' float32 matmuls as TF32 on a CUDA device")
    for f in dataclasses.fields(LinearConfig):
        if f.type in ("int", int):
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=None, help=f"LinearConfig.{f.name}")
    args = ap.parse_args(argv)
    if args.quick:
        args.classes, args.sample = 100, 16
    device = resolve_device(args.device)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(LinearConfig)
                 if getattr(args, f.name, None) is not None}
    cfg = LinearConfig(**overrides)

    if args.sizes:
        sizes = parse_sizes(args.sizes, "--sizes")
        args.per_class = math.ceil(sizes[-1] / args.classes)
    else:
        sizes = sorted({int(round(args.classes * args.per_class ** (k / 5))) for k in range(6)})  # 1 .. per_class
    # the extraction rate is sampled before and after the probes (their mean is used), so that other load on a
    # shared machine weighs on both parts of the ratio alike rather than on the short extraction sample alone
    before = extraction_seconds_per_image(args.sample, args.batch, device, args.workers)
    (x, y), (xt, yt) = synthetic_features(args.classes, args.per_class, args.test_per_class, 2048)
    pool = sizes[-1]  # an evaluation extracts labeled(largest) and the whole test split
    x, y = x[:pool], y[:pool]

    warmup = probe_warmup_seconds(x, y, args.classes, cfg, device)
    base = reset_peak_memory(device)
    t = time.perf_counter()
    top1 = {}
    for n in sizes:
        probe, _ = linear.train_probe(x[:n].to(device), y[:n].to(device), args.classes, cfg, seed=0)
        top1[n] = ranking.hit_rate(ranking.ranked(probe.blocks(xt.to(device)), 1)[0], yt, 1)  # as the evaluation
        print(f"  {n} labels: top-1 {top1[n]:.3f}, {time.perf_counter() - t:.1f} s so far", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    probes = time.perf_counter() - t
    peak = peak_memory_bytes(device)
    peak = None if peak is None or base is None else peak - base
    after = extraction_seconds_per_image(args.sample, args.batch, device, args.workers)
    per_image = (before + after) / 2
    extraction = per_image * (pool + len(yt))

    print(f"device {device}, torch threads {torch.get_num_threads()}, ResNet-50 224 px, 2048-d features, "
          f"{args.classes} classes")
    print(f"linear config: select_iter {cfg.select_iter}, max_iter {cfg.max_iter}, "
          f"{len(cfg.weight_decays)} weight decays, tf32 {cfg.tf32}")
    print(f"extraction_ms_per_image: {per_image * 1e3:.2f}  (before the probes {before * 1e3:.2f}, after "
          f"{after * 1e3:.2f}; decode + eval transform + forward, >= {args.sample} images timed in the steady state "
          f"each time, {args.workers} loader workers, batch {args.batch})")
    print(f"extraction_seconds: {extraction:.1f}  ({pool} labeled-pool + {len(yt)} test images)")
    print(f"labeled_sizes: {sizes}")
    print("probe_top1: " + ", ".join(f"{n}: {a:.3f}" for n, a in top1.items()))
    print(f"probe_seconds: {probes:.1f}")
    if peak is not None:
        data = (pool + len(yt)) * x.shape[1] * 4
        print(f"probe_peak_memory_gb: {peak / 1e9:.2f}  ({peak / data:.1f}x the labeled-pool and test features, "
              f"{data / 1e6:.1f} MB; the peak of {'CUDA memory allocated' if device.type == 'cuda' else 'resident'} "
              f"memory during the probes over that at their start)")
    print(f"probe_warmup_seconds: {warmup:.2f}  (a first probe on 2 labels per class, not timed above: the "
          f"device's one-time start-up, as the extraction's warm-up is not timed; share with it "
          f"{(probes + warmup) / extraction:.3f})")
    print(f"probe_share_of_extraction: {probes / extraction:.3f}")


def probe_warmup_seconds(x: torch.Tensor, y: torch.Tensor, classes: int, cfg: LinearConfig,
                         device: torch.device) -> float:
    """The seconds of a first train_probe on 2 labels per class (weight-decay path and refit): on a GPU it loads
    the libraries and kernels the probes use (cuBLAS, the triangular solves, lazily loaded CUDA modules), the one-time
    start-up that the steady-state extraction timing leaves out as well."""
    t = time.perf_counter()
    n = min(len(y), 2 * classes)
    linear.train_probe(x[:n].to(device), y[:n].to(device), classes, cfg, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def reset_peak_memory(device: torch.device) -> int | None:
    """Start a new peak: CUDA's allocator statistics, or (Linux) the process's peak RSS (/proc/self/clear_refs);
    returns the memory in use now, the baseline of `peak_memory_bytes` (None: unknown)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _proc_status_bytes("VmRSS:")


def peak_memory_bytes(device: torch.device) -> int | None:
    """The peak since `reset_peak_memory`: bytes CUDA allocated, or the process's peak RSS (VmHWM); None unknown."""
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else _proc_status_bytes("VmHWM:")


def _proc_status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
    except (OSError, StopIteration):
        return None


if __name__ == "__main__":
    main()
