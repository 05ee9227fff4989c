"""SimCLR ResNet-50 training throughput: our real training step against the bare model.

Ours: `study.train.loop.train_step` (copy of collated uint8 views from pinned memory, `aug.batch` on the device,
SimCLR forward with its 2048-2048-128 head, NT-Xent, backward, LARS step) + `after_step`, on synthetic uint8 views
(the output of the loader workers; JPEG decoding is measured by benchmarks/augment_bench.py).
Reference: the bare torchvision ResNet-50 forward + backward on random float tensors of the same shape.
Both with bf16 autocast and channels_last on CUDA, and cuDNN's autotuning off as the training loop leaves it
(`--cudnn-benchmark` turns it on for both), measured in the same run. An image is one 2-view SimCLR sample,
so the fair comparison is per view: the last line prints `simclr_vs_bare_per_view: <ratio>` (1.0 = no overhead).

    python benchmarks/gpu_throughput.py              # on a CUDA machine: batch 256, 224 px
    python benchmarks/gpu_throughput.py --smoke      # tiny and slow, on CPU
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torchvision

from study.train import PretrainConfig
from study.train.backbones import build_backbone
from study.train.data import batch_generator
from study.train.loop import train_step
from study.train.methods import METHODS
from study.train.optim import build_optimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_rate(batch_views: int, size: int, device: torch.device, bf16: bool, channels_last: bool, steps: int,
              warmup: int, smoke: bool) -> float:
    """Views/s of torchvision's ResNet-50 forward + backward on random tensors (no data, no optimizer)."""
    if smoke:  # the same thin network as the smoke SimCLR step
        model = build_backbone("resnet18_small", 8).to(device)
    else:
        model = torchvision.models.resnet50(weights=None).to(device)
    x = torch.randn(batch_views, 3, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        out.float().mean().backward()
        model.zero_grad(set_to_none=True)
    _sync(device)
    return steps * batch_views / (time.perf_counter() - t0)


class _NormaliseOnly:
    """--breakdown: the step without photometric augmentation (uint8 -> float only)."""

    num_views = 2

    def batch(self, views, generator):
        return [v.float().div_(255) for v in views]


def simclr_rate(batch: int, size: int, device: torch.device, bf16: bool, channels_last: bool, steps: int,
                warmup: int, smoke: bool, optimizer_name: str = "lars", augment: bool = True) -> float:
    """Images/s (2 views each) of our SimCLR training step."""
    from study.train.augment import build_augment

    cfg = PretrainConfig.from_dict({
        "manifest": "synthetic", "method": "simclr", "batch_size": batch, "image_size": size,
        "optim": {"name": optimizer_name},
        **({"backbone": "resnet18_small", "width": 8, "head": [64, 32]} if smoke else {}),
    })
    torch.manual_seed(0)
    method = METHODS.get("simclr")(cfg, build_backbone(cfg.backbone, cfg.width), 10).to(device)
    if channels_last:
        method = method.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(method, cfg.optim, lr=0.0)
    aug = build_augment(cfg.augment_config()) if augment else _NormaliseOnly()
    g = torch.Generator().manual_seed(0)
    pin = device.type == "cuda"
    views = [torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g) for _ in range(2)]
    views = [v.pin_memory() if pin else v for v in views]
    labels = torch.zeros(batch, dtype=torch.long)
    method.train()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        loss, _ = train_step(method, optimizer, aug, views, labels, batch_generator(0, i, device), 0.1, device, bf16,
                             channels_last)
        method.after_step(i + 1, warmup + steps)
    _sync(device)
    if not torch.isfinite(loss):
        raise SystemExit(f"loss is {loss.item()}")
    return steps * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256, help="images per step (each gives 2 views)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="tiny model, 32 px, a few steps, on CPU")
    p.add_argument("--quick", action="store_true", help="a short run (`make benchmarks`): 3 warm-up and 10 timed "
                   "steps on a GPU; without one, the --smoke run")
    p.add_argument("--breakdown", action="store_true", help="also time the step without augmentation, and with SGD")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="cuDNN autotuning for both (study.train never turns it on: off, as a training run has it)")
    a = p.parse_args(argv)
    if a.quick and torch.cuda.is_available():
        a.steps, a.warmup = 10, 3
    elif a.quick:
        a.smoke = True
    if a.smoke:
        device, a.batch, a.image_size, a.steps, a.warmup = torch.device("cpu"), 8, 32, 2, 1
        torch.set_num_threads(1)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = a.cudnn_benchmark
    else:
        print("no CUDA device: run with --smoke for the CPU smoke test", file=sys.stderr)
        return 2
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"device: {name}  batch: {a.batch} images ({2 * a.batch} views)  size: {a.image_size}px  "
          f"bf16: {cuda}  channels_last: {cuda}  cudnn.benchmark: {cuda and a.cudnn_benchmark}", flush=True)
    ours = simclr_rate(a.batch, a.image_size, device, cuda, cuda, a.steps, a.warmup, a.smoke)
    bare = bare_rate(2 * a.batch, a.image_size, device, cuda, cuda, a.steps, a.warmup, a.smoke)
    if a.breakdown:
        no_aug = simclr_rate(a.batch, a.image_size, device, cuda, cuda, a.steps, a.warmup, a.smoke, augment=False)
        sgd = simclr_rate(a.batch, a.image_size, device, cuda, cuda, a.steps, a.warmup, a.smoke, "sgd")
        print(f"breakdown_no_augment_images_per_s: {no_aug:.1f}")
        print(f"breakdown_sgd_instead_of_lars_images_per_s: {sgd:.1f}")
    print(f"bare_model_fwd_bwd_views_per_s: {bare:.1f}")
    print(f"simclr_step_images_per_s: {ours:.1f}")
    print(f"simclr_step_views_per_s: {2 * ours:.1f}")
    print(f"simclr_vs_bare_per_view: {2 * ours / bare:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
