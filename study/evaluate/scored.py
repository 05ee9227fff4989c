"""ScoredSizes: each labeled size's scores, saved in the run folder as soon as its probes are done, so that a rerun of
the same evaluation (a requeued or preempted job) reads them back instead of fitting its probes again (at iNat21's
scale a size's probes take longer than its share of the extraction)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from study.atomic import write_json
from study.configfields import is_num
from study.results.record import metric_row_problem
from study.version import code_version


class ScoredSizes:
    """`load(n)` -> the saved {"metrics": [...], "info": {...}, "seconds": float, "code_version": str} of labeled size
    n, or None where there is none for this `key` (what the scores depend on: config, encoders, manifests, transform,
    device; not the code version, as a checkpoint's resume does not: the caller warns); `save(n, metrics, info,
    seconds)` writes it atomically to `<folder>/<n>.json`."""

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = Path(folder), key

    def _path(self, n: int) -> Path:
        return self.folder / f"{n}.json"

    def load(self, n: int) -> dict[str, Any] | None:
        try:
            saved = json.loads(self._path(n).read_text())
        except (OSError, ValueError):  # none yet, or unreadable: scored again
            return None
        if not isinstance(saved, dict) or saved.get("key") != self.key or not _complete(saved):
            return None
        return saved

    def save(self, n: int, metrics: list[dict], info: dict, seconds: float) -> None:
        write_json(self._path(n), {"key": self.key, "metrics": metrics, "info": info, "seconds": seconds,
                                   "code_version": code_version()})


def _complete(saved: dict) -> bool:
    """Whether `saved` holds what a rerun reads back (metric rows, the probes' info, seconds): a file of another
    version of study, or edited, that lacks them is scored again, not a KeyError that fails every retry."""
    metrics = saved.get("metrics")
    return (isinstance(metrics, list) and all(metric_row_problem(m) is None for m in metrics)
            and isinstance(saved.get("info"), dict) and is_num(saved.get("seconds")))
