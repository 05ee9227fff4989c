"""Frozen manifests on disk: `<manifests_dir>/<name>.parquet` (rows) + `<name>.json` (metadata); read them through
`study.manifests.manifest.Manifest`.

Rows are stored in rank order. The content hash covers the rows (`table_hash`, computed from the values, not the
Parquet bytes) and every metadata field except the name and the root(s), so the same files (relative paths) + seed
give the same hash under any root. The JSON is written last: a manifest without it does not exist.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from study import atomic
from study.configfields import is_int
from study.errors import StudyError, did_you_mean, os_reason
from study.hashing import canonical_json
from study.paths import manifests_dir, manifests_dir_said
from study.registry import MANIFEST_NAME_RULE, is_manifest_name
from study.version import newer_note

SCHEMA_VERSION = 1
BASE_COLUMNS = ("path", "label", "class_name", "rank", "labeled_rank")
NOT_HASHED = ("name", "root", "roots", "content_hash")


def check_name(name: str) -> str:
    """`name`, or a StudyError unless it is a manifest name (`is_manifest_name`, not ending in .json or .parquet)."""
    if not is_manifest_name(name) or name.endswith((".json", ".parquet")):
        raise StudyError(f"bad manifest name {name!r} ({MANIFEST_NAME_RULE})")
    return name


def manifest_paths(name: str, folder: Path | None = None) -> tuple[Path, Path]:
    folder = Path(folder) if folder is not None else manifests_dir()
    return folder / f"{name}.parquet", folder / f"{name}.json"


def manifest_files_text(name: str) -> str:
    """`<folder>/<name>.parquet and <folder>/<name>.json`: a manifest's two files, for a message that asks to delete
    them (wherever STUDY_MANIFESTS points)."""
    table, meta = manifest_paths(name)
    return f"{table} and {meta}"


def not_writable_hint(folder: Path | None = None) -> str:
    """Where this user may not write the manifests folder `folder` (default: `manifests_dir()`), a lab's shared set
    (read-only, or on a read-only filesystem): `; <folder> is read-only to you ...`, how to make new manifests in a
    folder of one's own that links the shared ones (STUDY_MANIFESTS names one folder); empty where it can be written
    or is no folder."""
    folder = Path(folder) if folder is not None else manifests_dir()
    if not folder.is_dir() or os.access(folder, os.W_OK | os.X_OK):
        return ""
    shared = shlex.quote(str(folder.resolve()))
    return (f"; {folder.resolve()} is read-only to you (a shared set?): make new manifests in a folder of your own "
            f"that links the shared ones, `mkdir -p DIR && ln -s {shared}/*.json {shared}/*.parquet DIR/`, then "
            "`export STUDY_MANIFESTS=DIR` (DIR on storage the compute nodes see; manifests/README.md, \"A shared, "
            "read-only manifests folder\")")


def check_writable(name: str) -> None:
    """StudyError, before any work, where manifest `name` is not there and its folder cannot be written by this user
    (`not_writable_hint`); an existing one is left to `freeze`, whose no-op writes nothing."""
    hint = "" if manifest_exists(name) else not_writable_hint()
    if hint:
        raise StudyError(f"cannot write manifest {name}{hint}")


def manifest_exists(name: str, folder: Path | None = None) -> bool:
    """Whether a complete manifest (metadata and rows) of this name exists in `folder` (default: `manifests_dir()`)."""
    if not is_manifest_name(name):
        return False
    table, meta = manifest_paths(name, folder)
    return table.is_file() and meta.is_file()


def half_manifest(name: str, folder: Path | None = None) -> str | None:
    """Which of a manifest's two files is there without the other, and what to do (a copy of one file, a build
    killed between its two writes); None where both or neither are."""
    table_path, meta_path = manifest_paths(name, folder)
    if meta_path.is_file() == table_path.is_file():
        return None
    if meta_path.is_file():  # a copy of the JSON alone
        return (f"{meta_path.name} is there without {table_path.name} (a manifest is both files: copy its .parquet "
                "too, or build it again)")
    return (f"{table_path.name} is there without {meta_path.name}, the file a build writes last (a killed build, or "
            "a copy of the .parquet alone): build it again, or copy its .json too")


def list_manifests(folder: Path | None = None) -> list[str]:
    """The names of the complete manifests in `folder` (default: `manifests_dir()`), sorted."""
    folder = Path(folder) if folder is not None else manifests_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".parquet").is_file())


def table_hash(table: pa.Table) -> str:
    """sha256 of the table's values, column by column (names, types, lengths and bytes)."""
    h = hashlib.sha256()
    h.update(f"rows={table.num_rows}\n".encode())
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        h.update(f"column={name}:{col.type}\n".encode())
        if col.null_count:
            raise StudyError(f"manifest column {name!r} has missing values")
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            offsets_type = "<i4" if pa.types.is_string(col.type) else "<i8"
            buffers = col.buffers()
            offsets = np.frombuffer(buffers[1], offsets_type)[col.offset: col.offset + len(col) + 1]
            data = buffers[2] if buffers[2] is not None else b""
            h.update(np.diff(offsets).astype("<i8").tobytes())
            h.update(memoryview(data)[int(offsets[0]): int(offsets[-1])] if len(offsets) else b"")
        elif pa.types.is_integer(col.type):
            h.update(col.to_numpy().astype("<i8").tobytes())
        else:
            raise StudyError(f"manifest column {name!r} has unsupported type {col.type}")
    return h.hexdigest()


