"""`study manifest materialize`: write a manifest's (corrupted) images to disk as PNG files.

`<out>/<path>.png` per row (`x.jpg` -> `x.jpg.png`, so that `x.jpg` and `x.png` stay apart; IDX rows `<file>#<i>`
become `<out>/<file>/<i>.png`). Each file is written under a temporary name and renamed, so a killed run leaves only
complete files and a rerun skips them; PNG encoding is deterministic, so a rerun from scratch gives byte-identical
files. Pooled rows go under `<out>/<source>/`. `<out>/.study-materialize.json` names the manifest and content hash
the folder holds: a rerun skips only files written for that content, never another manifest's (a clean image
where a corrupted one belongs).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from study.atomic import write_json
from study.errors import StudyError
from study.manifests.parallel import run_jobs
from study.manifests.store import Manifest, load_manifest

_STATE: dict = {}


def out_path(out: Path, rel: str, source: str | None, idx: bool) -> Path:
    """Where the row at `rel` (of pooled source `source`) is written; `idx`: the manifest's rows are IDX rows."""
    base = out / source if source else out
    if idx:
        file, _, i = rel.rpartition("#")
        return base / file / f"{i}.png"
    return base / f"{rel}.png"


def _init(name: str, meta: dict) -> None:
    """A worker's reader: the manifest's metadata only; each job carries its row's values (the table is never read)."""
    from study.train.data import ImageReader

    _STATE["reader"] = ImageReader(Manifest(name, meta))


def _write(job: tuple[str, str | None, str]) -> str | None:
    rel, source, target = job
    reader = _STATE["reader"]
    row = {"path": rel, "source": source}
    target_path = Path(target)
    tmp = target_path.with_name(f".{target_path.name}.{os.getpid()}.tmp")
    try:
        img = reader.open(row)
        try:
            img.load()  # a clean JPEG comes back not yet decoded: a broken one fails here, not at the write
        except OSError as e:
            return f"cannot read image {reader.manifest.abs_path(row)} (manifest {reader.manifest.name}): {e}"
        target_path.parent.mkdir(parents=True, exist_ok=True)
        img.save(tmp, format="PNG", optimize=False, compress_level=6)
        os.replace(tmp, target_path)
        return None
    except StudyError as e:
        return str(e)
    except OSError as e:  # a full disk, a file where a folder should be: named, and no temporary left
        tmp.unlink(missing_ok=True)
        return f"cannot write {target_path}: {e.strerror or e}"


def materialize(name: str, out: Path, workers: int = 1, subset: int | None = None) -> tuple[int, int]:
    """Write the images not yet on disk; returns (written, skipped). StudyError listing unreadable images."""
    m = load_manifest(name)
    df = m.subset(subset) if subset is not None else m.all()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out}: exists and is not a folder")
    sources = df["source"].tolist() if "source" in df.columns else [None] * len(df)
    jobs = []
    skipped = 0
    for rel, src in zip(df["path"].tolist(), sources):
        target = out_path(out, rel, src, m.kind_of(src) == "idx")
        if target.is_file():
            skipped += 1
        else:
            jobs.append((rel, src, str(target)))
    _claim(out, m, skipped)
    total = len(jobs)
    print(f"[manifest] materialize {name}: {total} to write, {skipped} already there", file=sys.stderr)
    errors = run_jobs(_write, jobs, workers, "images written", initializer=_init, initargs=(name, m.meta))
    if errors:
        raise StudyError(f"{len(errors)} images could not be written:\n  " + "\n  ".join(errors[:20]))
    return total - len(errors), skipped


STAMP = ".study-materialize.json"


def _claim(out: Path, m, existing: int) -> None:
    """Refuse a folder written for other content; stamp it with this manifest's before any image is written."""
    stamp = out / STAMP
    mine = {"manifest": m.name, "content_hash": m.content_hash}
    try:
        theirs = json.loads(stamp.read_text())
    except FileNotFoundError:
        theirs = None
    except (OSError, ValueError) as e:
        raise StudyError(f"{stamp}: unreadable ({e}); remove it if this folder is yours to rewrite") from None
    if theirs is None and existing:
        raise StudyError(f"--out {out}: already holds {existing} of the files manifest {m.name} would write, not "
                         f"written by `study manifest materialize` of it (no {STAMP}); use an empty folder")
    if theirs is not None and theirs.get("content_hash") != m.content_hash:
        raise StudyError(f"--out {out}: holds the images of manifest {theirs.get('manifest')} (content "
                         f"{str(theirs.get('content_hash'))[:12]}), not of {m.name} (content {m.content_hash[:12]}); "
                         f"use another folder")
    if theirs != mine:
        try:
            write_json(stamp, mine)
        except OSError as e:
            raise StudyError(f"--out {out}: cannot write {STAMP}: {e.strerror or e}") from None
