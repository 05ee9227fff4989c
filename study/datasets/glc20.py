"""`glc20`: GeoLifeCLEF 2020 occurrences (`occurrences_{fr,us}_{train,test}.csv`, `;`-separated, in the root or in
`<root>/occurrences/` as the archive extracts) and their patches.

The patch of occurrence `XXXXXABCD` is `patches_fr/CD/AB/<id>.npy` (France) or
`patches_us/patches_us_NN/CD/AB/<id>.npy` (US, NN = CD // 5 + 1 in 01..20; the parts may also lie directly under
the root, or unsplit in `patches_us/CD/AB`). Patches are 256 x 256 x 5 uint8, channels last: R, G, B, NIR, land cover
(a land-cover rule refuses another dtype: a 16-bit copy's codes would be other classes, its pixels clipped to 255).
Every patch the occurrences need must exist, whatever the label rule (no manifest of absent patches).
Splits: `train`, `test` (both regions), or one region: `us_train`, `fr_train`, `us_test`, `fr_test`.
Images are channels 0, 1, 2 (RGB) unless `--channels` names others (1 or 3 of 0-3, e.g. `3,1,2`: NIR as red).
Labels by a named rule (recorded in the manifest), `--label-rule`:
  landcover_center (default) the land-cover code at the centre pixel (read through a memory map),
  landcover_mode             the most frequent land-cover code of the patch (ties: the smallest code),
  species                    `species_id` (train splits only; the test CSVs have none).
Land-cover classes are the codes found in the split, sorted (`class_name` `landcover_<code>`); species classes are
the species ids found, sorted: build a test split with `--classes-from` its train manifest (and
`--drop-other-classes` where it has a code the train split lacks); an evaluation refuses a pair whose classes differ.
`--drop-classes landcover_<code>` leaves a code out of either (a no-data code, say; none by default).
France (OSO) and the US (NLCD) use different land-cover schemes: `train`/`test` merge equal codes of both (a warning
says so); `us_*`/`fr_*` keep one. A test split labelled with a region's codes that its train manifest's lack (`us_test`
with `--classes-from` a `fr_train` manifest) is refused, by the build and by `study plan`: `landcover_scheme_clash`.
"""
from __future__ import annotations

import csv
import itertools
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from study.datasets.base import (DATASETS, Index, ReaderOptions, absent_files, archive_beside, first_repeat,
                                 load_npy, looks_channels_first, parent_folders, source_entry)
from study.errors import StudyError, os_reason

LABEL_RULES = ("landcover_center", "landcover_mode", "species")
SPLITS = ("train", "test", "us_train", "fr_train", "us_test", "fr_test")  # train/test: both regions
LANDCOVER_CHANNEL = 4


def patch_patterns(root: Path) -> dict[str, str]:
    """Per region, the path pattern of a patch relative to `root` (fields id, cd, ab, nn)."""
    us = "patches_us/{cd}/{ab}/{id}.npy"
    if any((root / "patches_us" / f"patches_us_{nn:02d}").is_dir() for nn in range(1, 21)):
        us = "patches_us/patches_us_{nn}/{cd}/{ab}/{id}.npy"
    elif any((root / f"patches_us_{nn:02d}").is_dir() for nn in range(1, 21)):
        us = "patches_us_{nn}/{cd}/{ab}/{id}.npy"
    return {"fr": "patches_fr/{cd}/{ab}/{id}.npy", "us": us}