def content_hash(meta: dict) -> str:
    identity = {k: v for k, v in meta.items() if k not in NOT_HASHED}
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def normalise_table(table: pa.Table) -> pa.Table:
    """Plain (non-dictionary) strings and int64 ranks/labels, so hashes and Parquet bytes do not depend on how the
    table was made."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t) or pa.types.is_large_string(t):
            t = pa.string()
        if f.name in ("label", "rank", "labeled_rank"):
            t = pa.int64()
        fields.append(pa.field(f.name, t, nullable=False))
    return table.cast(pa.schema(fields)).replace_schema_metadata(None).combine_chunks()


def finalise(name: str, table: pa.Table, meta: dict) -> tuple[pa.Table, dict]:
    """The normalised table, and the metadata with name, schema version, `table_hash` and `content_hash` set."""
    table = normalise_table(table)
    meta = dict(meta, name=name, schema_version=SCHEMA_VERSION, table_hash=table_hash(table))
    meta.pop("content_hash", None)
    meta["content_hash"] = content_hash(meta)
    return table, meta


def write_manifest(name: str, table: pa.Table, meta: dict) -> None:
    """Write a finalised manifest: rows, then metadata, each atomically; StudyError naming the folder when the
    filesystem refuses (no rows are left without the metadata that describes them)."""
    table_path, meta_path = manifest_paths(name)
    try:
        with atomic.atomic_path(table_path) as tmp:
            pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)
        try:
            atomic.write_json(meta_path, meta)
        except OSError:
            table_path.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise StudyError(f"cannot write manifest {name} in {table_path.parent}: {os_reason(e)}"
                         f"{not_writable_hint(table_path.parent)}") from None


def read_meta(name: str, folder: Path | None = None) -> dict:
    """A manifest's metadata as its JSON file in `folder` (default: `manifests_dir()`) holds it (a dict of schema
    version 1; no field checked)."""
    check_name(name)
    table_path, meta_path = manifest_paths(name, folder)
    if not meta_path.is_file() or not table_path.is_file():
        half = half_manifest(name, folder)
        if half:
            raise StudyError(f"manifest {name!r} not found in {meta_path.parent.resolve()}: {half}")
        known = list_manifests(folder)
        hint = did_you_mean(name, known) + (f" (known: {', '.join(known)})" if known else "")
        said = manifests_dir_said() if folder is None else f"{Path(folder).resolve()} (the folder given)"
        raise StudyError(f"manifest {name!r} not found in {said}{hint}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise StudyError(f"{meta_path} line {e.lineno}: malformed manifest metadata: {e.msg}") from None
    if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
        found = meta.get("schema_version") if isinstance(meta, dict) else None
        raise StudyError(f"{meta_path}: not a study manifest of schema version {SCHEMA_VERSION}"
                         f"{newer_note(found, SCHEMA_VERSION)}")
    return meta


def load_meta(name: str, folder: Path | None = None) -> dict:
    """A manifest's metadata (`read_meta`), its fields of the types `Manifest` reads (`check_meta`)."""
    return check_meta(read_meta(name, folder), manifest_paths(name, folder)[1])


def _count(v: Any) -> bool:
    return is_int(v) and v >= 0


def _counts(v: Any) -> bool:
    return isinstance(v, list) and all(map(_count, v))


def _string(v: Any) -> bool:
    return isinstance(v, str)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(map(_string, v))


def _folders(v: Any) -> bool:
    return isinstance(v, dict) and all(map(_string, v.values()))


# the fields a manifest's readers compute with: key -> (required, test, what the value must be)
META_FIELDS = {
    "class_names": (True, _strings, "a list of class names"),
    "num_images": (True, _count, "a whole number"),
    "sizes": (False, _counts, "a list of whole numbers"),
    "labeled_sizes": (False, _counts, "a list of whole numbers"),
    "levels": (False, _strings, "a list of column names"),
    "root": (False, _string, "a folder"),
    "roots": (False, _folders, "a mapping of sources to folders"),
    "corruption": (False, _string, "a corruption spec"),
    "table_hash": (False, _string, "a hash"),
    "content_hash": (False, _string, "a hash"),
}


def check_meta(meta: dict, path: Path) -> dict:
    """`meta`, or a StudyError naming `path` and the first field of `META_FIELDS` that is missing or not of its type
    (a file edited by hand); the optional ones may be absent or null."""
    for key, (required, test, what) in META_FIELDS.items():
        value = meta.get(key)
        if value is None and required:
            raise StudyError(f"{path}: manifest metadata has no {key!r}")
        if value is not None and not test(value):
            raise StudyError(f"{path}: {key!r} must be {what}, not {short_repr(value)}")
    return meta


