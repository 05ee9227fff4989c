"""TrainingCurve: `<run_dir>/train_log.csv`, a row per progress line of a training run, to plot how it trained
(the progress lines themselves go to the job's log, mixed with everything else).

Columns (FIELDS): step; epoch (steps / steps per epoch); loss, the mean over the progress line's window of steps;
lr; images_per_s of this session so far; train_top1 over the same window where the method has labels (empty
otherwise); hours of training so far, all sessions. Rows are appended as the run goes, each in one write; a run that
resumes first cuts the file back to its checkpoint's step (a killed session logged steps it trains again), so the
file of a finished run has each step once, in order, whatever stopped it on the way.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from study.atomic import write_text

FIELDS = ("step", "epoch", "loss", "lr", "images_per_s", "train_top1", "hours")
FILE = "train_log.csv"


def read_curve(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a curve file as strings by column, skipping a line a killed writer cut short; [] without one, or
    where its header has no `step` column (a file of another kind: a restart replaces it)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]  # torn
    header, *rows = list(csv.reader(lines)) or [[]]
    if "step" not in header:
        return []
    at = header.index("step")
    return [dict(zip(header, r)) for r in rows if len(r) == len(header) and r[at].isdigit()]


class TrainingCurve:
    """`restart(step)` once, when the run starts or resumes, then `append(...)` per progress line."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / FILE

    def restart(self, step: int) -> None:
        """Keep the rows of steps up to `step` (a fresh run: none), header first; written atomically."""
        kept = [r for r in read_curve(self.path) if int(r["step"]) <= step]
        out = io.StringIO()
        writer = csv.DictWriter(out, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in FIELDS} for r in kept)
        write_text(self.path, out.getvalue())

    def append(self, step: int, epoch: float, loss: float, lr: float, images_per_s: float,
               train_top1: float | None, hours: float) -> None:
        values: list[Any] = [step, f"{epoch:.4f}", f"{loss:.6g}", f"{lr:.6g}", f"{images_per_s:.1f}",
                             "" if train_top1 is None else f"{train_top1:.6g}", f"{hours:.6g}"]
        line = ",".join(map(str, values)) + "\n"
        with open(self.path, "a") as f:  # one write of a whole line
            f.write(line)
