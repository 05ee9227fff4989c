"""Corruptions of pretraining images, one file each, behind `CORRUPTIONS`.

`parse_corruption("downsample:factor=2") -> CorruptionSpec`; `apply_corruption(spec, img, key) -> PIL.Image`,
deterministic in `key` (the manifest seed and the image's relative path, `"<seed>:<path>"`; in a pooled manifest
also the row's source, `"<seed>:<source>:<path>"`: study.train.images.ImageReader.corruption_key). The path, not the
layout-independent rank key: the same images in two folder layouts get the same subsets but other noise (kept, as
another key would change the pixels of existing corrupted manifests under their content hash).
The paper states no corruption parameter but the downsampling factors (2x, 4x); the defaults here are ours (see
each module).
"""
from __future__ import annotations

from study.corruptions.base import CORRUPTIONS, Corruption, CorruptionSpec, apply_corruption, parse_corruption

from study.registry import import_modules  # noqa: E402

import_modules(__name__, __path__)  # each corruption module registers itself

__all__ = ["CORRUPTIONS", "Corruption", "CorruptionSpec", "apply_corruption", "parse_corruption"]
