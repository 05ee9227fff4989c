"""`salt_pepper`: set a `fraction` of the pixels (all channels) to black or white, half each on average.

Default fraction 0.1 (ours: the paper does not state it). Which pixels, and black or white, come from the image's
seeded rng, so every epoch and every machine sees the same noise.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from study.corruptions.base import Corruption, Param, register, rgb_or_grey


def _fraction(v: float) -> None:
    if not 0.0 < v <= 1.0:  # 0 would be the clean images under a corruption's name, as `none` is refused for
        raise ValueError("fraction must be in (0, 1]: above 0 (fraction 0 leaves the images clean: a grid's "
                         "corruption none reads the clean manifest) and at most 1")


def salt_pepper(img: Image.Image, p: dict, rng: np.random.Generator) -> Image.Image:
    src = rgb_or_grey(img)
    a = np.array(src)
    h, w = a.shape[:2]
    hit = rng.random((h, w)) < p["fraction"]
    salt = rng.random((h, w)) < 0.5
    a[hit & salt] = 255
    a[hit & ~salt] = 0
    return Image.fromarray(a, src.mode)


register(Corruption("salt_pepper", {"fraction": Param(0.1, float, _fraction)}, salt_pepper, __doc__,
                    label=("fraction", lambda v: f"salt & pepper {v * 100:g}%")))  # the paper's name
