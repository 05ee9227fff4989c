"""Stable hashes: of files, and of JSON-able configs (key order never changes the hash; a value's type does: `0`
and `0.0` hash apart, unless `whole_numbers_as_ints` makes them one first, as job ids and fingerprints do)."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any


def canonical_json(obj: Any) -> str:
    """One spelling per value: sorted keys, no spaces, floats by repr."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_hash(obj: Any, length: int = 12) -> str:
    """Hex digest of the canonical JSON of `obj`, truncated to `length`."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def whole_numbers_as_ints(obj: Any) -> Any:
    """`obj` with every whole float written as an int, in mappings and lists at any depth: a setting's `10` and
    `10.0` (a grid's `warmup_epochs: 0`, a code default's `epochs: 1000.0`) are one value, which canonical JSON would
    spell two ways."""
    if isinstance(obj, Mapping):
        return {k: whole_numbers_as_ints(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [whole_numbers_as_ints(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    return obj


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
