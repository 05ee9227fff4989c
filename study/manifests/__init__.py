"""Frozen, verifiable dataset manifests: nested pretraining subsets, labeled subsets, pooled and corrupted variants.

Other layers use `load_manifest(name) -> Manifest` and `manifest_exists(name)`; see docs/architecture.md section 1.
"""
from __future__ import annotations

from study.manifests.manifest import Manifest, load_manifest
from study.manifests.store import list_manifests, manifest_exists

__all__ = ["Manifest", "list_manifests", "load_manifest", "manifest_exists"]
