"""Image-folder trees of real PNG files for the manifest tests."""
import random
from pathlib import Path

import numpy as np
from PIL import Image


def write_tree(root: Path, classes: dict[str, int], order_seed: int | None = None) -> Path:
    """`root/train/<class>/<i>.png`, real PNG files, created in a shuffled order when `order_seed` is given."""
    files = [(c, i) for c, n in classes.items() for i in range(n)]
    if order_seed is not None:
        random.Random(order_seed).shuffle(files)
    for c, i in files:
        p = root / "train" / c / f"{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(p)
    return root


CLASSES = {"cat": 9, "dog": 6, "eel": 4, "fox": 5}  # 24 images, imbalanced


def materialized(build, cli, out: Path):
    """`toy` built (the `build` fixture) and materialized in `out` (the `cli` fixture): its PNG files, in order, and
    their bytes."""
    build("toy")
    assert cli("manifest", "materialize", "toy", "--out", out)[0] == 0
    files = sorted(out.rglob("*.png"))
    return files, {p: p.read_bytes() for p in files}


def rehash(manifests: Path, name: str) -> None:
    """Make `<name>.json` record the hashes of `<name>.parquet` as it is now: an edit of the rows the hashes agree
    with, so that what a reader checks next is the rows themselves."""
    import json

    import pyarrow.parquet as pq

    from study.manifests.store import content_hash, table_hash

    path = manifests / f"{name}.json"
    meta = json.loads(path.read_text())
    meta["table_hash"] = table_hash(pq.read_table(manifests / f"{name}.parquet"))
    meta["content_hash"] = content_hash(meta)
    path.write_text(json.dumps(meta))
