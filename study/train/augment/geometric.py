"""Per-sample geometric work: crop boxes drawn from a numpy rng (torchvision's RandomResizedCrop algorithm),
JPEG draft decoding at reduced scale when every crop allows it, antialiased crop+resize and flip with PIL."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

Box = tuple[float, float, float, float]  # left, top, right, bottom in source pixels

RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def random_resized_crop_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
                            rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w) as torchvision's `RandomResizedCrop.get_params` draws it: area fraction uniform in
    `scale`, aspect ratio log-uniform in `ratio`, up to 10 tries, then a centre crop clamped to `ratio`."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def center_crop_box(width: int, height: int, size: int, resize_ratio: float) -> tuple[float, float, float, float]:
    """(top, left, h, w) in source pixels of torchvision's Resize(round(size * ratio)) + CenterCrop(size)."""
    short = int(round(size * resize_ratio))
    if width <= height:
        rw, rh = short, int(short * height / width)
    else:
        rw, rh = int(short * width / height), short
    top = int(round((rh - size) / 2.0))
    left = int(round((rw - size) / 2.0))
    sx, sy = width / rw, height / rh
    return top * sy, left * sx, size * sy, size * sx


def draft_scale(width: int, height: int, boxes: list[tuple[float, float, float, float]], size: int) -> float:
    """The smallest decode scale r (<= 1) at which every crop box still spans >= `size` pixels both ways."""
    return max(max(size / h, size / w) for _, _, h, w in boxes)


def is_lazy_jpeg(img: Image.Image) -> bool:
    """An opened JPEG whose pixels have not been decoded yet (so `draft` can still reduce the decode)."""
    return img.format == "JPEG" and bool(getattr(img, "tile", None))


def decode_for_boxes(img: Image.Image, boxes: list, size: int, use_draft: bool) -> tuple[Image.Image, list]:
    """Decode `img` as RGB (at reduced JPEG scale when all boxes allow it) and boxes mapped to its pixels."""
    width, height = img.size
    if use_draft and is_lazy_jpeg(img):
        r = draft_scale(width, height, boxes, size)
        if r <= 0.5:  # libjpeg scales by 1/2, 1/4, 1/8; draft keeps the decoded size >= the requested one
            img.draft("RGB", (math.ceil(width * r), math.ceil(height * r)))
    if img.mode != "RGB":
        img = img.convert("RGB")
    else:
        img.load()
    nw, nh = img.size
    if (nw, nh) != (width, height):
        sx, sy = nw / width, nh / height
        boxes = [(t * sy, l * sx, h * sy, w * sx) for t, l, h, w in boxes]
    return img, boxes


def crop_resize(img: Image.Image, box: tuple[float, float, float, float], size: int, flip: bool,
                interpolation: str) -> torch.Tensor:
    """The box resized (antialiased) to size x size, optionally mirrored, as a uint8 3 x size x size tensor."""
    top, left, h, w = box
    out = img.resize((size, size), RESAMPLE[interpolation], box=(left, top, left + w, top + h))
    if flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return torch.from_numpy(np.array(out, dtype=np.uint8)).permute(2, 0, 1)  # a C x H x W view of H x W x C