def patch_path(pattern: str, occurrence_id: int) -> str:
    cd = occurrence_id % 100
    ab = (occurrence_id // 100) % 100
    return pattern.format(id=occurrence_id, cd=f"{cd:02d}", ab=f"{ab:02d}", nn=f"{cd // 5 + 1:02d}")


OCCURRENCE_DIR = "occurrences"  # where the archive as extracted may keep the tables; else the root


def occurrence_file(root: Path, region: str, part: str) -> Path:
    """`occurrences_<region>_<part>.csv` in the root, else in `<root>/occurrences/` (the root's path when neither)."""
    name = f"occurrences_{region}_{part}.csv"
    for folder in (root, root / OCCURRENCE_DIR):
        if (folder / name).is_file():
            return folder / name
    return root / name


SCHEMES = {"fr": "France's (OSO)", "us": "the US's (NLCD)"}  # each region's land-cover codes


def landcover_regions(meta: dict) -> list[str] | None:
    """The regions (`fr`, `us`) whose land-cover codes label a GLC20 manifest (`meta`: its metadata, or a build's
    `dataset`, `split`, `label_rule` and, for `train`/`test`, the `sources` its index read): a region split's own, else
    those of the occurrence tables read; None where the labels are no land-cover codes (another reader's, GLC20's
    species ids: one id space for both regions) or the regions are not known yet."""
    if meta.get("dataset") != "glc20" or not str(meta.get("label_rule") or LABEL_RULES[0]).startswith("landcover_"):
        return None
    region = str(meta.get("split") or "").rpartition("_")[0]
    if region:
        return [region]
    names = (str(s.get("path", "")).rpartition("/")[2] for s in meta.get("sources") or [])
    return sorted({m[1] for n in names if (m := re.fullmatch(r"occurrences_(fr|us)_\w+\.csv", n))}) or None


def landcover_scheme_clash(train: dict, test: dict, train_name: str, test_name: str) -> tuple[str, str] | None:
    """Where test manifest `test` (its metadata, or a build's: `landcover_regions`) holds land-cover codes of a region
    that train manifest `train` does not: why (France's OSO and the US's NLCD give one code other classes, so the
    train split's class `landcover_11` would name another class of the test split's) and the split of `train`'s
    region(s) to build it from instead (`fr_test`; `test` for both); else None."""
    ours, theirs = landcover_regions(test), landcover_regions(train)
    if ours is None or theirs is None or set(ours) <= set(theirs):
        return None
    why = (f"{test_name} is labelled with {' and '.join(SCHEMES[r] for r in ours)} land-cover codes, {train_name} with "
           f"{' and '.join(SCHEMES[r] for r in theirs)}: the two schemes give one code other classes")
    part = str(test.get("split") or "test").rpartition("_")[2]
    return why, f"{theirs[0]}_{part}" if len(theirs) == 1 else part


def read_occurrences(path: Path, need_species: bool) -> tuple[np.ndarray, np.ndarray | None]:
    import pandas as pd

    try:
        # index_col=False: rows with more fields than the header (a trailing ';') are not shifted one column left,
        # as pandas' default (the first column as an index) would; extra fields that hold a value are an error
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, index_col=False)
    except Exception as e:  # pandas' ParserError names the line
        unclosed = re.search(r"EOF inside string starting at row (\d+)", str(e))  # its rows count records from 0
        if unclosed:
            raise StudyError(_unclosed_quote(path, int(unclosed[1]))) from None
        raise StudyError(f"{path}: malformed CSV: {e}") from None
    if caught:
        _refuse_extra_fields(path)
    columns = [c.strip() for c in df.columns]
    df.columns = columns
    if "id" not in columns:
        if len(columns) == 1 and "," in columns[0]:
            raise StudyError(f"{path} line 1: expected ';'-separated columns (GLC20's format), this header uses ','")
        raise StudyError(f"{path} line 1: no 'id' column (found {columns})")
    if need_species and "species_id" not in columns:
        test = " (GLC20's test tables have none: species labels are the train splits' alone)" \
            if path.name.endswith("_test.csv") else ""
        raise StudyError(f"{path} line 1: no 'species_id' column, which --label-rule species needs{test}")
    out = []
    for col in ("id", "species_id") if need_species else ("id",):
        values = df[col].to_numpy()
        try:
            out.append(np.array(values, dtype=np.int64))
        except (ValueError, OverflowError):
            bad = next(i for i, v in enumerate(values) if not _is_int64(v))  # the conversion that failed, per value
            comma = ("; expected ';'-separated fields (GLC20's format, as its header has them), this row uses ','"
                     if "," in values[bad] and _is_int64(values[bad].split(",")[0]) else "")
            raise StudyError(f"{path} {_line_of_row(path, bad)}: {col} {values[bad]!r} is not a 64-bit integer"
                             f"{comma}") from None
    _refuse_values_over_lines(path, df)
    return out[0], (out[1] if need_species else None)


