"""`study manifest materialize`: write a manifest's (corrupted) images to disk as PNG files.

`<out>/<path>.png` per row (`x.jpg` -> `x.jpg.png`, so that `x.jpg` and `x.png` stay apart; IDX rows `<file>#<i>`
become `<out>/<file>/<i>.png`). Pooled rows go under `<out>/<source>/`. Each file is written under a temporary name
and renamed (`study.atomic`, not synced: a node crash may leave a file cut short), so a killed run leaves only
complete files; a rerun removes the temporaries a killed run left, rewrites any PNG that does not end with its IEND
chunk (cut short by a crash), and skips the rest. PNG encoding is deterministic, so a rerun from scratch gives
byte-identical files.
`<out>/.study-materialize.json` names the manifest and content hash the folder holds: a rerun skips only files
written for that content, never another manifest's (a clean image where a corrupted one belongs). One run at a time
writes a folder (`<out>/.study-materialize.lock`).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from study.atomic import atomic_path, write_json
from study.errors import StudyError, os_reason
from study.flock import locked
from study.manifests.parallel import image_reader, init_image_reader, run_jobs
from study.manifests.manifest import load_manifest
from study.paths import refuse_file_for_folder


def out_path(out: Path, rel: str, source: str | None, idx: bool) -> Path:
    """Where the row at `rel` (of pooled source `source`) is written; `idx`: the manifest's rows are IDX rows.
    StudyError for a path or source that would lead out of `out` (absolute, or with an empty or `..` part): a
    manifest's rows are relative paths below its root, which a manifest made elsewhere need not hold to."""
    for part in ((source or "x").split("/") + rel.split("/")):
        if part in ("", ".", ".."):
            raise StudyError(f"manifest row {(source + ':' if source else '') + rel!r}: not a relative path below "
                             f"the root (an absolute path, or an empty, `.` or `..` part); {out} gets no file "
                             "outside it")
    base = out / source if source else out
    if idx:
        file, _, i = rel.rpartition("#")
        return base / file / f"{i}.png"
    return base / f"{rel}.png"


def _write(job: tuple[str, str | None, str]) -> str | None:
    from PIL import Image

    from study.train.images import decode_rgb, unreadable

    rel, source, target = job
    reader = image_reader()
    row = {"path": rel, "source": source}
    target_path = Path(target)
    try:
        img = reader.open(row)
        try:  # a clean JPEG comes back not yet decoded: decoded as a job decodes it (a broken one fails here)
            img = Image.fromarray(decode_rgb(img), "RGB")
        except OSError as e:
            return str(unreadable(reader.manifest.abs_path(row), reader.manifest.name, os_reason(e)))
        # renamed when written, the temporary removed on any error; not synced (two fsyncs per image on a network
        # filesystem): a file a node crash cuts short lacks PNG's end, and a rerun writes it again (`_state`)
        with atomic_path(target_path, sync=False) as tmp:
            img.save(tmp, format="PNG", optimize=False, compress_level=6)
        return None
    except StudyError as e:
        return str(e)
    except OSError as e:  # a full disk, a file where a folder should be: named, and no temporary left
        return f"cannot write {target_path}: {os_reason(e)}"


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # a PNG's last chunk: length 0, type IEND, its CRC


def _state(path: Path) -> str | None:
    """None: no file at `path`; "complete": a file ending with PNG's IEND chunk; "partial": any other file."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < len(PNG_END):
                return "partial"
            f.seek(-len(PNG_END), os.SEEK_END)
            return "complete" if f.read() == PNG_END else "partial"
    except OSError:  # missing, or a folder in the way (the write then names it)
        return None


# the temporaries of this tool beside a `<name>` it writes (a PNG or the stamp): study.atomic's
# `.<name>.<random>.tmp`, or the `.<name>.<pid>.tmp` a folder written by an older study may hold
_TEMPORARY = re.compile(r"^\.(?:.+\.png|\.study-materialize\.json)\.[A-Za-z0-9_]+\.tmp$")


def _remove_temporaries(out: Path) -> int:
    """Remove the temporaries a killed run left under `out`; how many."""
    removed = 0
    for folder, _, names in os.walk(out):
        for name in names:
            if _TEMPORARY.match(name):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


def materialize(name: str, out: Path, workers: int = 1, subset: int | None = None) -> tuple[int, int]:
    """Write the images not yet on disk; returns (written, skipped). StudyError listing unreadable images, or when
    another run is writing `out`."""
    m = load_manifest(name)
    df = m.subset(subset) if subset is not None else m.all()
    out = Path(out)
    refuse_file_for_folder(out, "--out")
    lock = out / ".study-materialize.lock"
    with locked(lock, f"--out {out}: another `study manifest materialize` is writing this folder ({lock})", wait=False):
        sources = df["source"].tolist() if "source" in df.columns else [None] * len(df)
        jobs = []
        present = skipped = 0
        for rel, src in zip(df["path"].tolist(), sources):
            target = out_path(out, rel, src, m.kind_of(src) == "idx")
            state = _state(target)
            present += state is not None
            if state == "complete":
                skipped += 1
            else:
                jobs.append((rel, src, str(target)))
        _claim(out, m, present)
        stale = _remove_temporaries(out)
        total = len(jobs)
        print(f"[manifest] materialize {name}: {total} to write"
              + (f" ({present - skipped} of them cut short)" if present > skipped else "")
              + f", {skipped} already there"
              + (f"; {stale} temporary file(s) of a killed run removed" if stale else ""), file=sys.stderr)
        errors = run_jobs(_write, jobs, workers, "images written", initializer=init_image_reader,
                          initargs=(name, m.meta))
    if errors:
        raise StudyError(f"{len(errors)} image(s) could not be written:\n  " + "\n  ".join(errors[:20]))
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
        raise StudyError(f"{stamp}: unreadable ({os_reason(e)}); remove it if this folder is yours to "
                         "rewrite") from None
    if theirs is not None and not isinstance(theirs, dict):
        raise StudyError(f"{stamp}: not a JSON object naming a manifest; remove it if this folder is yours to rewrite")
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
            what = f"write {STAMP}" if out.is_dir() else "make the folder"  # in a read-only one: the folder
            raise StudyError(f"--out {out}: cannot {what}: {os_reason(e)}") from None
