"""Per-sample geometric work: crop boxes drawn from a numpy rng (torchvision's RandomResizedCrop algorithm),
JPEG decoding (study.train.images.decode_rgb: libjpeg-turbo through OpenCV, at reduced scale when every crop
allows it), antialiased crop+resize and flip."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from study.train.images import decode_rgb, is_lazy_jpeg

Box = tuple[float, float, float, float]  # top, left, h, w in source pixels

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


def center_crop_box(width: int, height: int, size: int, resize_ratio: float) -> Box:
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


def draft_scale(boxes: list[Box], size: int) -> float:
    """The smallest decode scale r at which every crop box still spans >= `size` pixels both ways (above 1 where a
    box is smaller than `size`: no reduction then)."""
    return max(max(size / h, size / w) for _, _, h, w in boxes)


def draft_denominator(width: int, height: int, r: float) -> int:
    """libjpeg's reduction (1, 2, 4 or 8) for decode scale `r`, chosen as PIL's `Image.draft` chooses it: the
    largest that keeps the decoded size >= (ceil(width r), ceil(height r))."""
    if r > 0.5:
        return 1
    fit = min(width // math.ceil(width * r), height // math.ceil(height * r))
    return next(d for d in (8, 4, 2, 1) if fit >= d)


def decode_for_boxes(img: Image.Image, boxes: list, size: int, use_draft: bool) -> tuple[np.ndarray, list]:
    """`img` decoded as an RGB uint8 H x W x 3 array (a lazy JPEG by OpenCV's libjpeg-turbo, at 1/2, 1/4 or 1/8
    scale when `use_draft` and every box allows it) and the boxes mapped to its pixels."""
    width, height = img.size
    denom = draft_denominator(width, height, draft_scale(boxes, size)) if use_draft and is_lazy_jpeg(img) else 1
    arr = decode_rgb(img, denom)  # study.train.images: the one decoder of every path that reads images
    nh, nw = arr.shape[:2]
    if (nw, nh) != (width, height):
        # a 1/d decode is ceil(side / d) pixels of d source pixels each (the last one partial): x -> x / d
        d = next((d for d in (2, 4, 8) if (math.ceil(width / d), math.ceil(height / d)) == (nw, nh)), None)
        sx, sy = (1 / d, 1 / d) if d else (nw / width, nh / height)
        boxes = [(t * sy, l * sx, h * sy, w * sx) for t, l, h, w in boxes]
    return arr, boxes


def crop_resize(arr: np.ndarray, box: Box, size: int, flip: bool,
                interpolation: str) -> torch.Tensor:
    """The box of an H x W x 3 uint8 array resized (antialiased) to size x size, optionally mirrored, as a
    contiguous uint8 3 x size x size tensor. Integer boxes (random crops): crop, then torch's uint8 antialiased
    resize, as torchvision's RandomResizedCrop on a PIL image (within 2 levels, about 3x faster than PIL);
    fractional boxes (the eval centre crop, crops of a reduced decode): PIL's resize of the box."""
    top, left, h, w = box
    if all(float(v).is_integer() for v in box):
        crop = arr[int(top):int(top + h), int(left):int(left + w)]
        if not (crop.flags.c_contiguous and crop.flags.writeable):
            crop = crop.copy()
        out = F.interpolate(torch.from_numpy(crop).permute(2, 0, 1)[None], size=(size, size), mode=interpolation,
                            antialias=True, align_corners=False)[0].contiguous()
    else:
        pil = Image.fromarray(arr).resize((size, size), RESAMPLE[interpolation], box=(left, top, left + w, top + h))
        out = torch.from_numpy(np.stack(cv2.split(np.asarray(pil))))
    return out.flip(-1) if flip else out
