"""What a reader returns (`Index`), what it is given (`ReaderOptions`), and the checks every index passes."""
from __future__ import annotations

import csv
import io
import os
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.datasets.scan import scan_threads
from study.errors import StudyError, did_you_mean
from study.hashing import file_sha256
from study.registry import Registry


@dataclass(frozen=True)
class ReaderOptions:
    """Options some readers use (each declares which: `reader_options`): GLC20's `label_rule` and `channels` (a
    taxonomy is `study manifest build`'s to apply, after its class flags: `apply_taxonomy`)."""

    label_rule: str | None = None
    channels: tuple[int, ...] | None = None


def reading_flags(reading: dict) -> dict[str, str]:
    """Flag -> value as the flag is written (`--label-rule landcover_mode`, `--channels 3,1,2`), of each
    ReaderOptions field that `reading` (manifest metadata, an index's info, the flags given) records (channels a tuple
    or a list: one reading)."""
    return {f"--{key.replace('_', '-')}": ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
            for key in ReaderOptions.__dataclass_fields__ if (v := reading.get(key)) is not None}


@dataclass
class Index:
    """Every image of one split: relative paths (`/` separators) and labels 0..C-1, plus what describes them.

    `keys` are what the subset ranks hash: each image's name independent of the folder layout (two copies of a
    dataset laid out differently give the same keys, hence the same subsets; None: the paths); `columns` holds extra
    per-row string columns (taxonomy levels, `supercategory`) as arrow arrays; `levels` names the taxonomy columns
    coarse -> fine; `sources` lists the annotation files read, with their sha256; `info` goes into the manifest's
    metadata (label rule, image folder, channels).
    """

    paths: pa.Array
    labels: np.ndarray
    class_names: list[str]
    kind: str = "image"
    levels: list[str] = field(default_factory=list)
    columns: dict[str, pa.Array] = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    keys: pa.Array | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def rank_keys(self) -> pa.Array:
        return self.keys if self.keys is not None else self.paths


def basenames(paths: pa.Array) -> pa.Array:
    """The file name of each `/`-separated path."""
    return pc.replace_substring_regex(paths, pattern="^.*/", replacement="")


def dirnames(paths: pa.Array | list[str]) -> pa.Array:
    """The folder of each `/`-separated path, `""` for a path without one."""
    return pc.replace_substring_regex(pa.array(paths, type=pa.string()), pattern="/?[^/]*$", replacement="")


Reader = Callable[[Path, str, ReaderOptions], Index]
DATASETS: Registry[Reader] = Registry("dataset")


def reader_options(name: str) -> tuple[str, ...]:
    """The ReaderOptions fields (`label_rule`, `channels`) that reader `name` reads, as its `options` attribute
    declares them (none without one): `study manifest build` refuses the others' flags for it."""
    return tuple(reader_attribute(name, "options"))


SPLIT_SUFFIXES = ("train", "val", "test")  # the tails of a manifest name `study plan` reads a split from


def _strings(value: object) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)


# a reader's optional attributes: (its value without one, the check of a value given, what the check asks)
READER_ATTRIBUTES: dict[str, tuple[object, Callable[[object], bool], str]] = {
    "options": ((), lambda v: _strings(v) and set(v) <= set(ReaderOptions.__dataclass_fields__),
                f"a tuple of ReaderOptions fields ({', '.join(ReaderOptions.__dataclass_fields__)})"),
    "suggested_splits": ({}, lambda v: isinstance(v, dict) and set(v) <= set(SPLIT_SUFFIXES)
                         and all(isinstance(s, str) for s in v.values()),
                         "a dict from a manifest name's tail (train, val, test) to the split its build command gives, "
                         "e.g. {'val': 'test'}"),
    "splits": ((), _strings, "a tuple of split names"),
    "shared_files": (None, lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
                     "a string (not empty: an empty one would turn the check off): what to do when a train and a test "
                     "manifest of the reader share an image file"),
    "own_taxonomy": (False, lambda v: isinstance(v, bool),
                     "True or False: whether the reader gives its index taxonomy levels of its own (iNat21's), so "
                     "that `study plan` asks no --taxonomy file of a granularity job's manifests"),
}


def reader_attribute(name: str, attr: str) -> object:
    """Reader `name`'s optional attribute `attr` (READER_ATTRIBUTES; its default without one); StudyError naming the
    reader's module where the value is not of the kind the attribute takes."""
    reader = DATASETS.get(name)
    default, valid, wanted = READER_ATTRIBUTES[attr]
    value = getattr(reader, attr, default)
    if not valid(value):
        raise StudyError(f"reader {name!r} ({getattr(reader, '__module__', reader)}): its `{attr}` attribute is "
                         f"{value!r}, not {wanted}")
    return value


