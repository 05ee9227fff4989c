"""study/launch/signals.py: the stop signals held over a step that must not be cut in two, then delivered."""
from __future__ import annotations

import os
import signal
import threading
import time

from study.launch.signals import STOP_SIGNALS, stop_signals_held


def test_a_stop_signal_another_thread_takes_while_held_is_delivered_after():
    """The kernel gives a signal sent to the process to a thread that does not block it: here a helper thread,
    started before the hold (so it does not share the main thread's blocked mask), takes SIGHUP while the main thread
    holds the stop signals (a local worker being started). The signal must reach the previous handler once the hold
    ends, not be lost (a closed terminal would then leave the command and its workers running)."""
    got: list[int] = []
    go = threading.Event()
    helper = threading.Thread(target=lambda: go.wait(10) and os.kill(os.getpid(), signal.SIGHUP))
    previous = signal.signal(signal.SIGHUP, lambda signum, _frame: got.append(signum))
    try:
        helper.start()
        with stop_signals_held():
            go.set()
            helper.join(10)
            for _ in range(20):  # the Python handler runs in the main thread, between two bytecodes
                time.sleep(0.01)
            assert got == []  # held
        for _ in range(20):
            time.sleep(0.01)
        assert got == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_stop_signal_blocked_before_the_hold_stays_blocked_after():
    """The hold restores the mask it found, not one with every stop signal unblocked."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        with stop_signals_held():
            pass
        assert signal.SIGHUP in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def test_a_child_started_during_the_hold_inherits_the_stop_signals_blocked_and_a_thread_may_use_it():
    """sbatch, started while held, must not be cut in two by the Ctrl-C its process group gets: it inherits the
    blocked mask. Outside the main thread (where Python cannot set handlers) the hold does nothing."""
    with stop_signals_held():
        assert set(STOP_SIGNALS) <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
    errors: list[BaseException] = []

    def other():
        try:
            with stop_signals_held():
                pass
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert errors == []
