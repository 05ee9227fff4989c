"""Checkpoints for exact resume: atomic writes, RNG states, config fingerprints, and the signal flag that
turns SIGUSR2/SIGTERM into a checkpoint at the next step boundary."""
from __future__ import annotations

import inspect
import os
import pickle
import random
import re
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from study.atomic import atomic_path, write_failure
from study.errors import StudyError
from study.runtime_keys import TERM_ENDS_ENV
from study.train.run_files import CHECKPOINT_FORMAT as FORMAT
from study.version import newer_note


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write `state` to `path` atomically (temporary file, then rename): a reader sees the old or the new file. A write
    that fails (a full disk: torch.save's zip writer raises a RuntimeError) is a StudyError naming the file and the
    space left, the file before it kept."""
    try:
        with atomic_path(path) as tmp:
            torch.save(dict(state, format=FORMAT), tmp)
    except (OSError, RuntimeError) as e:
        raise StudyError(f"{path}: checkpoint not written ({write_failure(path, e)}); the checkpoint before it, if "
                         "any, is kept: free space, then rerun the job, which resumes from it") from e


def load_error(e: Exception) -> str:
    """Why `torch.load(..., weights_only=True)` failed, for a message: the cause of a weights-only refusal in one line
    (not torch's paragraphs, whose advice, weights_only=False, would run any code the file holds), an empty file as
    such, else the error."""
    text = str(e)
    blocked = re.search(r"GLOBAL \S+ whose module \S+ is blocked", text)  # os, sys: no "WeightsUnpickler error:"
    if isinstance(e, pickle.UnpicklingError) and blocked:
        return f"it holds more than tensors: {blocked.group(0)}"
    if isinstance(e, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
        lines = [ln.strip() for ln in text.split("WeightsUnpickler error:", 1)[1].splitlines() if ln.strip()]
        cause = lines[0].split(". ", 1)[0].rstrip(".") if lines else "unknown"
        return f"it holds more than tensors, or is no PyTorch file: {cause}"
    if isinstance(e, EOFError):  # torch's for a file of 0 bytes (or a pickle cut short): no message of its own
        return "the file is empty or cut short (EOFError)"
    return f"{type(e).__name__}: {e}"


def load_checkpoint(path: str | Path, needs: tuple[str, ...] = ()) -> dict:
    """The state `save_checkpoint` wrote to `path`; a StudyError naming the file where it is unreadable, of another
    format, or lacks one of the keys in `needs` (those the caller reads)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise StudyError(f"{path}: unreadable checkpoint ({load_error(e)}); remove it to start over") from None
    version = state.get("format") if isinstance(state, dict) else None
    if newer_note(version, FORMAT):
        raise StudyError(f"{path}: checkpoint of format {version}, written by a newer version of study (this one reads "
                         f"format {FORMAT}): resume the job with that version (update this checkout); removing the "
                         "checkpoint starts the training over")
    if version != FORMAT:
        raise StudyError(f"{path}: not a checkpoint of this version of study; remove it to start over")
    missing = [k for k in needs if k not in state]
    if missing:
        raise StudyError(f"{path}: checkpoint lacks {', '.join(missing)} (edited, or not written by study); remove it "
                         "to start over")
    return state


def rng_state() -> dict:
    """Every global RNG: python, numpy, torch (CPU) and, when present, every CUDA device."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and tuples compare as lists."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: list(d) if isinstance(d, tuple) else d}


def check_fingerprint(saved: dict, current: dict, path: str | Path, defaults: dict | None = None) -> None:
    """Refuse a checkpoint written for other settings, naming every differing key. `defaults` (a fingerprint of
    default values): a key the checkpoint lacks (written before the key existed) matches when the current value is
    its default, which computes what the code before it did."""
    a, b, d = flatten(saved), flatten(current), flatten(defaults or {})
    diff = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>")
                  and not (k not in a and k in d and b.get(k) == d[k]))
    if diff:
        details = "; ".join(f"{k}: checkpoint {a.get(k, '<absent>')!r}, now {b.get(k, '<absent>')!r}" for k in diff)
        raise StudyError(
            f"{path}: checkpoint was written for a different configuration ({details}); "
            "use another run folder or remove the checkpoint"
        )


class SignalFlag:
    """While installed, SIGUSR2 and SIGTERM only set `pending`; the loop checkpoints at the next step boundary,
    then calls `forward()`: SIGUSR2 goes on to the handler installed before (submitit's, which requeues the
    job; the default action ends the process), SIGTERM is dropped (training carries on: on Slurm a SIGKILL or the
    job's requeue follows), unless `term_ends` (a local worker, whose launcher sets TERM_ENDS_ENV: a `kill` of it
    means stop), which ends the process by it, as its default action."""

    SIGNALS = ("SIGUSR2", "SIGTERM")

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}
        self.term_ends = os.environ.get(TERM_ENDS_ENV) == "1"

    def install(self) -> "SignalFlag":
        if threading.current_thread() is not threading.main_thread():
            return self  # handlers can only be set from the main thread; nothing to catch elsewhere
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def add(self, signum: int) -> None:
        """Mark `signum` pending, once however often it comes before the next checkpoint (a local worker gets
        SIGUSR2 once per thread of its dead parent)."""
        if signum not in self.pending:
            self.pending.append(signum)

    def _handle(self, signum: int, frame: Any) -> None:
        self.add(signum)

    def said(self) -> str:
        """The pending signals as a log names them: SIGUSR2 with what it means here (Slurm's signal ahead of a time
        limit, or a local run stopped by `study cancel` or Ctrl-C: the job resumes from what was saved), others by
        name; "a signal to another rank" where none is pending here."""
        usr2 = getattr(signal, "SIGUSR2", None)
        return ", ".join(f"{signal.Signals(sig).name}" + (" (a requeue or a stop: the job resumes from here)"
                                                         if sig == usr2 else "")
                         for sig in self.pending) or "a signal to another rank"

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self.previous.clear()

    def forward(self) -> None:
        """Hand the pending SIGUSR2 (if any) to the previous handler, or with `term_ends` end the process by a pending
        SIGTERM; clear the flag."""
        pending, self.pending = self.pending, []
        usr2 = getattr(signal, "SIGUSR2", None)
        if self.term_ends and signal.SIGTERM in pending:
            self.restore()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)  # its default action: the process ends, the checkpoint written
            return
        if usr2 is None or usr2 not in pending:
            return
        prev = self.previous.get(usr2, signal.SIG_DFL)
        if callable(prev):
            prev(usr2, inspect.currentframe())
        elif prev == signal.SIG_DFL:
            self.restore()
            signal.raise_signal(usr2)