def registered_attribute(reader: object, attr: str) -> object:
    """`reader_attribute` of reader `reader` where it is registered here; the attribute's default for any other
    name (a manifest's reader of another version of study, or none)."""
    from study.datasets import DATASETS  # every reader registered

    known = isinstance(reader, str) and reader in DATASETS
    return reader_attribute(reader, attr) if known else READER_ATTRIBUTES[attr][0]


def shared_files_remedy(reader: object) -> str | None:
    """What to do when a train and a test manifest of reader `reader` share an image file: its `shared_files`
    attribute (an image folder without a folder per split, GLC20 occurrence tables of one's own that list an
    occurrence in both); None for a reader whose splits are their own files, or one not registered here."""
    return registered_attribute(reader, "shared_files")


def open_text(path: Path) -> io.StringIO:
    """The UTF-8 text of `path` as a file (newlines kept as written, like `open(path, newline="")`; a leading
    byte-order mark dropped); StudyError naming the line of the first byte that is not UTF-8."""
    data = Path(path).read_bytes()
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as e:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # e.start counts from after a byte-order mark
        line = data.count(b"\n", 0, e.start + bom) + 1
        raise StudyError(f"{path} line {line}: not UTF-8 text ({e.reason}); save it as UTF-8") from None


def decimal_int(text: str) -> int:
    """`text` as a decimal integer: ASCII digits after an optional `-`; ValueError otherwise (`int` alone would also
    take `1_0`, `+1` and other scripts' digits, none of which a label file of these datasets holds)."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"not a decimal integer: {text!r}")
    return int(text)


def source_entry(root: Path, path: Path) -> dict:
    """How a manifest records an annotation file it was built from: path relative to the root, and sha256."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = str(path)
    return {"path": rel, "sha256": file_sha256(path)}


def require_file(path: Path, what: str, in_root: bool = True, archives: tuple[str, ...] = ()) -> Path:
    """`path`, a file; else StudyError naming it and, for a file of the dataset's root (`in_root`), where a root one
    level off holds it (`--root data` for `data/places365/`, `--root data/places365/val_256` for `data/places365/`),
    or an archive beside it that holds it, not extracted (`archive_beside`)."""
    if not path.is_file():
        hint = archive_beside(path, archives) or (_root_one_level_off(path) if in_root else "")
        raise StudyError(f"{what} not found: {path}{hint}")
    return path


COMPRESSED = (".tar.gz", ".tgz", ".tar", ".gz", ".zip", ".bz2", ".xz")


def archive_beside(path: Path, archives: tuple[str, ...] = ()) -> str:
    """` (found <archive> beside it: extract it there)` for the first of `archives` (names of the archives the
    dataset ships `path` in, such as Places365's `filelist_places365-standard.tar`) or of `path`'s own name with a
    compression suffix (iNat21's `val.json.tar.gz`, a gzipped CSV) that is a file in `path`'s folder; "" for none."""
    for name in (*archives, *(path.name + ext for ext in COMPRESSED)):
        if (path.parent / name).is_file():
            return f" (found {name} beside it, not extracted: extract it in {path.parent})"
    return ""


def _root_one_level_off(path: Path) -> str:
    """` (found <file>: give --root <folder>)` for the folder one level above or below `path`'s that holds a file of
    its name (the first by name); "" for none."""
    root = path.parent
    try:
        below = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        below = []
    up = root.parent if root.name not in ("", "..") else root.resolve().parent  # `.`'s parent is `.`: its real one
    for folder in ([up] if up.resolve() != root.resolve() else []) + below:
        if (folder / path.name).is_file():
            return f" (found {folder / path.name}: give --root {folder})"
    return ""


def first_repeat(values: pa.Array) -> tuple[int, int] | None:
    """(i, j): the first value met again, at j, and where it was met first, i; None when every value differs.
    What a reader that knows each value's line uses to name both lines of an image listed twice."""
    if len(pc.unique(values)) == len(values):  # 5x faster than count_distinct on strings
        return None
    first: dict = {}
    for j, v in enumerate(values.to_pylist()):
        i = first.setdefault(v, j)
        if i != j:
            return i, j
    return None


