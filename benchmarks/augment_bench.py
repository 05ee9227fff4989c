"""Two-view SimCLR augmentation throughput on one core: study.train.augment vs torchvision.transforms.v2.

Makes its own ~500x375 JPEGs (smooth random images with texture, PIL quality 90), then times, interleaved in
rounds so that load from other users hits both alike:
  reference: decode + torchvision v2 (RandomResizedCrop, flip, RandomApply(ColorJitter(.8,.8,.8,.2), .8),
             RandomGrayscale(.2), RandomApply(GaussianBlur(23, (.1, 2)), .5), ToImage/ToDtype/Normalize) x 2 views
             and the same again under torch.set_flush_denormal(True) (its blur's far taps make denormal floats,
             which cost some CPUs far more than others)
  ours:      decode + aug.sample (per image) + aug.batch (per batch, amortised per image), all on this core
Prints images/s of each and, as its last line, `speedup_vs_torchvision: <ratio>` (against the reference as written).

    .venv/bin/python benchmarks/augment_bench.py [--quick] [--size 224] [--batch 32]
"""
from __future__ import annotations

import argparse
import io
import sys
import time

import cv2
import numpy as np
import torch
import torchvision.transforms.v2 as T
from PIL import Image

from study.train.allocator import retain_freed_memory
from study.train.augment import build_augment, geometric

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_jpegs(n: int, seed: int = 0) -> list[bytes]:
    """Natural-ish 500x375 JPEGs: a bicubic-upsampled coarse colour field plus finer noise octaves."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        acc = np.zeros((375, 500, 3))
        for cells, amp in ((4, 110.0), (16, 45.0), (64, 20.0)):
            field = rng.normal(0, 1, (max(2, cells * 3 // 4), cells, 3))
            lo, hi = field.min(), field.max()
            small = Image.fromarray(((field - lo) / (hi - lo) * 255).astype(np.uint8))
            acc += (np.asarray(small.resize((500, 375), Image.Resampling.BICUBIC), dtype=np.float64) - 128) * amp / 128
        img = Image.fromarray(np.clip(acc + 128 + rng.normal(0, 4, acc.shape), 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def reference(size: int):
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.08, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(2 * (size // 20) + 1, sigma=(0.1, 2.0))], p=0.5),
        T.ToImage(),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(MEAN, STD),
    ])


def time_reference(tf, jpegs: list[bytes], start: int, n: int, flush_denormal: bool = False) -> float:
    """The reference as written; with `flush_denormal`, under torch.set_flush_denormal(True) (then reset)."""
    torch.set_flush_denormal(flush_denormal)
    try:
        t = time.perf_counter()
        for k in range(start, start + n):
            img = Image.open(io.BytesIO(jpegs[k % len(jpegs)])).convert("RGB")
            tf(img), tf(img)
        return time.perf_counter() - t
    finally:
        torch.set_flush_denormal(False)


def time_ours(aug, jpegs: list[bytes], start: int, n: int, batch: int) -> float:
    t = time.perf_counter()
    for b0 in range(start, start + n, batch):
        samples = [aug.sample(Image.open(io.BytesIO(jpegs[k % len(jpegs)])), np.random.default_rng([0, k]))
                   for k in range(b0, min(b0 + batch, start + n))]
        views = [torch.stack([s[v] for s in samples]) for v in range(aug.num_views)]
        aug.batch(views, torch.Generator().manual_seed(b0))
    return time.perf_counter() - t


def time_sample(aug, jpegs: list[bytes], n: int) -> float:
    """Decode + aug.sample only: a loader worker's share when aug.batch runs on a GPU."""
    t = time.perf_counter()
    for k in range(n):
        aug.sample(Image.open(io.BytesIO(jpegs[k % len(jpegs)])), np.random.default_rng([0, k]))
    return time.perf_counter() - t


def time_decode(jpegs: list[bytes], n: int) -> float:
    """Our decoder alone (study.train.augment.geometric: OpenCV's libjpeg-turbo), at full scale."""
    t = time.perf_counter()
    for k in range(n):
        img = Image.open(io.BytesIO(jpegs[k % len(jpegs)]))
        geometric.decode_for_boxes(img, [(0, 0, img.size[1], img.size[0])], 1, False)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (about 20 s)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # one core for OpenCV too (0 would also run its work on this thread)
    retain_freed_memory()  # as a training job's processes do (allocator.py); both pipelines run under it
    rounds = args.rounds or (3 if args.quick else 8)
    ref_n, ours_n = (40, 2 * args.batch) if args.quick else (80, 4 * args.batch)
    jpegs = make_jpegs(32)
    tf = reference(args.size)
    aug = build_augment({"preset": "simclr", "image_size": args.size})
    torch.manual_seed(0)
    time_reference(tf, jpegs, 0, 4), time_ours(aug, jpegs, 0, args.batch, args.batch)  # warm-up
    ref_t = ftz_t = ours_t = 0.0
    ref_k = ours_k = 0
    for r in range(rounds):
        a = time_reference(tf, jpegs, ref_k, ref_n)
        f = time_reference(tf, jpegs, ref_k, ref_n, flush_denormal=True)
        b = time_ours(aug, jpegs, ours_k, ours_n, args.batch)
        ref_t, ftz_t, ours_t, ref_k, ours_k = ref_t + a, ftz_t + f, ours_t + b, ref_k + ref_n, ours_k + ours_n
        print(f"round {r + 1}/{rounds}: torchvision {ref_n / a:.1f}/s (flush-denormal {ref_n / f:.1f}/s), "
              f"ours {ours_n / b:.1f}/s, ratio {(ours_n / b) / (ref_n / a):.2f}", file=sys.stderr, flush=True)
    dec = 200 / time_decode(jpegs, 200)
    smp = 100 / time_sample(aug, jpegs, 100)
    ref_rate, ftz_rate, ours_rate = ref_k / ref_t, ref_k / ftz_t, ours_k / ours_t
    print(f"image_size {args.size}, batch {args.batch}, one core, two views per image, decode included")
    print(f"torchvision_v2_images_per_s: {ref_rate:.1f}")
    print(f"torchvision_v2_flush_denormal_images_per_s: {ftz_rate:.1f}  (the same under torch.set_flush_denormal: "
          f"its blur's far taps make denormal floats, slow on some CPUs)")
    print(f"ours_images_per_s: {ours_rate:.1f}")
    print(f"decode_only_images_per_s: {dec:.1f}  (a ceiling for any pipeline that decodes at full scale: "
          f"{dec / ref_rate:.1f}x torchvision)")
    print(f"ours_sample_only_images_per_s: {smp:.1f}  (the CPU share when aug.batch runs on a GPU: "
          f"{smp / ref_rate:.1f}x torchvision)")
    print(f"speedup_vs_torchvision_flush_denormal: {ours_rate / ftz_rate:.2f}")
    print(f"speedup_vs_torchvision: {ours_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()
