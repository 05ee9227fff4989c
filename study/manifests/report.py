"""`study manifest list | show | export`: what manifests exist, what one holds, and a subset as a plain CSV."""
from __future__ import annotations

import csv
import os
import sys
from typing import TextIO

import numpy as np

from study.counts import format_count
from study.errors import StudyError
from study.manifests.manifest import load_manifest
from study.manifests.store import BASE_COLUMNS, list_manifests, load_meta, manifest_paths, meta_intact
from study.paths import manifests_dir, not_a_folder


def list_text() -> str:
    names = list_manifests()
    if not names:
        folder = manifests_dir()
        named = "STUDY_MANIFESTS names it" if os.environ.get("STUDY_MANIFESTS") else "the default: set STUDY_MANIFESTS"
        why = not_a_folder(folder)
        missing = f" ({why}; {named})" if why else ""
        return f"no manifests in {folder}{missing}\n"
    rows = [("name", "dataset", "split", "images", "classes", "sizes", "labeled", "corruption", "hash")]
    for name in names:
        try:
            meta = load_meta(name)
        except StudyError as e:
            rows.append((name, f"unreadable: {e}", "", "", "", "", "", "", ""))
            continue
        rows.append((
            name, str(meta.get("dataset")), str(meta.get("split")), str(meta.get("num_images")),
            str(len(meta.get("class_names") or [])), ",".join(map(format_count, meta.get("sizes") or [])) or "-",
            ",".join(map(format_count, meta.get("labeled_sizes") or [])) or "-", str(meta.get("corruption") or "-"),
            str(meta.get("content_hash", ""))[:12],
        ))
    return _columns(rows)


def _columns(rows: list[tuple]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def show_text(name: str) -> str:
    """What `study manifest show` prints; StudyError naming the file when the metadata was edited since it was
    written, or a label has no class."""
    m = load_manifest(name)
    meta = m.meta
    table_path, meta_path = manifest_paths(name)
    if not meta_intact(meta):
        raise StudyError(f"{meta_path}: metadata differs from the recorded content hash (the JSON file was changed); "
                         f"rebuild the manifest")
    lines = [f"manifest {m.name}  ({meta.get('dataset')} {meta.get('split')}, kind {meta.get('kind')})"]
    if meta.get("root"):
        lines.append(f"root: {meta['root']}")
    for src, root in (meta.get("roots") or {}).items():
        lines.append(f"root of {src}: {root}")
    balanced, labeled = ("per source" if meta.get(k) is None else meta[k] for k in ("balanced", "labeled_balanced"))
    lines.append(f"images: {m.num_images}   classes: {m.num_classes}   seed: {meta.get('seed')}   "
                 f"balanced: {balanced}   labeled balanced: {labeled}")  # a pool's: its sources' orders
    lines.append(f"sizes: {', '.join(map(format_count, m.sizes)) or '-'}   "
                 f"labeled sizes: {', '.join(map(format_count, m.labeled_sizes)) or '-'}")
    if m.levels:
        lines.append(f"taxonomy levels: {', '.join(m.levels)}")
    for key in ("label_rule", "corruption"):
        if meta.get(key):
            lines.append(f"{key.replace('_', ' ')}: {meta[key]}")
    if meta.get("classes_from"):
        lines.append(f"classes from: {meta['classes_from']}")
    dropped = (meta.get("info") or {}).get("dropped_classes") or {}
    if dropped:
        lines.append("dropped classes: " + ", ".join(f"{c} ({n} image{'' if n == 1 else 's'})"
                                                   for c, n in dropped.items()))
    if meta.get("base"):
        lines.append(f"base: {meta['base']['name']} ({meta['base']['content_hash'][:12]})")
    for src in meta.get("pool") or []:
        lines.append(f"pooled: {src['name']}:{format_count(src['size'])} ({src['content_hash'][:12]})")
    for s in meta.get("sources") or []:
        lines.append(f"source file: {s['path']}  sha256 {s['sha256']}")
    lines.append(f"content hash: {m.content_hash}")
    t = m.table
    labels = t["label"].to_numpy()
    if len(labels) and (labels.min() < 0 or labels.max() >= m.num_classes):
        raise StudyError(f"{table_path}: labels outside 0..{m.num_classes - 1}, the classes of {meta_path.name} "
                         f"(the Parquet file was changed); rebuild the manifest")
    rank, lrank = t["rank"].to_numpy(), t["labeled_rank"].to_numpy()
    cols = [("all", np.bincount(labels, minlength=m.num_classes))]
    cols += [(format_count(n), np.bincount(labels[rank < n], minlength=m.num_classes)) for n in m.sizes]
    cols += [(f"labeled {format_count(n)}", np.bincount(labels[lrank < n], minlength=m.num_classes))
             for n in m.labeled_sizes]
    rows = [("label", "class", *[c for c, _ in cols])]
    for i, cname in enumerate(m.class_names):
        rows.append((str(i), cname, *[str(int(v[i])) for _, v in cols]))
    lines.append("images per class:")
    return "\n".join(lines) + "\n" + _columns(rows)


def export_csv(name: str, out: TextIO = sys.stdout, subset: int | None = None, labeled: int | None = None) -> int:
    """Write path,label,class_name, then the taxonomy/supercategory/source columns, as CSV; returns the row count."""
    if subset is not None and labeled is not None:
        raise StudyError("export: give --subset or --labeled, not both")
    m = load_manifest(name)
    df = m.subset(subset) if subset is not None else m.labeled(labeled) if labeled is not None else m.all()
    extra = [c for c in m.levels if c in df.columns and c != "class_name"]
    extra += sorted(c for c in df.columns if c not in BASE_COLUMNS and c not in extra)
    columns = ["path", "label", "class_name", *extra]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(df[c].tolist() for c in columns)))
    return len(df)
