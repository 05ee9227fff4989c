"""Directory-scan speed of the image-folder reader: a 200k-file tree (500 class folders), warm cache.

Prints files/s of `study.datasets.read_dataset("imagefolder", ...)` (scan, sort, labels) beside a torchvision-style
reference (`sorted(os.walk)` + extension filter) measured in the same run. Target: >= 300k files/s.
`--quick` uses 20k files.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from study.datasets import read_dataset

EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def make_tree(root: Path, num_files: int, num_classes: int) -> None:
    per = num_files // num_classes
    for c in range(num_classes):
        d = root / "train" / f"n{c:08d}"
        d.mkdir(parents=True)
        for i in range(per):
            with open(d / f"n{c:08d}_{i}.JPEG", "wb"):
                pass


def torchvision_style(folder: Path) -> list[tuple[str, int]]:
    """What torchvision's ImageFolder/make_dataset does: sorted classes, sorted os.walk, (path, class) samples."""
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    samples = []
    for index, c in enumerate(classes):
        for base, _, names in sorted(os.walk(os.path.join(folder, c), followlinks=True)):
            for name in sorted(names):
                if name.lower().endswith(EXTS):
                    samples.append((os.path.join(base, name), index))
    return samples


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    num_files = 20_000 if a.quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_tree(root, num_files, 500)
        print(f"made {num_files} empty files in 500 class folders in {time.perf_counter() - t:.1f} s")
        n = len(read_dataset("imagefolder", root, "train"))  # warms the cache
        assert n == num_files, n
        ours = best_of(lambda: read_dataset("imagefolder", root, "train"))
        ref = best_of(lambda: torchvision_style(root / "train"))
    print(f"study imagefolder reader:   {ours:6.3f} s  {num_files / ours:10,.0f} files/s")
    print(f"torchvision-style os.walk:  {ref:6.3f} s  {num_files / ref:10,.0f} files/s")
    met = "met" if num_files / ours >= 300_000 else "NOT met"
    print(f"speed-up {ref / ours:.2f}x; target >= 300,000 files/s: {met}")


if __name__ == "__main__":
    main()
