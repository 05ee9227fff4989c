"""`Augment`: the two halves of an augmentation.

`sample(img, rng)` runs per image in loader workers: crop boxes and flips from a numpy rng, decode (reduced when
every crop allows it), an antialiased crop+resize -> uint8 3 x S x S tensors, one per view (geometric.py).
`batch(views, generator)` runs after collation on the training device: colour jitter (its four parts in a random
order per image, as SimCLR/torchvision), grayscale, Gaussian blur, solarize and normalisation, all random draws
from `generator`. On CUDA, and on CPU for small images (<= CPU_BATCHED_MAX_PIXELS, where per-call overhead
dominates), the batch is processed at once with torch (photometric.py; each operation runs on the images that take
it, gathered by sorting); larger images on CPU go image by image through OpenCV (photometric_cv.py), with the same
definitions.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from study.train.augment import geometric, photometric, photometric_cv
from study.train.augment.config import AugmentConfig
from study.train.augment.photometric_cv import ColourImage

# Columns of the per-image uniform draws of `batch` (one row per image, per view, in this order).
U_JITTER, U_BRIGHT, U_CONTRAST, U_SAT, U_HUE, U_GRAY, U_BLUR, U_SIGMA, U_SOLAR, U_ORDER = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
N_UNIFORMS = 13  # U_ORDER..U_ORDER+3: argsort gives a uniformly random order of the four jitter parts
# On CPU, batches of images up to this many pixels take the batched path. One thread, SimCLR preset, per image
# (2-core development machine, 2026-11-27): the per-image OpenCV path ~85 us at 28-56 px (mostly per-call
# overhead); the batched path 29 us at 28 px, 38 at 32, 65 at 40, 100 at 48, 228 at 64, and it gains from torch's
# intra-op threads. 2026-12-02 (AMD EPYC host, one thread, with the per-image path's lower per-call cost): per-image
# 83 / 88 / 95 / 122 us at 32 / 40 / 48 / 64 px, batched 71 / 90 / 113 / 179: the paths cross between 32 and 40 px.
CPU_BATCHED_MAX_PIXELS = 32 * 32
JITTER_OPS = (photometric.brightness, photometric.contrast, photometric.saturation, photometric.hue)
JITTER_NAMES = ("brightness", "contrast", "saturation", "hue")


class Augment:
    """Built by `build_augment(cfg)`; see the module docstring."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.num_views = cfg.num_views
        self.size = cfg.image_size
        b, c, s, h = cfg.jitter_effective
        # (low, high) of each jitter factor, torchvision's ranges; None where the part is the identity
        self.jitter_ranges = (
            (max(0.0, 1 - b), 1 + b) if b > 0 else None,
            (max(0.0, 1 - c), 1 + c) if c > 0 else None,
            (max(0.0, 1 - s), 1 + s) if s > 0 else None,
            (-h, h) if h > 0 else None,
        )
        mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
        std = torch.tensor(cfg.std).view(1, 3, 1, 1)
        self._scale, self._shift = 1 / std, -mean / std  # normalised = x * scale + shift, x in [0, 1]
        self._on_device: dict[torch.device, tuple[torch.Tensor, ...]] = {}  # (scale, shift, scale / 255) there

    def __getstate__(self) -> dict:
        """Pickled (to loader workers) without the per-device copies of the normalisation constants."""
        return {**self.__dict__, "_on_device": {}}

    # ------------------------------------------------------------------ per sample (loader workers)
    def sample_boxes(self, width: int, height: int, rng: np.random.Generator) -> list[tuple]:
        """(box (top, left, h, w), flip) per view, drawn in view order: the crop, then the flip."""
        cfg, out = self.cfg, []
        for _ in range(self.num_views):
            if cfg.crop == "center":
                box = geometric.center_crop_box(width, height, self.size, cfg.resize_ratio)
            else:
                box = geometric.random_resized_crop_box(width, height, cfg.crop_scale, cfg.crop_ratio, rng)
            flip = bool(rng.random() < cfg.flip_p) if cfg.flip_p > 0 else False
            out.append((box, flip))
        return out

    def sample(self, img: Image.Image, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """uint8 3 x S x S views of one image (geometric work only)."""
        width, height = img.size
        drawn = self.sample_boxes(width, height, rng)
        arr, boxes = geometric.decode_for_boxes(img, [b for b, _ in drawn], self.size, self.cfg.jpeg_draft)
        return tuple(geometric.crop_resize(arr, box, self.size, flip, self.cfg.interpolation)
                     for box, (_, flip) in zip(boxes, drawn))

    # ------------------------------------------------------------------ per batch (training device)
    def draw(self, n: int, view: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The photometric parameters of `n` images of view `view` (on the generator's device)."""
        cfg = self.cfg
        u = torch.rand(n, N_UNIFORMS, generator=generator, device=generator.device)
        p = {"jitter": u[:, U_JITTER] < cfg.jitter_p,
             "order": u[:, U_ORDER:U_ORDER + 4].argsort(1),
             "gray": u[:, U_GRAY] < cfg.grayscale_p,
             "blur": u[:, U_BLUR] < cfg.blur_p[view],
             "sigma": cfg.blur_sigma[0] + (cfg.blur_sigma[1] - cfg.blur_sigma[0]) * u[:, U_SIGMA],
             "solarize": u[:, U_SOLAR] < cfg.solarize_p[view]}
        for i, rng in enumerate(self.jitter_ranges):
            lo, hi = rng if rng is not None else (0.0, 0.0)
            p[JITTER_NAMES[i]] = lo + (hi - lo) * u[:, U_BRIGHT + i]
        return p

    def batch(self, views: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        """Photometric work + normalisation of collated uint8 B x 3 x S x S views -> float32, same device."""
        if len(views) != self.num_views:
            raise ValueError(f"expected {self.num_views} view batch(es), got {len(views)}")
        out = []
        for view, x in enumerate(views):
            p = {k: v.to(x.device) for k, v in self.draw(x.shape[0], view, generator).items()}
            if x.device.type == "cpu" and x.shape[-1] * x.shape[-2] > CPU_BATCHED_MAX_PIXELS:
                out.append(self._per_image(x, p, view))
            else:
                out.append(self._batched(x, p, view))
        return out

    def _active(self, view: int) -> bool:
        cfg = self.cfg
        return cfg.jitter_p > 0 or cfg.grayscale_p > 0 or cfg.blur_p[view] > 0 or cfg.solarize_p[view] > 0

    def _normalise(self, x: torch.Tensor, u8: bool) -> torch.Tensor:
        """Normalised float32 of uint8 `x` (a new tensor), or of float `x` in [0, 1] (in place)."""
        if x.device not in self._on_device:  # copied once per device: a copy from pageable memory syncs on CUDA
            scale, shift = self._scale.to(x.device), self._shift.to(x.device)
            self._on_device[x.device] = scale, shift, scale / 255
        scale, shift, scale_u8 = self._on_device[x.device]
        return torch.addcmul(shift, x.float(), scale_u8) if u8 else x.mul_(scale).add_(shift)

    def _per_image(self, x: torch.Tensor, p: dict, view: int) -> torch.Tensor:
        """CPU, one image at a time with OpenCV (photometric_cv); an image with no operation is only normalised."""
        cfg = self.cfg
        out = torch.empty(x.shape, dtype=torch.float32)
        xs, outs = x.contiguous().numpy(), out.numpy()  # numpy indexing: a fraction of torch's per-call cost
        scale, shift = self._scale.view(3).double().numpy(), self._shift.view(3).double().numpy()
        lists = {k: v.tolist() for k, v in p.items()}
        active = self._active(view)
        parts = [[op for op in order if self.jitter_ranges[op] is not None] for order in lists["order"]]
        factors = [lists[name] for name in JITTER_NAMES]
        for i in range(x.shape[0]):
            jitter, gray_ = active and lists["jitter"][i], active and lists["gray"][i]
            blur_ = active and lists["blur"][i] and cfg.blur_kernel >= 3
            solar = active and lists["solarize"][i]
            if not (jitter or gray_ or blur_ or solar):
                photometric_cv.normalise_planes(xs[i], outs[i], scale, shift)
                continue
            img = ColourImage.from_planes(xs[i])
            if jitter:
                for op in parts[i]:
                    photometric_cv.JITTER[op](img, factors[op][i])
            if gray_:
                img.grayscale()
            if blur_:
                img.blur(lists["sigma"][i], cfg.blur_kernel)
            if solar:
                img.solarize(cfg.solarize_threshold)
            img.normalised_into(outs[i], scale, shift)
        return out

    def _batched(self, x: torch.Tensor, p: dict, view: int) -> torch.Tensor:
        """Torch on the whole batch; each operation runs only on the images that take it, in `_per_image`'s order.

        Seven selections, each sorted once on the device: the jitter part at each of the four stages of an image's
        order, then grayscale, blur and solarize. A group (the images of one selection taking one operation) is a
        slice of the sorted indices; all group sizes come to the host in one transfer, the only sync. A group is
        gathered, worked on with its images' own factors and written back in place (one selection's groups are
        disjoint), so an image costs only the operations it takes; results equal whole-batch evaluation (but for
        float rounding: a one-image group reduces its contrast mean in another order, 1 ulp)."""
        if not self._active(view):
            return self._normalise(x, u8=True)
        cfg = self.cfg
        y = x.float().mul_(1 / 255)
        # rows 0-3: the jitter part at each stage (4: not jittered); rows 4-6: grayscale, blur, solarize (0: applies)
        keys = torch.stack([torch.where(p["jitter"], p["order"][:, stage], 4) for stage in range(4)]
                           + [p[k].logical_not().long() for k in ("gray", "blur", "solarize")])
        rows = keys.argsort(dim=1, stable=True)
        sizes = (keys.unsqueeze(2) == torch.arange(5, device=keys.device)).sum(1).tolist()

        def apply(selection: int, group: int, fn, *per_image: torch.Tensor) -> None:
            """y[i] = fn(y[i], *(v[i] for v in per_image)) for the images i of `group` in `selection`."""
            start, n = sum(sizes[selection][:group]), sizes[selection][group]
            if n:
                idx = rows[selection, start:start + n]
                y.index_copy_(0, idx, fn(y.index_select(0, idx), *(v.index_select(0, idx) for v in per_image)))

        for stage in range(4):
            for op, name in enumerate(JITTER_NAMES):
                if self.jitter_ranges[op] is not None:
                    apply(stage, op, JITTER_OPS[op], p[name].view(-1, 1, 1, 1))
        apply(4, 0, photometric.grayscale)
        if cfg.blur_kernel >= 3:
            apply(5, 0, lambda z, sigma: photometric.blur(z, sigma, cfg.blur_kernel), p["sigma"])
        apply(6, 0, lambda z: photometric.solarize(z, cfg.solarize_threshold))
        return self._normalise(y, u8=False)

    def describe(self) -> dict:
        """Every effective parameter (the config's, derived values included) for a result's protocol."""
        return self.cfg.to_dict()


def build_augment(cfg: AugmentConfig | dict) -> Augment:
    """The augmentation of `cfg` (an AugmentConfig, or a mapping given to `AugmentConfig.from_dict`)."""
    if not isinstance(cfg, AugmentConfig):
        cfg = AugmentConfig.from_dict(cfg)
    return Augment(cfg)
