"""`study manifest list | show | export`: what manifests exist, what one holds, and a subset as a plain CSV."""
from __future__ import annotations

import csv
import os
import sys
from typing import TextIO

import numpy as np

from study.counts import format_count
from study.errors import StudyError
from study.manifests.manifest import Manifest, load_manifest
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
    for r in list_rows(names):
        if r["unreadable"]:
            rows.append((r["name"], f"unreadable: {r['unreadable']}", "", "", "", "", "", "", ""))
            continue
        rows.append((
            r["name"], str(r["dataset"]), str(r["split"]), str(r["num_images"]), str(r["num_classes"]),
            ",".join(map(format_count, r["sizes"])) or "-", ",".join(map(format_count, r["labeled_sizes"])) or "-",
            str(r["corruption"] or "-"), str(r["content_hash"] or "")[:12],
        ))
    return _columns(rows)


def list_rows(names: list[str] | None = None) -> list[dict]:
    """One dict per manifest (`study manifest list --format json`): name, dataset, split, num_images, num_classes,
    sizes, labeled_sizes, corruption, content_hash (whole), and `unreadable` (why its metadata does not read, the
    other values then None; else None)."""
    out = []
    for name in list_manifests() if names is None else names:
        try:
            meta = load_meta(name)
        except StudyError as e:
            out.append({"name": name, **dict.fromkeys(_LISTED), "unreadable": str(e)})
            continue
        out.append({"name": name, "dataset": meta.get("dataset"), "split": meta.get("split"),
                    "num_images": meta.get("num_images"), "num_classes": len(meta.get("class_names") or []),
                    "sizes": list(meta.get("sizes") or []), "labeled_sizes": list(meta.get("labeled_sizes") or []),
                    "corruption": meta.get("corruption"), "content_hash": meta.get("content_hash"),
                    "unreadable": None})
    return out


_LISTED = ("dataset", "split", "num_images", "num_classes", "sizes", "labeled_sizes", "corruption", "content_hash")


def _columns(rows: list[tuple]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def show_text(name: str) -> str:
    """What `study manifest show` prints; StudyError naming the file when the metadata was edited since it was
    written, or a label has no class."""
    m, counts = _counted(name)
    meta = m.meta
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
    if m.levels:  # each with its number of values, told by their path as granularity scores them
        per_level = values_per_level(m)
        lines.append(f"taxonomy levels (values): {', '.join(f'{lv} ({per_level[lv]})' for lv in m.levels)}")
    for key in ("label_rule", "corruption"):
        if meta.get(key):
            lines.append(f"{key.replace('_', ' ')}: {meta[key]}")
    if meta.get("channels"):  # the patch channels an image is made of (GLC20's --channels)
        lines.append(f"channels: {','.join(map(str, meta['channels']))}")
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
    rows = [("label", "class", *counts)]
    for i, cname in enumerate(m.class_names):
        rows.append((str(i), cname, *[str(int(v[i])) for v in counts.values()]))
    lines.append("images per class:")
    return "\n".join(lines) + "\n" + _columns(rows)


def show_json(name: str) -> dict:
    """`study manifest show --format json`: {"meta": the manifest's metadata as written, "images_per_class":
    {"class_names": [...], "all": [n per class], "<size>": [...], "labeled <size>": [...]}} (the table's columns,
    sizes spelled as there: 5, 50k, 1M), "values_per_level": {level: number of values}}."""
    m, counts = _counted(name)
    return {"meta": m.meta, "images_per_class": {"class_names": list(m.class_names),
                                                 **{k: [int(x) for x in v] for k, v in counts.items()}},
            "values_per_level": values_per_level(m)}


def values_per_level(m: Manifest) -> dict[str, int]:
    """Each taxonomy level's number of values among the manifest's rows, a value told by its path from the root (two
    genera Morus in two kingdoms are two), as a granularity evaluation counts them (`study.evaluate.granularity`)."""
    # the distinct full paths once (iNat21's 2.7M rows: 10k), each level's prefixes among them: 1 s, not 6 s
    paths = m.table[m.levels].drop_duplicates()
    return {lv: int(len(paths[m.levels[:i + 1]].drop_duplicates())) for i, lv in enumerate(m.levels)}


def _counted(name: str) -> tuple[Manifest, dict[str, np.ndarray]]:
    """The manifest `name` and its images per class: of all, each pretraining subset, each labeled subset; a
    StudyError naming the file when its metadata was edited since it was written or a label has no class."""
    m = load_manifest(name)
    table_path, meta_path = manifest_paths(name)
    if not meta_intact(m.meta):
        raise StudyError(f"{meta_path}: metadata differs from the recorded content hash (the JSON file was changed); "
                         f"rebuild the manifest")
    t = m.table
    labels = t["label"].to_numpy()
    if len(labels) and (labels.min() < 0 or labels.max() >= m.num_classes):
        raise StudyError(f"{table_path}: labels outside 0..{m.num_classes - 1}, the classes of {meta_path.name} "
                         f"(the Parquet file was changed); rebuild the manifest")
    rank, lrank = t["rank"].to_numpy(), t["labeled_rank"].to_numpy()
    counts = {"all": np.bincount(labels, minlength=m.num_classes)}
    counts.update((format_count(n), np.bincount(labels[rank < n], minlength=m.num_classes)) for n in m.sizes)
    counts.update((f"labeled {format_count(n)}", np.bincount(labels[lrank < n], minlength=m.num_classes))
                  for n in m.labeled_sizes)
    return m, counts


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
