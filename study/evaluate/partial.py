"""The rows of a feature extraction done so far, saved in chunks, so that a preempted extraction goes on from them.

One extraction (a cache file to be, e.g. `<cache folder>/labeled40.pt`) keeps its chunks in `labeled40.partial/`:
files `rows-<start>-<end>.pt` holding the float32 features of rows [start, end) and the seconds the extraction took
to reach `end` over all its sessions, each written atomically. The cache folder already names everything the
features depend on (encoder, manifest, transform, rows), so any chunk found there is valid for the extraction. Two
jobs extracting the same features at once may both write chunks; `load` reads the longest run of rows from row 0
that the chunks cover, whatever their boundaries.
"""
from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

import torch

from study.atomic import atomic_path, write_failure

CHUNK = re.compile(r"rows-(\d+)-(\d+)\.pt")


class PartialExtraction:
    """Chunks of the extraction whose finished file is `final` (`<name>.partial/` beside it)."""

    def __init__(self, final: Path, format_tag: str):
        self.folder = final.with_suffix(".partial")
        self.format = format_tag
        self.writable = True
        self.seconds_before = 0.0  # what the extraction of the rows `load` read back took, in earlier sessions

    def load(self, total_rows: int) -> Iterator[torch.Tensor]:
        """Yield the saved features of rows [0, k) as consecutive blocks, one chunk read at a time. A chunk that
        cannot be read, or of another width, ends them: the rows after it are extracted again."""
        chunks = []
        for p in self.folder.glob("rows-*.pt") if self.folder.is_dir() else ():
            m = CHUNK.fullmatch(p.name)
            if m and int(m[1]) < int(m[2]) <= total_rows:
                chunks.append((int(m[1]), int(m[2]), p))
        done, width = 0, None
        while True:
            found = None
            for chunk in sorted((c for c in chunks if c[0] <= done < c[1]), key=lambda c: -c[1]):
                read = self._read(chunk)
                if read is not None and width in (None, read[0].shape[1]):
                    found = chunk, read
                    break
            if found is None:
                return
            (start, end, _), (feats, seconds) = found
            width = feats.shape[1]
            self.seconds_before = seconds
            yield feats[done - start:]
            done = end

    def _read(self, chunk: tuple[int, int, Path]) -> tuple[torch.Tensor, float] | None:
        start, end, path = chunk
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # truncated by a full disk, or half-copied: those rows are extracted again
            return None
        ok = (isinstance(payload, dict) and payload.get("format") == self.format and payload.get("start") == start
              and isinstance(payload.get("features"), torch.Tensor) and payload["features"].dim() == 2
              and len(payload["features"]) == end - start)
        if not ok:
            return None
        seconds = payload.get("seconds")  # a chunk that records none: none known
        return payload["features"], float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else 0.0

    def save(self, feats: torch.Tensor, start: int, seconds: float = 0.0) -> None:
        """Write rows [start, start + len(feats)) as one chunk, with `seconds`: what the extraction took to reach
        its last row, over all sessions. A chunk that cannot be written (a full disk) is reported once, and the
        extraction goes on without saving more."""
        if not self.writable or not len(feats):
            return
        path = self.folder / f"rows-{start}-{start + len(feats)}.pt"
        try:
            with atomic_path(path) as tmp:  # a view would save its whole storage: the rows alone, copied
                torch.save({"format": self.format, "start": start, "features": feats.clone(),
                            "seconds": float(seconds)}, tmp)
        except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
            self.writable = False
            print(f"[evaluate] WARNING: could not save the extraction's progress in {path} "
                  f"({write_failure(path, e)}); "
                  f"it goes on without saving more, and a preempted run would extract these rows again",
                  file=sys.stderr, flush=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def remove_if_idle(self, idle_s: float) -> bool:
        """Remove the chunks when nothing was written among them for `idle_s` seconds (called once a finished file
        that serves this extraction exists: a writer killed before removing them left them); a writer at work keeps
        its."""
        try:
            newest = max((p.stat().st_mtime for p in self.folder.iterdir()), default=0.0)
        except OSError:  # no folder, or a file removed while looked at: nothing to do now
            return False
        if time.time() - newest < idle_s:
            return False
        self.remove()
        return True
