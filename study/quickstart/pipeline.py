"""The quickstart, step by step, through the same commands a cluster user types.

data (PNG trees) -> `study manifest build/pool/corrupt` -> `study plan` (every manifest checked).
Each step is idempotent, so a rerun after a kill finishes what is missing. The launcher and evaluation steps
(`study submit --cluster local`, `study report`) join this sequence once those parts exist (issues 3 and 4).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from study.errors import StudyError
from study.quickstart import export, fashion_mnist


@dataclass(frozen=True)
class Scale:
    """How much of the data the quickstart uses. `full` is the README's run; `tiny` is the end-to-end test's."""

    fmnist_train_per_class: int | None  # None: all 6,000 per class
    fmnist_test_per_class: int | None
    digits_train_per_class: int
    digits_test_per_class: int
    fmnist_sizes: str  # nested pretraining subsets (the paper's 50k..1M ratios)
    fmnist_labeled: str
    digits_sizes: str
    digits_labeled: str
    pool_each: str  # the pooled set takes this many images of each domain


SCALES = {
    "full": Scale(None, None, 400, 100, "3k,7.5k,15k,30k,60k", "100,300,1k,3k,10k", "1.5k,3k,4k", "100,300,1k,3k",
                  "1.5k"),
    "tiny": Scale(40, 10, 20, 10, "40,100,200,400", "20,50,100,200", "40,100,200", "20,50,100", "20"),
}
CORRUPTIONS = ("downsample:factor=2", "downsample:factor=4", "jpeg:quality=10", "salt_pepper:fraction=0.1")


def _study(*argv: str) -> None:
    from study.cli import main

    print(f"[quickstart] $ study {' '.join(argv)}", file=sys.stderr)
    code = main(list(argv))
    if code:
        raise StudyError(f"`study {' '.join(argv)}` failed with exit code {code}")


def build_manifests(data: Path, scale: Scale, seed: int = 0) -> None:
    """The quickstart's manifests: Fashion-MNIST and MNIST digits (train/test), a pooled set, corrupted variants."""
    from study.grids.jobs import corrupted_manifest

    fm, dg = data / "fashion-mnist", data / "mnist"
    for name, root, split, sizes, labeled, extra in (
        ("qs_fmnist_train", fm, "train", scale.fmnist_sizes, scale.fmnist_labeled,
         ["--taxonomy", str(fm / "taxonomy.csv")]),
        ("qs_fmnist_test", fm, "test", None, None, ["--taxonomy", str(fm / "taxonomy.csv")]),
        ("qs_mnist_train", dg, "train", scale.digits_sizes, scale.digits_labeled, []),
        ("qs_mnist_test", dg, "test", None, None, []),
    ):
        argv = ["manifest", "build", "--dataset", "imagefolder", "--root", str(root / split), "--split", split,
                "--name", name, "--seed", str(seed), *extra]
        if sizes:
            argv += ["--sizes", sizes, "--labeled-sizes", labeled]
        _study(*argv)
    _study("manifest", "pool", "qs_fmnist+mnist_train", "--from", f"qs_fmnist_train:{scale.pool_each}",
           "--from", f"qs_mnist_train:{scale.pool_each}")
    for spec in CORRUPTIONS:
        _study("manifest", "corrupt", corrupted_manifest("qs_fmnist_train", spec), "--base", "qs_fmnist_train",
               "--corruption", spec)


def run(grid: Path, data: Path, scale: Scale, idx_dir: str | None = None) -> None:
    """Prepare the quickstart's data and manifests, then plan its grid with every check on."""
    t0 = time.monotonic()
    idx = fashion_mnist.locate(idx_dir)
    export.export_fashion_mnist(data, idx, scale.fmnist_train_per_class, scale.fmnist_test_per_class)
    export.export_digits(data, scale.digits_train_per_class, scale.digits_test_per_class)
    build_manifests(data, scale)
    _study("plan", str(grid))
    print(f"[quickstart] data, manifests and plan ready in {time.monotonic() - t0:.0f} s", file=sys.stderr)
