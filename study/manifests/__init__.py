"""Frozen, verifiable dataset manifests: nested pretraining subsets, labeled subsets, pooled and corrupted variants.

Other layers use `load_manifest(name) -> Manifest` and `manifest_exists(name)`; see docs/architecture.md section 1.
A notebook builds one as `study manifest build` does (the folder: $STUDY_MANIFESTS, else ./manifests):

    from study.manifests import BuildConfig, build_manifest
    meta, written = build_manifest(BuildConfig(dataset="imagefolder", root="data/shapes", split="train",
                                               name="shapes_train", sizes=[500, "1k"], labeled_sizes=[100]))

`build_manifest` (imported on first use) returns the metadata and whether it wrote the files (False: the same
content was there); a StudyError names what is wrong, as the command does.
"""
from __future__ import annotations

from study.lazy import lazy_names
from study.manifests.manifest import Manifest, load_manifest
from study.manifests.store import list_manifests, manifest_exists

_BUILD_NAMES = ("BuildConfig", "build_manifest")

__all__ = ["Manifest", "list_manifests", "load_manifest", "manifest_exists", *_BUILD_NAMES]

__getattr__, __dir__ = lazy_names(__name__, "study.manifests.build", _BUILD_NAMES, __all__)
