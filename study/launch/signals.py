"""The signals that stop a `study` command: SIGINT (Ctrl-C), SIGHUP (a closed terminal), SIGTERM (`kill`, `study
cancel`, Slurm), those the platform has; and holding them over a step that must not be cut in two."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGHUP", "SIGTERM") if hasattr(signal, n))


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGHUP and SIGTERM while the block runs, then deliver them: blocked in this thread (sbatch,
    started from it, inherits the mask), and recorded by a handler of ours where another thread of the process (a
    library's) takes one, as the kernel may. Handlers and mask are restored at the end, also on an error. Only in
    the main thread (elsewhere it does nothing)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in STOP_SIGNALS}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # one blocked meanwhile is delivered here
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)
