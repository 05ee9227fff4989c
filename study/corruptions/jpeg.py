"""`jpeg`: re-encode as JPEG at `quality` (1..95; default 10, ours: the paper does not state it), decode again."""
from __future__ import annotations

import io

from PIL import Image

from study.corruptions.base import Corruption, Param, register, rgb_or_grey


def _quality(v: int) -> None:
    if not 1 <= v <= 95:
        raise ValueError("quality must be an integer in 1..95")


def jpeg(img: Image.Image, p: dict, rng) -> Image.Image:
    buf = io.BytesIO()
    src = rgb_or_grey(img)
    src.save(buf, format="JPEG", quality=p["quality"], optimize=False, progressive=False)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


register(Corruption("jpeg", {"quality": Param(10, int, _quality)}, jpeg, __doc__,
                    label=("quality", "JPEG quality {}".format)))  # the paper's name
