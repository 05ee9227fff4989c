"""`study manifest verify`: the content hash, the ranks (hence nesting), labels, lineage, and optionally every file
(read as training reads it; a root that is not a folder here is one problem, not one per image)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.datasets.base import first_repeat
from study.errors import StudyError
from study.manifests.parallel import image_reader, init_image_reader, run_jobs
from study.manifests.manifest import Manifest, load_manifest
from study.manifests.store import (
    BASE_COLUMNS,
    check_meta,
    column_problem,
    file_keys,
    manifest_exists,
    manifest_paths,
    meta_intact,
    read_arrow,
    read_meta,
    roots_not_here,
    rows_problem,
)
from study.paths import manifests_dir


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
    differ = rows_problem(table, meta)
    if differ:
        problems.append(f"{differ} (the Parquet file was changed)")
    missing = [c for c in (*BASE_COLUMNS, *(("source",) if meta.get("roots") else ())) if c not in table.column_names]
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
    twice = _listed_twice(m, table)
    if twice:
        problems.append(f"an image is listed twice ({twice})")
    problems += _check_lineage(m, table)
    if files:
        gone = roots_not_here(meta)
        problems += missing_roots(meta, gone)  # one line per root that is not here, not one per image under it
        if gone and None not in gone and "source" in table.column_names:  # a pool: its other sources' rows
            table = table.filter(pc.invert(pc.is_in(table.column("source"), value_set=pa.array(list(gone)))))
        if None not in gone:
            problems += check_files(m, table, workers)
    return problems


def missing_roots(meta: dict, gone: dict | None = None) -> list[str]:
    """The recorded roots (a pool's: its sources') that are not a folder here, said: no image under them can be
    read from this machine (a problem for `verify --files`; a warning without it: the manifest itself is sound).
    `gone`: roots_not_here(meta), where the caller has it."""
    from study.manifests.rebuild import build_command

    made = meta.get("base") or meta.get("pool")  # a corrupted variant, a pool: made from other manifests
    remedy = ("make it again from its base or sources built at the new place" if made else
              f"build it again there with the options it was built with (the same content hash):\n    "
              f"{build_command(meta)}")
    return [f"root {root} is not a folder here (the dataset moved, or is not mounted on this machine): no image of "
            f"{'source ' + src if src else 'this manifest'} can be read here; if it moved, {remedy}"
            for src, root in (roots_not_here(meta) if gone is None else gone).items()]


def _listed_twice(m: Manifest, table) -> str | None:
    """An image file that two rows name (by root and path: two pooled sources may be one tree), or None."""
    roots = m.meta.get("roots")
    if roots and "source" in table.column_names:
        source = table.column("source")
        names = pc.unique(source)
        root_list = pa.array([str(roots.get(s, f"<no root of {s}>")).rstrip("/") for s in names.to_pylist()])
        key = file_keys(pc.take(root_list, pc.index_in(source, value_set=names)), table.column("path"))
    else:
        key = table.column("path")
    twice = first_repeat(key)
    return None if twice is None else f"e.g. {key[twice[1]].as_py()}"


def missing_lineage(meta: dict) -> list[str]:
    """Warnings for the manifests this one was made from (a corrupted variant's base, a pool's sources) that are not
    in the manifests folder: their checks are skipped. The manifest itself stays usable (its rows and roots are its
    own), so these are warnings, not problems."""
    base = meta.get("base")
    names = ([("base manifest", base["name"])] if isinstance(base, dict) and base.get("name") else []) + \
        [("pooled source", src["name"]) for src in meta.get("pool") or [] if isinstance(src, dict) and src.get("name")]
    return [f"{what} {name!r} not found in {manifests_dir().resolve()}: its rows were not compared with this "
            "manifest's" for what, name in names if not manifest_exists(name)]


# what to do about a manifest made from one since rebuilt
REMAKE = (": delete this manifest's .json and .parquet and make it again (`study plan` on a grid that uses it prints "
          "the command)")


def _check_lineage(m, table) -> list[str]:
    problems = []
    base = m.meta.get("base")
    if base and manifest_exists(base["name"]):
        b = load_manifest(base["name"])
        if b.meta.get("table_hash") != m.meta.get("table_hash"):
            problems.append(f"rows differ from those of its base manifest {base['name']!r}")
        elif b.content_hash != base.get("content_hash"):
            problems.append(f"base manifest {base['name']!r} changed since this one was made{REMAKE}")
    for src in m.meta.get("pool") or []:
        if not manifest_exists(src["name"]):
            continue
        s = load_manifest(src["name"])
        if s.content_hash != src.get("content_hash"):
            problems.append(f"pooled source {src['name']!r} changed since this pool was made{REMAKE}")
            continue
        mine = table.filter(pc.equal(table.column("source"), src["name"])).column("path").to_pylist()
        theirs = read_arrow(src["name"]).slice(0, src["size"]).column("path").to_pylist()
        if set(mine) != set(theirs):
            problems.append(f"rows of {src['name']!r} are not its nested prefix of {src['size']} images")
    return problems


def _check_one(job: tuple[str, str | None]) -> str | None:
    """None when the row's image reads as a job reads it (decoded, the manifest's corruption applied), else the
    problem named by the file."""
    from PIL import Image

    from study.train.images import decode_rgb, empty_reason, is_lazy_jpeg  # here: OpenCV, for --files only

    path, source = job
    reader = image_reader()
    row = {"path": path, "source": source}
    file = reader.manifest.abs_path(row)  # check_files keeps no row without a root
    try:
        img = reader.open(row)
        if reader.corruption is not None and reader.manifest.kind_of(source) == "image":  # decoded, then corrupted
            img = Image.open(file)  # its file checked as a clean manifest's is (an npy or idx row: no image file)
        if not is_lazy_jpeg(img):
            return None  # decoded
        try:
            img.load()  # Pillow refuses damaged data that the decoder of jobs (OpenCV's libjpeg) reads through
        except OSError as e:
            decode_rgb(Image.open(file))  # raises when a job cannot read it either (a truncated file)
            return (f"{file}: damaged JPEG data (Pillow: {e}); jobs read it anyway, as OpenCV's libjpeg recovers "
                    "it (part of the image grey or garbled; a 'Corrupt JPEG data' line in their log, without the "
                    "file's name): replace it with a good copy")
        return None
    except StudyError as e:
        cause = e.__context__  # ImageReader raises `from None`: the decoder's own exception is the context
        if isinstance(cause, FileNotFoundError):
            return f"{file}: missing"
        if empty_reason(str(file)):
            return f"{file}: {empty_reason(str(file))}"
        if cause is not None:
            return f"{file}: does not decode ({type(cause).__name__}: {cause})"
        return str(e)
    except Exception as e:  # a lazily decoded image that fails at load, or anything else: reported, not raised
        return f"{file}: does not decode ({type(e).__name__}: {e})"


def check_files(m: Manifest, table=None, workers: int = 1) -> list[str]:
    """Every row's image reads as training reads it (`ImageReader.open`, then decoded); one problem line per file
    that does not. `table`: the manifest's rows (Arrow; default: its Parquet file as stored, unchecked), so that the
    check never depends on `m.table`, which refuses an edited file."""
    if table is None:
        table = read_arrow(m.name, checked=False)
    problems = []
    roots = m.meta.get("roots")
    if roots:  # a pooled source whose root the metadata lacks: one problem, not one per row of it
        unrooted = pc.invert(pc.is_in(table.column("source"), value_set=pa.array(list(roots), pa.string())))
        for source, n in Counter(table.filter(unrooted).column("source").to_pylist()).items():
            problems.append(f"manifest {m.name}: row source {source!r} has no root: its {n} image(s) cannot be read")
        table = table.filter(pc.invert(unrooted))
    elif not m.meta.get("root"):
        return [f"{m.files[1]}: manifest metadata has no 'root': no image can be read"]
    paths = table.column("path").to_pylist()
    sources = table.column("source").to_pylist() if roots else [None] * len(paths)
    try:  # here first: a manifest the reader refuses is one problem, and forked workers inherit torch's import
        init_image_reader(m.name, m.meta)
    except StudyError as e:
        return problems + [str(e)]
    return problems + run_jobs(_check_one, list(zip(paths, sources)), workers, "files checked",
                               initializer=init_image_reader, initargs=(m.name, m.meta))
