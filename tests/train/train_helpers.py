"""Helpers of the training tests (imported by conftest.py and the tests): tiny image files, a manifest over
them, a tiny config."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from device import TEST_DEVICE
from study.manifests.manifest import Manifest



class TinyManifest:
    """The Manifest API of docs/architecture.md section 1 over a table the test writes."""

    def __init__(self, name: str, root: Path, table: pd.DataFrame, meta: dict, corruption=None):
        self.name, self.root, self.table, self.meta, self.corruption = name, root, table, meta, corruption
        self.class_names = sorted(set(table["class_name"]),
                                  key=lambda c: int(table.loc[table.class_name == c, "label"].iloc[0]))
        self.num_classes = len(self.class_names)
        self.levels: list[str] = []
        self.content_hash = hashlib.sha256(pd.util.hash_pandas_object(table).values.tobytes()).hexdigest()[:16]
        self.sizes = [len(table)]
        self.labeled_sizes = [len(table)]

    def subset(self, n):
        return self.table[self.table["rank"] < n].sort_values("rank")

    def labeled(self, n):
        return self.table[self.table["labeled_rank"] < n].sort_values("labeled_rank")

    def all(self):
        return self.table

    def abs_path(self, row):
        return self.root / row["path"]

    kind_of, channels_of = Manifest.kind_of, Manifest.channels_of  # they read only `meta` and `name`

    def abs_paths(self, df):
        return [self.abs_path(r) for _, r in df.iterrows()]


def reader_manifest(root, df, kind="image", **meta) -> TinyManifest:
    """Manifest `m1` (seed 7, images of `kind`) of the rows `df` under `root`, as ImageReader reads one."""
    return TinyManifest("m1", root, df, {"kind": kind, "seed": 7, **meta})


def write_images(root: Path, n: int = 24, size: int = 20, fmt: str = "png", classes: int = 3) -> pd.DataFrame:
    """n small RGB images: class c is a bright square in corner c on a noisy background."""
    rng = np.random.default_rng(0)
    rows = []
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c = i % classes
        a = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
        y, x = [(0, 0), (0, size // 2), (size // 2, 0)][c % 3]
        a[y : y + size // 2, x : x + size // 2, c % 3] = 230
        rel = f"c{c}/img{i:03d}.{fmt}"
        (root / f"c{c}").mkdir(exist_ok=True)
        Image.fromarray(a).save(root / rel)
        rows.append({"path": rel, "label": c, "class_name": f"class{c}", "rank": i, "labeled_rank": i})
    df = pd.DataFrame(rows)
    df["label"] = df["label"].astype("int64")
    return df




def tiny_config(**over):
    """A thin small-image ResNet-18 on 16 px crops: a SimCLR step takes a few ms."""
    from study.train import PretrainConfig

    d = {
        "manifest": "tiny",
        "method": "simclr",
        "backbone": "resnet18_small",
        "width": 4,
        "batch_size": 8,
        "steps": 6,
        "head": [32, 16],
        "image_size": 16,
        "num_workers": 0,
        "device": TEST_DEVICE,
        "optim": {"name": "lars", "lr": 1.0, "warmup_epochs": 0.5},
        "moco": {"queue_size": 32, "dim": 16, "hidden": 32},
        "byol": {"projector_hidden": 32, "dim": 16, "predictor_hidden": 32},
        "checkpoint_every_minutes": None,
        "log_every_steps": 3,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return PretrainConfig.from_dict(d)

