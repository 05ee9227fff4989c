"""`study manifest verify`: the content hash, the ranks (hence nesting), labels, and optionally every file."""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from study.errors import StudyError
from study.manifests.parallel import run_jobs
from study.manifests.store import (
    BASE_COLUMNS,
    Manifest,
    check_meta,
    column_problem,
    load_manifest,
    manifest_exists,
    manifest_paths,
    meta_intact,
    read_arrow,
    read_meta,
    table_hash,
)


def _is_permutation(values: np.ndarray) -> bool:
    n = len(values)
    if n == 0:
        return True
    if values.min() != 0 or values.max() != n - 1:
        return False
    return bool(np.bincount(values, minlength=n).max() == 1)


def verify_manifest(name: str, files: bool = False, workers: int = 1) -> list[str]:
    """Problems found (an empty list when the manifest is sound). Metadata that no longer has its content hash is
    reported alone: none of its fields is trusted; columns not of their type end the checks of the rows."""
    table_path, meta_path = manifest_paths(name)
    meta = read_meta(name)
    if not meta_intact(meta):
        return [f"metadata differs from the recorded content hash (the JSON file was changed): {meta_path}"]
    try:
        m = Manifest(name, check_meta(meta, meta_path))
    except StudyError as e:
        return [str(e)]
    table = read_arrow(name, checked=False)
    problem = column_problem(table)
    if problem:  # the rows cannot be read as a manifest's
        return [f"{table_path}: {problem} (the Parquet file was changed)"]
    problems: list[str] = []
    if table_hash(table) != meta.get("table_hash"):
        problems.append("rows differ from the recorded table hash (the Parquet file was changed)")
    missing = [c for c in BASE_COLUMNS if c not in table.column_names]
    if missing:
        return problems + [f"missing columns: {', '.join(missing)}"]
    n = table.num_rows
    if n != meta.get("num_images"):
        problems.append(f"{n} rows, the metadata says {meta.get('num_images')}")
    rank = table.column("rank").to_numpy()
    labeled_rank = table.column("labeled_rank").to_numpy()
    if not _is_permutation(rank):
        problems.append("ranks are not 0..N-1 each once: subsets would not be nested")
    elif not np.array_equal(rank, np.arange(n)):
        problems.append("rows are not stored in rank order")
    if not _is_permutation(labeled_rank):
        problems.append("labeled ranks are not 0..N-1 each once: labeled subsets would not be nested")
    for what, sizes in (("size", m.sizes), ("labeled size", m.labeled_sizes)):
        if sizes != sorted(set(sizes)) or any(s > n for s in sizes):
            problems.append(f"{what}s {sizes} are not increasing sizes within {n} images")
    labels = table.column("label").to_numpy()
    if n and (labels.min() < 0 or labels.max() >= m.num_classes):
        problems.append(f"labels outside 0..{m.num_classes - 1}")
    elif n:
        expected = np.array(m.class_names, dtype=object)[labels]
        if not np.array_equal(expected, np.array(table.column("class_name").to_pylist(), dtype=object)):
            problems.append("class_name does not match class_names[label]")
    key = pc.binary_join_element_wise(table.column("source"), table.column("path"), "\n") \
        if "source" in table.column_names else table.column("path")
    if pc.count_distinct(key).as_py() != n:
        problems.append("an image is listed twice")
    problems += _check_lineage(m, table)
    if files:
        problems += check_files(m, workers)
    return problems


def _check_lineage(m, table) -> list[str]:
    problems = []
    base = m.meta.get("base")
    if base and manifest_exists(base["name"]):
        b = load_manifest(base["name"])
        if b.meta.get("table_hash") != m.meta.get("table_hash"):
            problems.append(f"rows differ from those of its base manifest {base['name']!r}")
        elif b.content_hash != base.get("content_hash"):
            problems.append(f"base manifest {base['name']!r} changed since this one was made")
    for src in m.meta.get("pool") or []:
        if not manifest_exists(src["name"]):
            continue
        s = load_manifest(src["name"])
        if s.content_hash != src.get("content_hash"):
            problems.append(f"pooled source {src['name']!r} changed since this pool was made")
            continue
        mine = table.filter(pc.equal(table.column("source"), src["name"])).column("path").to_pylist()
        theirs = read_arrow(src["name"]).slice(0, src["size"]).column("path").to_pylist()
        if set(mine) != set(theirs):
            problems.append(f"rows of {src['name']!r} are not its nested prefix of {src['size']} images")
    return problems


def _check_one(args) -> str | None:
    kind, file = args
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(file) as img:
                img.load()
        elif kind == "npy":
            arr = np.load(file, mmap_mode="r")
            np.asarray(arr[-1])
        else:
            from study.datasets.idx import load_idx

            name, _, i = file.rpartition("#")
            images = load_idx(name)
            if not 0 <= int(i) < len(images):
                return f"{file}: index {i} outside the {len(images)} images of {name}"
        return None
    except FileNotFoundError:
        return f"{file}: missing"
    except StudyError as e:
        return f"{file}: {e}"
    except Exception as e:  # every decoder failure is reported, not raised
        return f"{file}: does not decode ({type(e).__name__}: {e})"


def check_files(m, workers: int = 1) -> list[str]:
    """Every file exists and decodes; one problem line per file that does not."""
    files = [str(p) for p in m.abs_paths(m.table)]
    sources = m.table["source"].tolist() if m.meta.get("kinds") else [None] * len(files)
    jobs = [(m.kind_of(s), f) for s, f in zip(sources, files)]  # a pool of several kinds: each row by its source
    return run_jobs(_check_one, jobs, workers, "files checked")