def short_repr(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (the last three "...") for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def meta_intact(meta: dict) -> bool:
    """Whether the metadata still has the content hash it was written with (not edited since)."""
    return content_hash(meta) == meta.get("content_hash")


def roots_not_here(meta: dict) -> dict[str | None, str]:
    """Each recorded root that is not a folder on this machine (the dataset moved, or is not mounted here), by pooled
    source (None: a manifest of one root); empty where every root is there, or none is recorded."""
    roots = meta.get("roots") if isinstance(meta.get("roots"), dict) else {None: meta.get("root")}
    return {src: root for src, root in roots.items() if isinstance(root, str) and root and not Path(root).is_dir()}


def file_keys(root, paths: pa.Array | pa.ChunkedArray):
    """Each row's file as `<root>/<path>` (text): the same file whether a build took `--root data --split train`
    (paths `train/...`) or `--root data/train`. `root`: one root, or each row's (Arrow strings, a pool's)."""
    if not isinstance(root, (pa.Array, pa.ChunkedArray)):
        root = str(root).rstrip("/")
    return pc.binary_join_element_wise(root, paths, "/")


def meta_changed(meta_path: Path) -> str:
    """The damage of a JSON file whose metadata no longer hash to the content hash it records."""
    return f"{meta_path} no longer matches its recorded content hash (the JSON file was changed)"


def damage(name: str) -> str | None:
    """What no longer matches in the stored manifest `name` (its JSON file, which lost its content hash, or its
    Parquet file, unreadable or not of the recorded table hash), naming the file; None when both are as built."""
    return read_checked(name)[0]


def read_checked(name: str) -> tuple[str | None, pa.Table | None]:
    """`damage(name)`, and the rows read to find it (None when the damage is in the JSON file or makes them
    unreadable)."""
    table_path, meta_path = manifest_paths(name)
    try:
        meta = read_meta(name)
    except StudyError as e:  # not JSON, or not a manifest's
        return str(e), None
    if not meta_intact(meta):
        return meta_changed(meta_path), None
    try:
        table = read_arrow(name, checked=False)
    except StudyError as e:
        return str(e), None
    problem = column_problem(table) or rows_problem(table, meta)
    return (f"{table_path}: {problem} (the Parquet file was changed)" if problem else None), table


def rows_problem(table: pa.Table, meta: dict) -> str | None:
    """What makes `table` not the rows `meta` was built with: "rows differ from the recorded table hash", or no
    table hash recorded (every build records one: metadata written by hand); None when they are."""
    recorded = meta.get("table_hash")
    if recorded is None:
        return "the metadata records no table hash for the rows"
    return "rows differ from the recorded table hash" if table_hash(table) != recorded else None


COLUMN_KINDS = {"path": "strings", "class_name": "strings", "source": "strings", "label": "integers",
                "rank": "integers", "labeled_rank": "integers"}


def column_problem(table: pa.Table) -> str | None:
    """What makes `table` no manifest's rows (a column of missing values, of a type other than strings or integers,
    or a column of `COLUMN_KINDS` of the other one), or None."""
    for f in table.schema:
        t = f.type
        kind = "strings" if pa.types.is_string(t) or pa.types.is_large_string(t) else \
            "integers" if pa.types.is_integer(t) else None
        want = COLUMN_KINDS.get(f.name, kind)
        if kind is None or kind != want:
            return f"column {f.name!r} must hold {want or 'strings or integers'}, not {t}"
        if table.column(f.name).null_count:
            return f"column {f.name!r} has missing values"
    return None


def read_arrow(name: str, checked: bool = True, folder: Path | None = None,
               columns: list[str] | None = None) -> pa.Table:
    """A manifest's rows (from `folder`, default `manifests_dir()`; only `columns` where given); StudyError naming
    the Parquet file when it is unreadable or (`checked`) a column is not of its type."""
    table_path, _ = manifest_paths(name, folder)
    try:
        table = pq.read_table(table_path, columns=columns)
    except (OSError, pa.ArrowException) as e:
        said = str(e).replace(f"Could not open Parquet input source '{table_path}': ", "")  # the path once
        raise StudyError(f"{table_path}: unreadable manifest table: {said}; restore it, or delete it and its .json "
                         "and build it again (`study plan` on a grid that uses it prints the command; the same "
                         "sources give the same content hash)") from None
    problem = column_problem(table) if checked else None
    if problem:
        raise StudyError(f"{table_path}: {problem}")
    return table


def table_columns(name: str) -> list[str] | None:
    """The column names of a manifest's table, from the Parquet footer (no rows read); None when unreadable."""
    table_path, _ = manifest_paths(name)
    try:
        return list(pq.read_schema(table_path).names)
    except (OSError, pa.ArrowException):
        return None
