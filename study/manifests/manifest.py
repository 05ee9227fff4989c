"""`Manifest`: a frozen manifest as the other layers read it (its metadata, subsets and files), and the loaders
that check what they read (study.manifests.store holds the files)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from study.errors import StudyError
from study.manifests.store import (load_meta, manifest_exists, manifest_paths, meta_changed, meta_intact, read_arrow,
                                   read_checked, rows_problem)
from study.paths import manifests_dir


class Manifest:
    """A frozen manifest. The table is read on first use, from `folder` (absolute; default: the manifests folder
    when it was made); rows are in rank order."""

    def __init__(self, name: str, meta: dict, folder: str | os.PathLike | None = None):
        self.name = name
        self.meta = meta
        self.folder = Path(folder if folder is not None else manifests_dir()).absolute()
        self._rows: pa.Table | None = None
        self._table = None

    @property
    def rows(self) -> pa.Table:
        """The rows (Arrow), read once and checked against the recorded table hash (StudyError naming the Parquet
        file when they differ: about 0.6 s per million rows, beside the 1 s the read takes)."""
        if self._rows is None:
            table = read_arrow(self.name, folder=self.folder)
            problem = rows_problem(table, self.meta)
            if problem:
                raise StudyError(f"{self.files[0]} (manifest {self.name}): {problem} (the Parquet file "
                                 f"was changed); `study manifest verify {self.name}` says more")
            self._rows = table
        return self._rows

    @property
    def table(self):
        """The rows (pandas), read once (`rows`, whose Arrow copy is then let go: a job keeps one copy)."""
        if self._table is None:
            self._table = self.rows.to_pandas()
            self._rows = None
        return self._table

    @property
    def files(self) -> tuple[Path, Path]:
        """Its Parquet and JSON files."""
        return manifest_paths(self.name, self.folder)

    @property
    def content_hash(self) -> str:
        """The recorded content hash; StudyError naming the JSON file where it records none (every build records
        one: metadata written by hand, or edited)."""
        value = self.meta.get("content_hash")
        if not isinstance(value, str) or not value:
            raise StudyError(f"{self.files[1]}: manifest metadata has no 'content_hash'; build the "
                             f"manifest again (`study manifest verify {self.name}` says more)")
        return value

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def num_classes(self) -> int:
        return len(self.meta["class_names"])

    @property
    def num_images(self) -> int:
        return int(self.meta["num_images"])

    @property
    def levels(self) -> list[str]:
        return list(self.meta.get("levels") or [])

    @property
    def sizes(self) -> list[int]:
        return list(self.meta.get("sizes") or [])

    @property
    def labeled_sizes(self) -> list[int]:
        return list(self.meta.get("labeled_sizes") or [])

    @property
    def corruption(self):
        spec = self.meta.get("corruption")
        if spec is None:
            return None
        from study.corruptions import parse_corruption

        return parse_corruption(spec)

    def _check_n(self, n: int, what: str) -> int:
        n = int(n)
        if n < 0 or n > self.num_images:
            raise StudyError(f"manifest {self.name}: {what} of {n} images asked, it has {self.num_images}")
        return n

    def subset(self, n: int):
        """Pretraining subset: the rows of rank < n, in rank order (nested by construction)."""
        n = self._check_n(n, "subset")
        t = self.table
        return t[t["rank"] < n].sort_values("rank", kind="stable")

    def labeled(self, n: int):
        """Labeled subset: the rows of labeled_rank < n, in labeled_rank order (class-balanced unless built
        with --labeled-uniform; nested)."""
        n = self._check_n(n, "labeled subset")
        t = self.table
        return t[t["labeled_rank"] < n].sort_values("labeled_rank", kind="stable")

    def all(self):
        return self.table

    def kind_of(self, source: str | None = None) -> str:
        """How a row's file is read ("image", "npy", "idx"): per source in a pool that records it (`meta["kinds"]`:
        sources of several kinds or channels), else the manifest's `kind`."""
        kinds = self.meta.get("kinds")
        if kinds:
            if source not in kinds:
                raise StudyError(f"manifest {self.name}: row source {source!r} has no kind")
            return kinds[source]
        return self.meta.get("kind", "image")

    def channels_of(self, source: str | None = None) -> list[int] | None:
        """The channels an `npy` row is read with: per source where the pool records kinds, else `meta["channels"]`."""
        if self.meta.get("kinds"):
            return (self.meta.get("source_channels") or {}).get(source)
        return self.meta.get("channels")

    def root_of(self, source: str | None = None) -> Path:
        roots = self.meta.get("roots")
        if roots:
            if source not in roots:
                raise StudyError(f"manifest {self.name}: row source {source!r} has no root")
            return Path(roots[source])
        if not self.meta.get("root"):
            raise StudyError(f"{self.files[1]}: manifest metadata has no 'root'")
        return Path(self.meta["root"])

    def abs_path(self, row: Any) -> Path:
        """Absolute file of a row (a table row, a dict, or a relative path of a single-root manifest)."""
        if isinstance(row, (str, os.PathLike)):
            return self.root_of(None) / str(row)
        source = row["source"] if self.meta.get("roots") else None
        return self.root_of(source) / str(row["path"])

    def abs_paths(self, df) -> list[Path]:
        if self.meta.get("roots"):
            return [self.root_of(s) / p for s, p in zip(df["source"].tolist(), df["path"].tolist())]
        root = self.root_of(None)
        return [root / p for p in df["path"].tolist()]

    def __repr__(self) -> str:
        return f"Manifest({self.name!r}, {self.num_images} images, {self.num_classes} classes)"


def load_manifest(name: str, folder: str | os.PathLike | None = None) -> Manifest:
    """The manifest `name` from `folder` (default: the manifests folder, `STUDY_MANIFESTS` or ./manifests); StudyError
    if it is missing. Its rows are read from that folder later, wherever the current folder or the variable is then."""
    return Manifest(name, load_meta(name, folder), folder)


def _damaged(name: str, role: str, broken: str) -> StudyError:
    return StudyError(f"{role} manifest {name!r} is damaged: {broken}; `study manifest verify {name}` says more")


def load_intact_meta(name: str, role: str) -> dict:
    """`load_meta(name)` of a manifest another is made from (`role`), refused (StudyError naming the JSON file) when
    the metadata no longer matches its content hash: its class list would give the new manifest wrong labels."""
    meta = load_meta(name)
    if not meta_intact(meta):
        raise _damaged(name, role, meta_changed(manifest_paths(name)[1]))
    return meta


def load_intact(name: str, role: str) -> Manifest:
    """The manifest `name`, to make another from (`role`: "base", "pooled source"), its rows read; StudyError naming
    the damaged file when its stored files no longer match their hashes (the new manifest would inherit the damage)."""
    if not manifest_exists(name):
        return load_manifest(name)  # the error that names the manifests folder
    broken, table = read_checked(name)
    if broken:
        raise _damaged(name, role, broken)
    m = load_manifest(name)
    m._rows = table
    return m
