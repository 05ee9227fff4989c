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
