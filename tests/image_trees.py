"""Tiny image-folder trees of real PNG files, shared by the evaluation and launcher tests."""
from pathlib import Path

import numpy as np
from PIL import Image


def write_quadrant_tree(root: Path, per_class: int, seed: int, size: int = 12) -> None:
    """4 classes: class c is a bright square in quadrant c on a noisy background."""
    rng = np.random.default_rng(seed)
    for c in range(4):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            y, x = divmod(c, 2)
            h = size // 2
            a[y * h:(y + 1) * h, x * h:(x + 1) * h] = 200
            Image.fromarray(a).save(root / f"class{c}" / f"{i:03d}.png")


def damaged_jpeg() -> bytes:
    """A complete JPEG (it ends with its EOI marker) whose entropy data a few changed bytes damaged so that Pillow
    refuses it ("broken data stream") and OpenCV's libjpeg reads through the damage (a downloaded file with bad
    bytes): the first such file of a fixed series; AssertionError where these two decoders no longer differ so."""
    import io

    import cv2

    y, x = np.mgrid[0:64, 0:80]
    a = np.stack([x * 3, y * 4, (x + y) * 2], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=90)
    good = buf.getvalue()
    rng = np.random.default_rng(0)
    for _ in range(400):
        data = bytearray(good)
        for _ in range(3):
            data[rng.integers(len(good) // 2, len(good) - 2)] = rng.integers(0, 256)
        try:
            Image.open(io.BytesIO(bytes(data))).load()
        except OSError:
            if cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR) is not None:
                return bytes(data)
    raise AssertionError("no damaged JPEG that Pillow refuses and OpenCV decodes in the series")
