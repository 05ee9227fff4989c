"""Where things live on disk. Every location can be moved with an environment variable."""
from __future__ import annotations

import os
from pathlib import Path


def manifests_dir() -> Path:
    """Frozen manifests: `STUDY_MANIFESTS`, else `./manifests`."""
    return Path(os.environ.get("STUDY_MANIFESTS", "manifests"))


def workdir() -> Path:
    """Job folders, checkpoints, results and ledgers: `STUDY_WORKDIR`, else `./runs`."""
    return Path(os.environ.get("STUDY_WORKDIR", "runs"))


def cache_dir() -> Path:
    """Downloaded-package and dataset caches: `STUDY_CACHE`, else `./.cache`."""
    return Path(os.environ.get("STUDY_CACHE", ".cache"))
