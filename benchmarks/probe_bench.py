"""Linear probes at six labeled sizes vs the one feature extraction they share (study.evaluate), same device.

Measures, in one run:
  extraction: per image, decode of a ~500x375 JPEG + the eval transform (resize 256, centre crop 224) + a ResNet-50
              forward (random weights: the cost is the same) in batches, decoded by `--workers` DataLoader
              processes as an evaluation does, timed on `--sample` images and scaled to the rows an evaluation
              extracts (the largest labeled size + the test split);
  probes:     study.evaluate.linear.train_probe (weight decay chosen on a held-out part, then the final fit) at six
              nested labeled sizes, on 2048-d features of a synthetic `--classes`-class problem, scored on the test
              rows: exactly the work of a `linear` evaluation after extraction.
Prints both, the probes' top-1, and as its last line `probe_share_of_extraction: <probe seconds / extraction
seconds>` (the issue's bound: <= 0.10).

    .venv/bin/python benchmarks/probe_bench.py [--quick] [--classes 1000] [--per-class 16] [--select-iter 20]
    .venv/bin/python benchmarks/probe_bench.py --device cuda --workers 8 --sample 2048 --batch 256   # on a GPU
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import time

import numpy as np
import torch
import torchvision
from PIL import Image

from augment_bench import make_jpegs
from study.evaluate import linear
from study.evaluate.config import LinearConfig
from study.evaluate.features import resolve_device
from study.train.augment import build_augment
from study.train.data import collate_views

SEPARATION = 0.15  # class-mean scale vs unit noise: top-1 ~0.5 at 16 labels per class, 100 classes


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
    DataLoader with `workers` decoding processes (0: in this process), as study.evaluate.features extracts.
    Timed from the end of the first batch, so that starting the workers is not counted."""
    aug = build_augment({"preset": "eval", "image_size": 224})
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    model = model.eval().to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    loader = torch.utils.data.DataLoader(JpegViews(make_jpegs(16), aug, n + batch), batch_size=batch,
                                         num_workers=workers, collate_fn=collate_views,
                                         pin_memory=device.type == "cuda")
    t, done = None, 0
    with torch.no_grad():
        for views, _ in loader:
            (x,) = aug.batch([views[0].to(device, non_blocking=True)], gen)
            model(x).float().cpu()
            if t is None:  # the first batch warms up the model and the workers
                t = time.perf_counter()
            else:
                done += x.shape[0]
    return (time.perf_counter() - t) / done


def synthetic_features(classes: int, per_class: int, test_per_class: int, dim: int, seed: int = 0):
    """Non-negative features of a Gaussian class mixture (pooled ResNet features are post-ReLU), shuffled so that
    every prefix is a labeled subset; class separation set for a mid-range top-1."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g) * SEPARATION

    def draw(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(classes).repeat_interleave(k)
        y = y[torch.randperm(len(y), generator=g)]
        return torch.relu(means[y] + torch.randn(len(y), dim, generator=g)), y

    return draw(per_class), draw(test_per_class)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 classes, 16 extraction images (about 1 min on CPU)")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--per-class", type=int, default=16, help="labeled pool per class (the largest labeled size)")
    ap.add_argument("--test-per-class", type=int, default=5)
    ap.add_argument("--sample", type=int, default=64, help="images timed for the extraction rate")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=0,
                    help="decoding processes of the extraction's DataLoader (0: in the timing process)")
    ap.add_argument("--matmul-precision", default="highest", choices=["highest", "high", "medium"],
                    help="torch.set_float32_matmul_precision for the probes ('high': TF32 on CUDA)")
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

    per_image = extraction_seconds_per_image(args.sample, args.batch, device, args.workers)
    (x, y), (xt, yt) = synthetic_features(args.classes, args.per_class, args.test_per_class, 2048)
    pool = len(y)
    sizes = sorted({int(round(args.classes * args.per_class ** (k / 5))) for k in range(6)})  # 1 .. per_class each
    extraction = per_image * (pool + len(yt))

    torch.set_float32_matmul_precision(args.matmul_precision)
    t = time.perf_counter()
    top1 = {}
    for n in sizes:
        probe, _ = linear.train_probe(x[:n].to(device), y[:n].to(device), args.classes, cfg, seed=0)
        top1[n] = linear.topk(probe(xt.to(device)).cpu(), yt, 1)
        print(f"  {n} labels: top-1 {top1[n]:.3f}, {time.perf_counter() - t:.1f} s so far", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    probes = time.perf_counter() - t

    print(f"device {device}, torch threads {torch.get_num_threads()}, ResNet-50 224 px, 2048-d features, "
          f"{args.classes} classes")
    print(f"linear config: select_iter {cfg.select_iter}, max_iter {cfg.max_iter}, "
          f"{len(cfg.weight_decays)} weight decays, float32 matmul precision {args.matmul_precision}")
    print(f"extraction_ms_per_image: {per_image * 1e3:.2f}  (decode + eval transform + forward, {args.sample} images, "
          f"{args.workers} loader workers)")
    print(f"extraction_seconds: {extraction:.1f}  ({pool} labeled-pool + {len(yt)} test images)")
    print(f"labeled_sizes: {sizes}")
    print("probe_top1: " + ", ".join(f"{n}: {a:.3f}" for n, a in top1.items()))
    print(f"probe_seconds: {probes:.1f}")
    print(f"probe_share_of_extraction: {probes / extraction:.3f}")


if __name__ == "__main__":
    main()
