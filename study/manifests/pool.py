"""`study manifest pool`: several sources' own nested prefixes in one manifest, nested in turn.

Source i contributes its first n_i images (its `subset(n_i)`); a row of source rank r sits at the fraction
(r + 0.5) / n_i of its source, and the pool ranks rows by that fraction (ties by source order). So every prefix of
the pool holds each source in proportion, and the pool is nested like its sources. Labels are the union of the
sources' classes, `<source>/<class>` (one slash: Places365's `/a/airfield` gives `places365_train/a/airfield`); paths
stay relative to each source's root (`source` column, `meta["roots"]`).
Sources of several kinds (GLC20's `.npy` patches with image datasets) give `kind: "mixed"`; they, or sources of one
kind read with other channels, record each source's kind and channels in `meta["kinds"]` / `meta["source_channels"]`.
A pool of one kind and one set of channels keeps them as a plain manifest does.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.errors import StudyError
from study.manifests.build import check_sizes, freeze
from study.manifests.sizes import parse_size
from study.manifests.manifest import load_intact
from study.manifests.ranking import ranks_from_order
from study.manifests.store import BASE_COLUMNS, check_name, check_writable, file_keys


# a source's split that is a test split whatever its reader (imagenet, inat21, places365 `val`; GLC20's `test`; an
# image folder's `val/` or `test/`): refused, as a pool is pretrained on; a reader's own are `is_test_split`'s
TEST_SPLITS = ("val", "valid", "validation", "test")


def is_test_split(reader: object, split: str) -> bool:
    """Whether `split` of reader `reader` (a manifest's `dataset`) is a test split: one of TEST_SPLITS, one the
    reader's `suggested_splits` gives a `val` or `test` manifest, or one of its `splits` whose tail after a `_` is one
    of TEST_SPLITS (GLC20's `us_test`, `fr_test`)."""
    from study.datasets.base import registered_attribute

    split = split.lower()
    if split in TEST_SPLITS:
        return True
    suggested = registered_attribute(reader, "suggested_splits")  # a reader of another version of study: none
    own = [s for s in registered_attribute(reader, "splits") if s.lower().rsplit("_", 1)[-1] in TEST_SPLITS]
    named = [suggested[k] for k in ("val", "test") if k in suggested]
    return split in {s.lower() for s in [*own, *named]}


def parse_from(text: str) -> tuple[str, int | None]:
    """`--from NAME:SIZE` as (name, size); SIZE `all`: None, every image of the source (pool_manifests reads it)."""
    name, sep, size = str(text).rpartition(":")
    if not sep or not name:
        raise StudyError(f"--from {text!r}: expected NAME:SIZE, e.g. imagenet_train:250k (or NAME:all)")
    return name, None if size.strip().lower() == "all" else parse_size(size, f"--from {text}")


def _interleave(counts: list[int], ranks: list[np.ndarray]) -> np.ndarray:
    frac = np.concatenate([(r.astype(np.float64) + 0.5) / n for r, n in zip(ranks, counts)])
    src = np.concatenate([np.full(len(r), i) for i, r in enumerate(ranks)])
    return ranks_from_order(np.lexsort((src, frac)))


def _refuse_shared_files(parts: list) -> None:
    """StudyError naming two sources whose pooled prefixes hold the same file (one tree built twice, with another
    seed or split root): the pool would list one image twice, under two labels where their classes differ."""
    keys = [(m, file_keys(m.meta["root"], t.column("path"))) for m, t in parts]
    for i, (a, ka) in enumerate(keys):
        for b, kb in keys[i + 1:]:
            shared = pc.is_in(kb, value_set=ka.combine_chunks() if isinstance(ka, pa.ChunkedArray) else ka)
            count = pc.sum(shared).as_py() or 0
            if count:
                example = kb.filter(shared)[0].as_py()
                raise StudyError(f"--from {a.name} and --from {b.name} share {count} image file(s) in their pooled "
                                 f"prefixes (e.g. {example}): the pool would list an image twice, under two labels "
                                 f"where their classes differ. Pool manifests of different images")


def _load_sources(sources: list[tuple[str, int | None]]) -> list:
    """The source manifests of `--from NAME:SIZE`, each intact, clean (not a pool, not a corrupted variant), not a
    test split (`is_test_split`) and holding SIZE images; StudyError naming the source otherwise."""
    if len(sources) < 2:
        raise StudyError("a pool needs two or more --from NAME:SIZE")
    if len({s for s, _ in sources}) != len(sources):
        raise StudyError("a source is named twice in --from")
    manifests = [load_intact(s, "pooled source") for s, _ in sources]
    for m, (_, n) in zip(manifests, sources):
        if m.meta.get("roots"):
            raise StudyError(f"{m.name} is itself a pool; pool its sources instead")
        if m.meta.get("corruption"):
            raise StudyError(f"{m.name} is a corrupted variant; pool clean manifests, then corrupt the pool")
        split = str(m.meta.get("split") or "")
        if is_test_split(m.meta.get("dataset"), split):
            raise StudyError(f"--from {m.name}: {m.name} is a test split ({m.meta.get('dataset')} {split}): a pool is "
                             f"a pretraining set, and its encoders would be scored on images they were pretrained "
                             f"on; pool train manifests")
        if n is not None and n > m.num_images:
            raise StudyError(f"--from {m.name}:{n}: {m.name} has only {m.num_images} images")
    return manifests


def _pooled_table(parts: list, counts: list[int], common: list[str]) -> pa.Table:
    """The pool's rows in its rank order: each source's prefix (`parts`: (manifest, rows)), labels offset source by
    source, class names and `source` prefixed with the source's name, the extra columns every source has (`common`);
    `rank` and `labeled_rank` interleave the sources' orders in proportion to `counts`."""
    # labeled order inside the pool: each source's labeled order restricted to its prefix, interleaved the same way
    labeled_within = []
    for _, t in parts:
        lr = t.column("labeled_rank").to_numpy()
        labeled_within.append(np.argsort(np.argsort(lr, kind="stable"), kind="stable"))
    rank = _interleave(counts, [np.arange(n) for n in counts])
    labeled_rank = _interleave(counts, labeled_within)

    columns: dict[str, list] = {c: [] for c in ("path", "label", "class_name", "source", *common)}
    offset = 0
    for m, t in parts:
        columns["path"].append(t.column("path"))
        columns["label"].append(pc.add(t.column("label"), offset))
        own = pc.utf8_ltrim(t.column("class_name"), characters="/")  # Places365's "/a/airfield": one slash
        columns["class_name"].append(pc.binary_join_element_wise(m.name, own, "/"))
        columns["source"].append(pa.array([m.name] * t.num_rows, type=pa.string()))
        for c in common:
            columns[c].append(t.column(c))
        offset += m.num_classes
    merged = {k: pa.chunked_array([c for v in vs for c in (v.chunks if isinstance(v, pa.ChunkedArray) else [v])])
              for k, vs in columns.items()}
    order = np.argsort(rank)
    take = pa.array(order)
    table = pa.table({
        "path": merged["path"].take(take), "label": merged["label"].take(take),
        "class_name": merged["class_name"].take(take), "rank": pa.array(rank[order]),
        "labeled_rank": pa.array(labeled_rank[order]), "source": merged["source"].take(take),
        **{c: merged[c].take(take) for c in common},
    })
    return table


def _pool_meta(manifests: list, sources: list[tuple[str, int]], sizes: list[int], labeled_sizes: list[int],
               class_names: list[str], common: list[str], total: int) -> dict:
    """The pool's metadata: its sources (name, content hash, size), their roots, sizes, classes, the taxonomy levels
    every source shares, and kinds and channels (per source where they differ)."""
    # a taxonomy only where every source has one (whichever comes first): its levels are those they share
    levels = ([lv for lv in manifests[0].levels if lv in common or lv == "class_name"]
              if all(m.levels for m in manifests) else [])
    first = manifests[0].meta
    meta = {
        "dataset": "+".join(m.meta.get("dataset", m.name) for m in manifests),
        "split": "+".join(str(m.meta.get("split")) for m in manifests),
        "roots": {m.name: m.meta["root"] for m in manifests},
        "root": None,
        "kind": first.get("kind"),
        "seed": first.get("seed", 0),
        "balanced": None,
        "labeled_balanced": None,
        "sizes": sizes,
        "labeled_sizes": labeled_sizes,
        "num_images": total,
        "class_names": class_names,
        "levels": levels,
        "label_rule": None,
        "sources": [],
        "info": {},
        "corruption": None,
        "base": None,
        "pool": [{"name": m.name, "content_hash": m.content_hash, "size": n} for m, (_, n) in zip(manifests, sources)],
    }
    kinds = {m.name: m.meta.get("kind", "image") for m in manifests}
    channels = {m.name: m.meta["channels"] for m in manifests if "channels" in m.meta}
    if len(set(kinds.values())) > 1 or len({tuple(c) for c in channels.values()}) > 1:
        # GLC20's npy patches with image datasets, or two GLC20 manifests of other channels: rows read per source
        meta["kind"] = first.get("kind") if len(set(kinds.values())) == 1 else "mixed"
        meta["kinds"], meta["source_channels"] = kinds, channels
    elif "channels" in first:
        meta["channels"] = first["channels"]
    return meta


def pool_manifests(name: str, sources: list[tuple[str, int | None]], sizes: list[int],
                   labeled_sizes: list[int]) -> tuple[dict, bool]:
    """Freeze manifest `name`, the pool of each source's first SIZE images (`sources`: (name, size) pairs, as
    `--from NAME:SIZE` gives them; a size None: every image of the source), with its own `sizes` (default: every
    pooled image) and `labeled_sizes`; see the module's docstring for its order, labels and metadata. Returns
    (meta, written), as `freeze`; StudyError (nothing written) for a bad name, a bad source, classes that would merge,
    or two sources sharing image files."""
    check_name(name)
    if name in {s for s, _ in sources}:  # the frozen-name refusal would advise deleting that source
        raise StudyError(f"manifest {name!r} is one of its own sources (--from {name}:...): a pool takes a name of "
                         f"its own, e.g. pooled_{'_'.join(s for s, _ in sources)}")
    check_writable(name)
    manifests = _load_sources(sources)
    sources = [(s, m.num_images if n is None else n) for m, (s, n) in zip(manifests, sources)]  # `all`: every image
    parts, class_names = [], []
    common = None
    for m, (_, n) in zip(manifests, sources):
        t = m.rows.slice(0, n)  # rows are in rank order: the nested prefix
        extra = [c for c in t.column_names if c not in BASE_COLUMNS]
        common = extra if common is None else [c for c in common if c in extra]
        parts.append((m, t))
        class_names += [f"{m.name}/{c.lstrip('/')}" for c in m.class_names]
    twice = sorted(c for c, k in Counter(class_names).items() if k > 1)  # one pass: iNat21 pools 10,000 classes
    if twice:  # `/a` and `a` of one source both read `<source>/a`
        raise StudyError(f"pool {name}: class name(s) {', '.join(twice[:5])} would stand for two classes of one source")
    _refuse_shared_files(parts)
    counts = [n for _, n in sources]
    table = _pooled_table(parts, counts, common)
    total = int(sum(counts))
    sizes = sizes or [total]
    check_sizes(sizes, total, "--sizes", f"pool {name}")
    check_sizes(labeled_sizes, total, "--labeled-sizes", f"pool {name}")
    meta = _pool_meta(manifests, sources, sizes, labeled_sizes, class_names, common, total)
    return freeze(name, table, meta)