def _refuse_values_over_lines(path: Path, df) -> None:
    """A StudyError at the first record of several lines: GLC20's files quote no value, so a '"' on each of two lines
    in one column made one row of them, the occurrences between them silently lost."""
    if not any(df[c].str.contains("\n", regex=False).any() for c in df.columns):
        return
    start, end = next((start, end) for start, end, _ in _records(path) if end > start)
    raise StudyError(f"{path} lines {start}-{end}: read as one row (a '\"' on line {start} and one on line {end} pair "
                     "up, making one value of the lines between; GLC20's files quote no value): remove them")


def _is_int64(value: str) -> bool:
    try:
        np.array([value], dtype=np.int64)
    except (ValueError, OverflowError):
        return False
    return True


def _refuse_extra_fields(path: Path) -> None:
    """A StudyError at the first line with a value beyond the header's columns (empty trailing fields are fine)."""
    with open(path, newline="", errors="replace") as f:
        rows = csv.reader(f, delimiter=";")
        width = len(next(rows, []))
        for row in rows:
            if any(v.strip() for v in row[width:]):
                raise StudyError(f"{path} line {rows.line_num}: {len(row)} fields, but the header names {width} "
                                 "columns")


def _unclosed_quote(path: Path, row: int) -> str:
    """The error for pandas' "EOF inside string starting at row `row`": `row` counts records from 0 (a blank line
    is one; a quoted value over several lines, one), so the line it starts on is read as the csv module splits the
    file; an earlier record over several lines is named too (a pair of stray '"' made one value of its lines)."""
    read, end, joined = 0, 0, []
    for start, end, _ in itertools.islice(_records(path), row):  # the records before it
        read += 1
        if end > start:
            joined.append(f"{start}-{end}")
    line = end + 1 if read == row else row + 1  # (row + 1 where the csv module reads fewer records)
    earlier = (f"; lines {', '.join(joined[:3])}{' ...' if len(joined) > 3 else ''} before it "
               f"{'each ' if len(joined) > 1 else ''}read as one row (a '\"' at each end pairs up): check those too"
               if joined else "")
    return (f"{path} line {line}: a '\"' opens a quoted value that no later '\"' closes (the rest of the file would "
            f"read as one value){earlier}: remove or close it")


def _line_of_row(path: Path, row: int) -> str:
    """Where data row `row` starts in the file: "line N", read as pandas reads it (blank lines skipped, a quoted
    value over several lines one row: the csv module's records), else "data row N"."""
    seen = -2  # the header is row -1
    for start, _, record in _records(path):
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # a blank line, which pandas skips
        seen += 1
        if seen == row:
            return f"line {start}"
    return f"data row {row + 1}"


