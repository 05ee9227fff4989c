"""Static, nested subsets: every image gets a rank from a keyed hash of (seed, its key: the name its reader gives it,
independent of the folder layout, else its relative path); subset N is the N lowest ranks. Vectorised enough for
millions of paths (one blake2b per key, numpy for the rest)."""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def keyed_hashes(values: pa.Array | list[str], key: str) -> np.ndarray:
    """uint64 blake2b of each string, keyed by `key`."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        items = values.cast(pa.binary()).to_pylist()
    else:
        items = [v.encode("utf-8") for v in values]
    base = hashlib.blake2b(key=key.encode("utf-8")[:64], digest_size=8)
    copy = base.copy
    out = []
    append = out.append
    for item in items:
        h = copy()
        h.update(item)
        append(h.digest())
    return np.frombuffer(b"".join(out), dtype="<u8")


def uniform_order(hashes: np.ndarray) -> np.ndarray:
    """Row order by hash (rows are in key order, so equal hashes fall back to key order)."""
    return np.argsort(hashes, kind="stable")


def balanced_order(hashes: np.ndarray, labels: np.ndarray, class_keys: np.ndarray) -> np.ndarray:
    """Class-balanced row order: within each class by hash, then round-robin over the classes (class order by
    `class_keys`), so any prefix holds as equal a number per class as the class sizes allow."""
    by_class = np.lexsort((hashes, labels))
    sorted_labels = labels[by_class]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    position = np.arange(len(labels)) - starts
    class_rank = np.argsort(np.argsort(class_keys, kind="stable"), kind="stable")
    inner = np.lexsort((class_rank[sorted_labels], position))
    return by_class[inner]


def ranks_from_order(order: np.ndarray) -> np.ndarray:
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def key_order(keys: pa.Array) -> np.ndarray:
    """The canonical row order before ranking: by key (so the listing order never matters)."""
    return pc.sort_indices(keys).to_numpy()


def rank_rows(keys: pa.Array, labels: np.ndarray, class_names: list[str], seed: int, balanced: bool,
              purpose: str) -> np.ndarray:
    """Rank of each row (rows must already be in key order). `purpose` separates independent rankings."""
    hashes = keyed_hashes(keys, f"study:{purpose}:{seed}")
    if balanced:
        class_keys = keyed_hashes(class_names, f"study:{purpose}-classes:{seed}")
        return ranks_from_order(balanced_order(hashes, labels, class_keys))
    return ranks_from_order(uniform_order(hashes))