def check_index(index: Index, where: str) -> None:
    """Paths unique, labels in 0..C-1, at least one image, of an index `check_reader_result` passed (one label per
    path). `where` names the dataset in messages."""
    if len(index.paths) == 0:
        raise StudyError(f"{where}: no images found")
    num_classes = len(index.class_names)
    labels = index.labels
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        i = int(bad[0])
        raise StudyError(
            f"{where}: label {int(labels[i])} of {index.paths[i].as_py()!r} is out of range 0..{num_classes - 1}"
        )
    twice = first_repeat(index.paths)
    if twice:
        raise StudyError(f"{where}: image {index.paths[twice[1]].as_py()!r} is listed twice")


def apply_taxonomy(index: Index, taxonomy: Path, read: tuple[list[str], dict[str, list[str]]] | None = None) -> None:
    """Add the taxonomy columns of a CSV whose header names the levels coarse -> fine, last column = class name;
    every class of `index.class_names` has a row, every row a class (or one left out: `info["dropped_classes"]`).
    `read`: the file's `read_taxonomy`, when done."""
    header, table = read if read is not None else read_taxonomy(taxonomy)
    by_name = {normalise_class(k): v for k, v in table.items()}
    values_per_class = []
    for name in index.class_names:
        row = table.get(name) or by_name.get(normalise_class(name))
        if row is None:
            raise StudyError(f"{taxonomy}: class {name!r} of the dataset has no row")
        values_per_class.append(row)
    kept_or_dropped = [*index.class_names, *index.info.get("dropped_classes", {})]  # a file of the whole dataset
    known = set(kept_or_dropped) | {normalise_class(c) for c in kept_or_dropped}
    for name in table:
        if name not in known and normalise_class(name) not in known:
            raise StudyError(f"{taxonomy}: class {name!r} is not a class of the dataset")
    labels = pa.array(index.labels, type=pa.int64())
    for j, level in enumerate(header[:-1]):
        dictionary = pa.array([v[j] for v in values_per_class], type=pa.string())
        index.columns[level] = pc.take(dictionary, labels)
    if header[-1] != "class_name":
        index.columns[header[-1]] = pc.take(pa.array(index.class_names, type=pa.string()), labels)
    index.levels = list(header)
    index.sources.append({"path": taxonomy.name, "sha256": file_sha256(taxonomy), "role": "taxonomy"})


RESERVED = {"path", "label", "rank", "labeled_rank", "source"}