def _records(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """The csv module's records of the `;`-separated file: (first line, last line, fields) each (a blank line is a
    record of no fields; a quoted value over several lines makes one record of them)."""
    with open(path, newline="", errors="replace") as f:
        rows, end = csv.reader(f, delimiter=";"), 0
        for record in rows:
            start, end = end + 1, rows.line_num
            yield start, end, record


def landcover_label(file: Path, rule: str) -> int:
    try:
        patch = load_npy(file)
        if patch.ndim != 3 or patch.shape[2] <= LANDCOVER_CHANNEL or 0 in patch.shape:
            raise ValueError(f"expected H x W x 5, got shape {patch.shape}")
        if looks_channels_first(patch.shape):
            raise ValueError(f"shape {patch.shape} looks channels-first (C x H x W); GLC20 patches are H x W x 5, "
                             "channels last: save them so")
        if not np.issubdtype(patch.dtype, np.integer):  # land-cover codes: a float channel's NaN is no class
            raise ValueError(f"expected an integer array (land-cover codes), got dtype {patch.dtype}")
        if patch.dtype != np.uint8:  # a 16-bit copy: its codes other classes, its pixels clipped to 255 by the jobs
            raise ValueError(f"expected uint8 (GLC20's patches are H x W x 5 uint8, values 0-255), got dtype "
                             f"{patch.dtype}: save the patches as uint8")
        if rule == "landcover_center":
            return int(patch[patch.shape[0] // 2, patch.shape[1] // 2, LANDCOVER_CHANNEL])
        channel = np.asarray(patch[:, :, LANDCOVER_CHANNEL]).astype(np.int64).ravel()
        return int(np.argmax(np.bincount(channel - channel.min())) + channel.min())
    except FileNotFoundError:
        raise StudyError(f"glc20: patch not found: {file}") from None
    except (OSError, ValueError, EOFError) as e:  # EOFError: an empty file (numpy's "No data left in file")
        raise StudyError(f"glc20: cannot read patch {file}: {os_reason(e)}") from None


def check_patch_folders(root: Path, paths: list[str], tables: list[tuple[Path, np.ndarray]]) -> None:
    """A StudyError naming the first patch folder (`.../CD/AB/`) that the occurrences need and the root lacks, then the
    first patch its folder lacks (`absent_files`), each with the occurrence and the line of its table (`tables`: each
    table read, with its ids, in the order of `paths`), so that no manifest of absent patches is frozen (`species`
    reads no patch; training would find them missing)."""
    names = ", ".join(c.name for c, _ in tables)
    folders = parent_folders(paths)
    missing = [f for f in folders if not (root / f).is_dir()]
    if missing:
        row = next(i for i, p in enumerate(paths) if p.rpartition("/")[0] == missing[0])
        raise StudyError(f"glc20: patch folder {root / missing[0]} not found ({len(missing)} of the {len(folders)} "
                         f"folders that {names} need are missing), first needed by {_occurrence(tables, row)}: extract "
                         f"the patch archives under {root} (patches_fr/CD/AB/, patches_us/patches_us_NN/CD/AB/), or "
                         "leave out the rows of occurrences that have no patch")
    absent = absent_files(root, pa.array(paths, type=pa.string()))
    if len(absent):
        raise StudyError(f"glc20: patch {root / paths[absent[0]]} not found ({len(absent)} of the {len(paths)} "
                         f"patches that {names} list are missing from their folders), first needed by "
                         f"{_occurrence(tables, absent[0])}: extract the patch archives completely, or leave out the "
                         "rows of occurrences that have no patch")


def _occurrence(tables: list[tuple[Path, np.ndarray]], row: int) -> str:
    """Row `row` of the tables (their rows in order) as "occurrence <id> (<table> line N)"."""
    for path, ids in tables:
        if row < len(ids):
            return f"occurrence {int(ids[row])} ({path} {_line_of_row(path, row)})"
        row -= len(ids)
    raise IndexError(row)


def landcover_labels(root: Path, paths: list[str], rule: str) -> np.ndarray:
    """The land-cover label of every patch by `rule`, read by `STUDY_SCAN_THREADS` threads (numpy reads release the
    GIL: worth it on network filesystems), with progress every 50,000 patches."""
    from concurrent.futures import ThreadPoolExecutor

    from study.datasets.scan import scan_threads

    codes = np.empty(len(paths), dtype=np.int64)
    step = 50000
    with ThreadPoolExecutor(scan_threads()) as pool:
        for start in range(0, len(paths), step):
            block = paths[start:start + step]
            codes[start:start + len(block)] = list(pool.map(lambda p: landcover_label(root / p, rule), block))
            if start + len(block) < len(paths) or len(paths) >= step:
                print(f"[manifest] glc20: {start + len(block)}/{len(paths)} patches read for {rule}",
                      file=sys.stderr)
    return codes


@DATASETS.register("glc20")
def read_glc20(root: Path, split: str, options: ReaderOptions) -> Index:
    rule = options.label_rule or "landcover_center"
    if rule not in LABEL_RULES:
        raise StudyError(f"glc20: unknown --label-rule {rule!r} (expected one of {', '.join(LABEL_RULES)})")
    channels = tuple(options.channels or (0, 1, 2))  # ours: R, G, B
    if len(channels) not in (1, 3) or not all(0 <= c < LANDCOVER_CHANNEL for c in channels):
        raise StudyError(f"glc20: --channels {','.join(map(str, channels))}: name 1 or 3 of the image channels "
                         "0 (R), 1 (G), 2 (B), 3 (NIR), e.g. 0,1,2 or 3,1,2 (false colour)")
    if len(channels) == 3 and len(set(channels)) == 1:  # one channel is read so: a manifest of other content hash
        raise StudyError(f"glc20: --channels {','.join(map(str, channels))}: one channel thrice is "
                         f"`--channels {channels[0]}` (a single channel is repeated into the three the encoder reads): "
                         "give it so, for one manifest of those images rather than two")
    if split not in SPLITS:
        raise StudyError(f"glc20: unknown split {split!r} (expected {', '.join(SPLITS)})")
    region, _, part = split.rpartition("_")
    regions = [region] if region else ["fr", "us"]
    patterns = patch_patterns(root)
    csvs = [(r, occurrence_file(root, r, part)) for r in regions]
    csvs = [(r, p) for r, p in csvs if p.is_file()] if not region else csvs
    if not csvs or not all(p.is_file() for _, p in csvs):
        wanted = f"occurrences_{region or '{fr,us}'}_{part}.csv"
        hint = next((h for r in regions for folder in (root, root / OCCURRENCE_DIR)
                     if (h := archive_beside(folder / f"occurrences_{r}_{part}.csv"))), "")
        raise StudyError(f"glc20: occurrence file not found: {root}/{wanted} (nor {root}/{OCCURRENCE_DIR}/{wanted})"
                         + hint)
    if not region and len(csvs) == 1:
        print(f"[manifest] glc20: only {csvs[0][1].name} found: split {split!r} is that region alone",
              file=sys.stderr)
    if len(csvs) == 2 and rule != "species":
        print("[manifest] warning: glc20: France's land-cover codes (OSO) and the US's (NLCD) are different schemes, "
              f"and split {split!r} puts equal codes in one class; use us_{part} or fr_{part} for one scheme",
              file=sys.stderr)
    paths: list[str] = []
    keys: list[str] = []
    raw: list[np.ndarray] = []
    tables: list[tuple[Path, np.ndarray]] = []
    sources = []
    for r, csv_path in csvs:
        ids, species = read_occurrences(csv_path, rule == "species")
        twice = first_repeat(pa.array(ids))
        if twice:
            i, j = twice
            raise StudyError(f"{csv_path} {_line_of_row(csv_path, j)}: occurrence {ids[j]} is listed twice, first on "
                             f"{_line_of_row(csv_path, i)}")
        paths.extend(patch_path(patterns[r], int(i)) for i in ids)
        keys.extend(str(int(i)) for i in ids)
        tables.append((csv_path, ids))
        sources.append(source_entry(root, csv_path))
        if species is not None:
            raw.append(species)
    check_patch_folders(root, paths, tables)
    codes = np.concatenate(raw) if rule == "species" else landcover_labels(root, paths, rule)
    values, labels = np.unique(codes, return_inverse=True)
    prefix = "" if rule == "species" else "landcover_"
    class_names = [f"{prefix}{int(v)}" for v in values]
    return Index(
        paths=pa.array(paths, type=pa.string()), labels=labels.astype(np.int64), class_names=class_names, kind="npy",
        sources=sources,
        info={"label_rule": rule, "channels": list(channels), "class_codes": [int(v) for v in values],
              "rank_key": "occurrence id"},
        keys=pa.array(keys, type=pa.string()),
    )


# the splits `study plan` suggests for a grid's train / test manifests (ours): the US part alone, one land-cover
# scheme (NLCD) and about the paper's 1.1M images; `train`/`test` would merge France's OSO codes into the same classes
read_glc20.suggested_splits = {"train": "us_train", "test": "us_test"}
read_glc20.splits = SPLITS  # a manifest name's tail may name one (`fr_train`: the French part)
read_glc20.options = ("label_rule", "channels")  # the ReaderOptions it reads (study.datasets.base.reader_options)
# one's own occurrence tables may list an occurrence in both splits: what `study plan` then says to do
read_glc20.shared_files = ("leave the train table's occurrences out of the test table (occurrences_<region>_test.csv) "
                           "and build the test manifest again")
