"""`downsample`: shrink by `factor`, then resize back to the original size (a blurred, low-resolution image).

Parameters (defaults ours; the paper says only "downsample 2x / 4x"): `factor` (integer >= 2, default 2),
`interpolation` (bicubic, bilinear, nearest, box, hamming, lanczos; default bicubic, used both ways).
"""
from __future__ import annotations

from PIL import Image

from study.corruptions.base import Corruption, Param, register, rgb_or_grey

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING, "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}


def _factor(v: int) -> None:
    if v < 2:
        raise ValueError("factor must be an integer >= 2")


def _interpolation(v: str) -> None:
    if v not in INTERPOLATIONS:
        raise ValueError(f"expected one of {', '.join(INTERPOLATIONS)}")


def downsample(img: Image.Image, p: dict, rng) -> Image.Image:
    """Down by `factor` (each side rounded, Python's round: half to even; at least 1 px) and back, RGB or L (other
    modes become RGB first: Pillow resizes a palette image by nearest, whatever `interpolation` says)."""
    img = rgb_or_grey(img)
    w, h = img.size
    method = INTERPOLATIONS[p["interpolation"]]
    small = img.resize((max(1, round(w / p["factor"])), max(1, round(h / p["factor"]))), method)
    return small.resize((w, h), method)


register(Corruption(
    "downsample",
    {"factor": Param(2, int, _factor), "interpolation": Param("bicubic", str, _interpolation, in_slug=False)},
    downsample,
    __doc__,
    label=("factor", "downsample {}x".format),  # the paper's name
))