def read_taxonomy(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    if not path.is_file():
        raise StudyError(f"taxonomy file not found: {path}")
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise StudyError(f"{path}: empty taxonomy file (expected a header naming the levels)") from None
        header = [h.strip() for h in header]
        if len(header) < 2 or any(not h for h in header) or len(set(header)) != len(header):
            raise StudyError(f"{path} line 1: the header must name two or more distinct levels, coarse -> fine")
        bad = RESERVED.intersection(header) | ({"class_name"} & set(header[:-1]))
        if bad:
            raise StudyError(f"{path} line 1: level name {sorted(bad)[0]!r} is reserved"
                             + (" (only the last, finest column may be class_name)" if "class_name" in bad else ""))
        table: dict[str, list[str]] = {}
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise StudyError(f"{path} line {line}: expected {len(header)} columns, found {len(row)}")
            row = [c.strip() for c in row]
            blank = next((level for level, c in zip(header, row) if not c), None)
            if blank is not None:  # a cell left empty would make "" one group of every class so left
                raise StudyError(f"{path} line {line}: no value for level {blank!r}"
                                 + (f" of class {row[-1]!r}" if row[-1] else "") + ": give every level a value")
            if row[-1] in table:
                raise StudyError(f"{path} line {line}: class {row[-1]!r} is listed twice")
            table[row[-1]] = row
    return header, table


def normalise_class(name: str) -> str:
    """Loose class-name matching for taxonomy files: `T-shirt/top` == `t-shirt_top`; `café` composed (NFC) ==
    decomposed (NFD, as macOS and archives made there write folder names)."""
    return unicodedata.normalize("NFC", name).strip().lower().replace("/", "_").replace(" ", "_")


def read_dataset(dataset: str, root: Path, split: str, options: ReaderOptions = ReaderOptions()) -> Index:
    """Run the reader registered as `dataset`, then the common checks (`check_reader_result`, `check_index`)."""
    reader = DATASETS.get(dataset, "--dataset")
    root = Path(root)
    if not root.is_dir():
        raise StudyError(f"dataset root {root} is not a folder (--root names the dataset's folder)" if root.exists()
                         else f"dataset root not found: {root}{_folder_beside(root)}")
    index = reader(root, split, options)
    check_reader_result(index, dataset, reader)
    check_index(index, f"{dataset} {split} at {root}")
    return index


KINDS = ("image", "npy", "idx")  # the Index kinds study.train.images.ImageReader decodes


def check_reader_result(index: object, dataset: str, reader: Reader) -> None:
    """StudyError naming the reader and its module where what it returned is no Index, holds labels that are no
    integer array of one per path, or a `kind` ImageReader does not decode (which a frozen manifest would keep)."""
    where = f"reader {dataset!r} ({getattr(reader, '__module__', reader)})"
    if not isinstance(index, Index):
        raise StudyError(f"{where} returned {type(index).__name__}, not a study.datasets.Index")
    labels = index.labels
    if not (isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu"):
        raise StudyError(f"{where}: Index.labels is {type(labels).__name__}, not a 1-d integer numpy array")
    if len(labels) != len(index.paths):
        raise StudyError(f"{where}: Index has {len(index.paths)} paths but {len(labels)} labels")
    if index.kind not in KINDS:
        raise StudyError(f"{where}: Index.kind {index.kind!r} is not one ImageReader decodes ({', '.join(KINDS)})")


def _folder_beside(root: Path) -> str:
    """` (did you mean '<name>'?)` for the folder beside `root` whose name is closest to its name; "" for none (or an
    unreadable or absent parent)."""
    try:
        beside = [p.name for p in root.parent.iterdir() if p.is_dir()]
    except OSError:
        return ""
    return did_you_mean(root.name, beside)


def parent_folders(paths: pa.Array | list[str]) -> list[str]:
    """The folders (relative) that hold `paths`, each once, sorted; a path without a folder adds none (it lies in the
    root). What a reader stats to check that a tree holds a list's files: one `is_dir` per folder, not per file."""
    return sorted(f for f in pc.unique(dirnames(paths)).to_pylist() if f)


def absent_files(folder: Path, paths: pa.Array) -> np.ndarray:
    """The positions of the `paths` (relative to `folder`) that name no entry of their folder, in order: one listing
    per folder (names from getdents, `STUDY_SCAN_THREADS` folders at a time), no stat per file. What a reader of a
    list file uses to refuse a manifest of images that are not there; an absent folder lists nothing."""
    paths = pa.array(paths, type=pa.string())
    parents = pc.unique(dirnames(paths)).to_pylist()

    def listing(parent: str) -> list[str]:
        try:
            with os.scandir(folder / parent) as it:
                return [f"{parent}/{e.name}" if parent else e.name for e in it]
        except (FileNotFoundError, NotADirectoryError):
            return []

    with ThreadPoolExecutor(scan_threads()) as pool:
        names = [n for names in pool.map(listing, parents) for n in names]
    found = pc.is_in(paths, value_set=pa.array(names, type=pa.string())).to_numpy(zero_copy_only=False)
    return np.flatnonzero(~found)


def looks_channels_first(shape: tuple[int, ...]) -> bool:
    """Whether a 3-d array's shape reads as C x H x W saved as is: a first axis of a plausible channel count (<= 16)
    and a last one too long for channels (> 16)."""
    return len(shape) == 3 and shape[0] <= 16 < shape[2]


NPY_MAGIC = b"\x93NUMPY"  # how every .npy file begins (numpy.lib.format)


def load_npy(file: str | os.PathLike) -> np.ndarray:
    """The array of a `.npy` file, memory-mapped (only the pages read are loaded); ValueError naming what the file is
    otherwise, where numpy would return a zip archive (an `.npz` saved under a `.npy` name) or say that a file of
    another format (a JPEG, text) holds pickled data."""
    try:
        arr = np.load(file, mmap_mode="r")
    except ValueError as e:
        if "pickled" not in str(e):
            raise
        with open(file, "rb") as f:
            head = f.read(len(NPY_MAGIC))
        if head == NPY_MAGIC:
            raise  # a .npy of Python objects: numpy's message says so
        raise ValueError(f"not a NumPy .npy file (it begins with {head!r}, not {NPY_MAGIC!r}): save each patch with "
                         "numpy.save") from None
    if not isinstance(arr, np.ndarray):  # np.load's NpzFile
        arr.close()
        raise ValueError("a zip archive (.npz), not a .npy array: save each patch with numpy.save")
    return arr
