"""`Augment._batched` (each image through only its own operations, grouped by sorting) against a copy of the
former algorithm, which ran every operation on the whole batch and kept one result per image with torch.where."""
from __future__ import annotations

import pickle

import pytest
import torch

from study.train.augment import build_augment, photometric
from study.train.augment.pipeline import JITTER_OPS, Augment


def reference_batched(aug: Augment, x: torch.Tensor, p: dict, view: int) -> torch.Tensor:
    """The former `_batched`: 4 stages x 4 jitter parts, each on the whole batch, selected per image."""
    cfg = aug.cfg
    mean, std = torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1)
    scale, shift = 1 / std, -mean / std
    if not (cfg.jitter_p > 0 or cfg.grayscale_p > 0 or cfg.blur_p[view] > 0 or cfg.solarize_p[view] > 0):
        return torch.addcmul(shift, x.float(), scale / 255)
    y = x.float().mul_(1 / 255)

    def where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.view(-1, 1, 1, 1), a, b)

    if cfg.jitter_p > 0:
        names = ("brightness", "contrast", "saturation", "hue")
        for stage in range(4):
            for op in range(4):
                if aug.jitter_ranges[op] is None:
                    continue
                f = p[names[op]].view(-1, 1, 1, 1)
                y = where(p["jitter"] & (p["order"][:, stage] == op), JITTER_OPS[op](y, f), y)
    if cfg.grayscale_p > 0:
        y = where(p["gray"], photometric.grayscale(y), y)
    if cfg.blur_p[view] > 0 and cfg.blur_kernel >= 3:
        y = where(p["blur"], photometric.blur(y, p["sigma"], cfg.blur_kernel), y)
    if cfg.solarize_p[view] > 0:
        y = where(p["solarize"], photometric.solarize(y, cfg.solarize_threshold), y)
    return y.mul_(scale).add_(shift)


CONFIGS = [
    {"preset": "simclr"},
    {"preset": "byol"},
    {"preset": "supervised"},
    {"preset": "eval"},
    {"preset": "simclr", "saturation": 0.0, "hue": 0.0},  # two jitter parts are the identity
    {"preset": "byol", "brightness": 0.0, "contrast": 0.5, "jitter_p": 1.0, "grayscale_p": 0.5},
    {"preset": "simclr", "jitter_p": 0.0, "grayscale_p": 0.5, "solarize_p": (0.3, 1.0)},  # no jitter
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("size, n", [(32, 40), (64, 9), (20, 1)])
def test_batched_equals_the_former_algorithm(cfg, size, n):
    aug = build_augment({**cfg, "image_size": size})
    g = torch.Generator().manual_seed(size + n)
    for view in range(aug.num_views):
        x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
        p = aug.draw(n, view, g)
        ours, ref = aug._batched(x, p, view), reference_batched(aug, x, p, view)
        assert ours.dtype == torch.float32 and ours.shape == x.shape
        assert (ours - ref).abs().max().item() <= 1e-6, (cfg, view)


def test_batch_on_cpu_small_images_takes_the_batched_path():
    aug = build_augment({"preset": "byol", "image_size": 28})
    views = [torch.randint(0, 256, (16, 3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(v))
             for v in range(2)]
    out = aug.batch(views, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    for view, x in enumerate(views):
        p = aug.draw(16, view, g)
        assert (out[view] - reference_batched(aug, x, p, view)).abs().max().item() <= 1e-6


@pytest.mark.parametrize("size, path", [(32, "_batched"), (33, "_per_image")])
def test_cpu_path_by_image_size(size, path, monkeypatch):
    """On CPU, images of up to CPU_BATCHED_MAX_PIXELS (32 x 32, CIFAR's) take the batched path, larger ones the
    per-image one (the two compute the same images: only this tells which ran)."""
    aug = build_augment({"preset": "simclr", "image_size": size})
    taken = []
    for name in ("_batched", "_per_image"):
        run = getattr(aug, name)
        monkeypatch.setattr(aug, name, lambda x, p, view, run=run, name=name: taken.append(name) or run(x, p, view))
    x = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    aug.batch([x, x], torch.Generator().manual_seed(1))
    assert taken == [path, path]


def test_pickles_without_the_per_device_constants():
    """Loader workers receive the Augment by pickle: the normalisation constants cached per device stay behind."""
    aug = build_augment({"preset": "simclr", "image_size": 16})
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    first = aug.batch([x, x], torch.Generator().manual_seed(0))
    copy = pickle.loads(pickle.dumps(aug))
    assert copy._on_device == {} and aug._on_device
    again = copy.batch([x, x], torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_batch_refuses_a_wrong_number_of_views():
    """A two-view augmentation given one collated view raises (rather than returning one augmented view)."""
    aug = build_augment({"preset": "byol", "image_size": 16})
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with pytest.raises(ValueError, match="expected 2 view"):
        aug.batch([x], torch.Generator().manual_seed(0))
