"""study/train/checkpoint.py: the global RNG states a checkpoint holds come back as they were saved."""
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from study.errors import StudyError
from study.train.backbones import read_encoder
from study.train.checkpoint import (SignalFlag, check_fingerprint, load_checkpoint, rng_state, save_checkpoint,
                                    set_rng_state)


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_rng_states_round_trip_through_a_checkpoint_file(tmp_path):
    """Python's, numpy's (with its cached Gaussian) and torch's CPU generators, saved in a checkpoint file and set
    again, give the draws they gave after the save. Training draws from none of them today (the loader and each
    step have their own seeded generators), so the bit-exact resume tests cannot see a restore that does nothing."""
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # numpy now holds a cached second Gaussian: part of its state
    save_checkpoint(tmp_path / "ck.pt", {"rng": rng_state()})
    expected = _draws()
    random.seed(7), np.random.seed(8), torch.manual_seed(9)
    assert _draws() != expected
    set_rng_state(load_checkpoint(tmp_path / "ck.pt")["rng"])
    assert _draws() == expected


def test_a_failed_save_leaves_the_previous_checkpoint_readable(tmp_path):
    """A save interrupted by an error (here a value torch cannot pickle) leaves the checkpoint before it whole, and
    no temporary file beside it."""
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 3})
    with pytest.raises((AttributeError, pickle.PicklingError), match="pickle"):  # AttributeError before Python 3.14
        save_checkpoint(path, {"step": 4, "bad": lambda: None})
    assert load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


@pytest.mark.parametrize("failure", ["oserror", "torch"])
def test_a_save_on_a_full_disk_names_the_checkpoint_and_keeps_the_one_before(tmp_path, monkeypatch, failure):
    """A full disk mid-save (raised by a stand-in for torch.save after part of the file is written: as an OSError, or
    as torch's zip writer reports it, a RuntimeError that says only `unexpected pos`) is one StudyError naming the
    checkpoint, the space left and the likely cause, not torch's line that names neither; the checkpoint before it
    reads as it was and no temporary is left (a 400 MB one would hold the space it needs)."""
    import errno

    import study.train.checkpoint as checkpoint_mod

    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 3})

    def full_disk(obj, f):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 part of a zip")
        if failure == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(checkpoint_mod.torch, "save", full_disk)
    with pytest.raises(StudyError) as e:
        save_checkpoint(path, {"step": 4})
    said = str(e.value)
    assert said.startswith(f"{path}: checkpoint not written (") and "GB free there now" in said
    assert ("the disk is full" if failure == "oserror" else "a full disk or quota fails writes so") in said
    assert "the checkpoint before it, if any, is kept" in said
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


@pytest.mark.parametrize("state", [{"step": 3}, {"step": 3, "format": 0}, [1, 2]])
def test_a_file_that_is_not_a_checkpoint_of_this_format_is_refused(tmp_path, state):
    torch.save(state, tmp_path / "ck.pt")
    with pytest.raises(StudyError, match="not a checkpoint of this version of study"):
        load_checkpoint(tmp_path / "ck.pt")


def test_a_file_torch_refuses_to_unpickle_is_named_in_one_line_without_torchs_unsafe_advice(tmp_path):
    """A whole model saved with torch.save(model), and bytes that are no PyTorch file: the cause, not torch's
    paragraphs (which suggest weights_only=False, which would run the file's code)."""
    whole, junk = tmp_path / "whole.pt", tmp_path / "junk.pt"
    torch.save(torch.nn.Linear(2, 2), whole)
    junk.write_text("garbage\n")
    for path, cause in ((whole, "torch.nn.modules.linear.Linear"), (junk, "")):
        with pytest.raises(StudyError) as ck:
            load_checkpoint(path)
        with pytest.raises(StudyError) as enc:
            read_encoder(path)
        for error, what in ((ck, "unreadable checkpoint"), (enc, "not a study encoder file")):
            text = str(error.value)
            assert text.startswith(f"{path}: {what} (it holds more than tensors, or is no PyTorch file: "), text
            assert cause in text and "\n" not in text and "weights_only" not in text and "\x1b" not in text, text
            assert "safe_globals" not in text, text  # the cause's first sentence, not torch's advice after it


def test_a_fingerprint_compares_tuples_and_lists_alike():
    """A setting held as a tuple now and as a list in the checkpoint (or the other way) is the same setting."""
    check_fingerprint({"config": {"head": [2048, 128]}}, {"config": {"head": (2048, 128)}}, "ck.pt")
    check_fingerprint({"config": {"betas": (0.9, 0.999)}}, {"config": {"betas": [0.9, 0.999]}}, "ck.pt",
                      defaults={"config": {"betas": (0.9, 0.999)}})
    with pytest.raises(StudyError, match=r"config\.head: checkpoint \[2048, 128\], now \[2048, 64\]"):  # other values
        check_fingerprint({"config": {"head": [2048, 128]}}, {"config": {"head": (2048, 64)}}, "ck.pt")


def test_a_key_only_the_checkpoint_holds_is_refused_and_named():
    """A setting the checkpoint was written with that the current configuration lacks is a difference (defaults only
    excuse keys the checkpoint lacks), named with both sides."""
    with pytest.raises(StudyError, match=r"config\.gone: checkpoint 2, now '<absent>'"):
        check_fingerprint({"config": {"a": 1, "gone": 2}}, {"config": {"a": 1}}, "ck.pt",
                          defaults={"config": {"gone": 2}})


def test_a_signal_flag_installed_off_the_main_thread_sets_no_handler():
    """Python sets signal handlers only from the main thread: installed from another one, the flag does nothing
    (no error), and restoring it leaves the handlers as they were."""
    before = signal.getsignal(signal.SIGUSR2)
    errors, flags = [], []

    def install():
        try:
            flags.append(SignalFlag().install())
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=install)
    t.start()
    t.join()
    assert errors == [] and flags[0].previous == {}
    flags[0].restore()
    assert signal.getsignal(signal.SIGUSR2) is before


def test_a_checkpoint_of_a_newer_format_says_a_newer_study_wrote_it(tmp_path):
    """A run folder shared by two checkouts: a checkpoint of a later format is not called foreign, and the message
    says that removing it loses the training."""
    torch.save({"step": 3, "format": 99}, tmp_path / "ck.pt")
    with pytest.raises(StudyError, match="format 99, written by a newer version of study .*starts the training over"):
        load_checkpoint(tmp_path / "ck.pt")


def test_a_checkpoint_lacking_a_key_its_reader_needs_is_named(tmp_path):
    """A hand-edited checkpoint: the keys the caller reads are checked at load, not met as a KeyError later."""
    save_checkpoint(tmp_path / "ck.pt", {"step": 3, "method": {}})
    assert load_checkpoint(tmp_path / "ck.pt", ("step", "method"))["step"] == 3
    with pytest.raises(StudyError, match=r"ck.pt: checkpoint lacks optimizer, rng \(edited"):
        load_checkpoint(tmp_path / "ck.pt", ("step", "optimizer", "method", "rng"))


def test_an_empty_checkpoint_or_encoder_file_is_named_as_empty(tmp_path):
    """A file of 0 bytes (a copy or a disk that failed): torch's EOFError has no message of its own."""
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"")
    with pytest.raises(StudyError, match=r"checkpoint.pt: unreadable checkpoint \(the file is empty or cut short"):
        load_checkpoint(path)
    with pytest.raises(StudyError, match=r"checkpoint.pt: not a study encoder file \(the file is empty or cut short"):
        read_encoder(path)


def test_a_key_the_checkpoint_lacks_matches_only_at_its_default_and_every_differing_key_is_named():
    """A key added since the checkpoint was written matches while the current value is its default, is refused at
    any other; a key the checkpoint holds is compared even when the current value is the default. The message names
    every differing key, not only the first."""
    saved, defaults = {"config": {"lr": 0.3}}, {"config": {"new": 1, "old": 0}}
    check_fingerprint(saved, {"config": {"lr": 0.3, "new": 1}}, "ck.pt", defaults=defaults)
    with pytest.raises(StudyError, match=r"config\.new: checkpoint '<absent>', now 2"):
        check_fingerprint(saved, {"config": {"lr": 0.3, "new": 2}}, "ck.pt", defaults=defaults)
    with pytest.raises(StudyError, match=r"config\.old: checkpoint 5, now 0"):
        check_fingerprint({"config": {"lr": 0.3, "old": 5}}, {"config": {"lr": 0.3, "old": 0}}, "ck.pt",
                          defaults=defaults)
    with pytest.raises(StudyError) as e:
        check_fingerprint({"config": {"a": 1, "b": 2}}, {"config": {"a": 3, "b": 4}}, "ck.pt")
    assert "config.a: checkpoint 1, now 3; config.b: checkpoint 2, now 4" in str(e.value)


def test_only_a_process_its_local_launcher_marked_ends_its_training_at_a_sigterm(monkeypatch):
    """A local worker's launcher sets TERM_ENDS_ENV in the worker's environment: its SIGTERM (`kill <pid>`) ends it
    after the checkpoint. Nothing in this process sets it (a test calling the worker's `main` here once set a class
    attribute, and a later test's SIGTERM to itself, meant to be dropped, ended the test run)."""
    from study.runtime_keys import TERM_ENDS_ENV

    monkeypatch.delenv(TERM_ENDS_ENV, raising=False)
    assert SignalFlag().term_ends is False
    monkeypatch.setenv(TERM_ENDS_ENV, "1")
    assert SignalFlag().term_ends is True


def test_a_signal_flag_holds_signals_then_hands_sigusr2_to_the_previous_handler_and_drops_sigterm(monkeypatch):
    """While installed, SIGUSR2 and SIGTERM only mark `pending`; forward() calls the handler installed before for a
    SIGUSR2 (submitit's requeue), drops a SIGTERM, and clears the flag; restore() puts the previous handlers back,
    once: a second restore leaves a handler set since as it is. Not a local worker's (TERM_ENDS_ENV, inherited from
    a shell a worker started, would end this test run by its SIGTERM)."""
    from study.runtime_keys import TERM_ENDS_ENV

    monkeypatch.delenv(TERM_ENDS_ENV, raising=False)
    calls = []

    def previous(signum, frame):
        calls.append(signum)

    old_usr2, old_term = signal.signal(signal.SIGUSR2, previous), signal.getsignal(signal.SIGTERM)
    try:
        flag = SignalFlag().install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.pending == [signal.SIGTERM] and calls == []
        flag.forward()
        assert flag.pending == [] and calls == []
        os.kill(os.getpid(), signal.SIGUSR2)
        assert flag.pending == [signal.SIGUSR2] and calls == []
        flag.forward()
        assert flag.pending == [] and calls == [signal.SIGUSR2]
        flag.restore()
        assert signal.getsignal(signal.SIGUSR2) is previous and signal.getsignal(signal.SIGTERM) == old_term
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        flag.restore()
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR2, old_usr2)
        signal.signal(signal.SIGTERM, old_term)


SIGUSR2_AT_DEFAULT = """
import os, signal
from study.train.checkpoint import SignalFlag

signal.signal(signal.SIGUSR2, signal.SIG_DFL)
flag = SignalFlag().install()
os.kill(os.getpid(), signal.SIGUSR2)
print("pending", flag.pending == [signal.SIGUSR2], flush=True)
flag.forward()
print("survived", flush=True)
"""


def test_a_sigusr2_forwarded_to_the_default_action_ends_the_process(tmp_path):
    """With no handler before the flag's (no submitit), SIGUSR2's default action ends the process once the flag has
    checkpointed: forward() puts the default back before raising the signal again, not the flag's own handler."""
    script = tmp_path / "usr2.py"
    script.write_text(SIGUSR2_AT_DEFAULT)
    repo = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -signal.SIGUSR2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "pending True\n", proc.stdout


SIGTERM_FORWARDED = """
import os, signal
from study.train.checkpoint import SignalFlag

flag = SignalFlag().install()
os.kill(os.getpid(), signal.SIGTERM)
print("pending", flag.pending == [signal.SIGTERM], flush=True)
flag.forward()
print("survived", flush=True)
"""


@pytest.mark.parametrize("term_ends", [False, True])
def test_a_sigterm_forwarded_ends_a_local_workers_process_and_no_other(tmp_path, term_ends):
    """Where the local launcher set TERM_ENDS_ENV, forward() ends the process by the SIGTERM it held (its checkpoint
    written first); elsewhere (a Slurm job) the SIGTERM is dropped and the process carries on."""
    from study.runtime_keys import TERM_ENDS_ENV

    script = tmp_path / "term.py"
    script.write_text(SIGTERM_FORWARDED)
    repo = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k != TERM_ENDS_ENV}
    env.update({"PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
                **({TERM_ENDS_ENV: "1"} if term_ends else {})})
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    if term_ends:
        assert proc.returncode == -signal.SIGTERM and proc.stdout == "pending True\n", (proc.returncode, proc.stdout,
                                                                                        proc.stderr)
    else:
        assert proc.returncode == 0 and proc.stdout == "pending True\nsurvived\n", (proc.stdout, proc.stderr)


def test_every_cuda_generator_is_saved_where_cuda_is_in_use_and_set_again_on_the_devices_present(tmp_path,
                                                                                                 monkeypatch):
    """A GPU run's dropout or random masks draw from the CUDA generators: the checkpoint holds each device's state
    once CUDA is initialised, and a resume sets them again, cut to the devices this process sees. Simulated through
    torch.cuda's calls (no GPU here); a state without them (a CPU run's) sets none."""
    states, set_to = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)], []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", set_to.append)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    save_checkpoint(tmp_path / "ck.pt", {"rng": rng_state()})
    saved = load_checkpoint(tmp_path / "ck.pt")["rng"]
    assert [t.tolist() for t in saved["cuda"]] == [[1, 2], [3, 4]]
    set_rng_state(saved)
    assert [[t.tolist() for t in s] for s in set_to] == [[[1, 2]]]
    set_rng_state({k: v for k, v in saved.items() if k != "cuda"})
    assert len(set_to) == 1


def test_a_key_new_to_the_configuration_is_refused_even_at_none_where_its_default_is_unknown():
    """`<absent>` is not None: a key the checkpoint lacks, now None, is another setting unless None is its default;
    a key the checkpoint holds at None that the configuration dropped is refused too."""
    with pytest.raises(StudyError, match=r"config\.new: checkpoint '<absent>', now None"):
        check_fingerprint({"config": {"a": 1}}, {"config": {"a": 1, "new": None}}, "ck.pt")
    with pytest.raises(StudyError, match=r"config\.new: checkpoint '<absent>', now None"):
        check_fingerprint({"config": {"a": 1}}, {"config": {"a": 1, "new": None}}, "ck.pt",
                          defaults={"config": {"new": 4}})
    check_fingerprint({"config": {"a": 1}}, {"config": {"a": 1, "new": None}}, "ck.pt",
                      defaults={"config": {"new": None}})
    with pytest.raises(StudyError, match=r"config\.gone: checkpoint None, now '<absent>'"):
        check_fingerprint({"config": {"a": 1, "gone": None}}, {"config": {"a": 1}}, "ck.pt")


def test_a_gpu_runs_checkpoint_loads_onto_the_cpu_where_no_gpu_is(tmp_path):
    """Its tensors are read onto the CPU (a resume copies them to the run's device), so on a machine without CUDA
    the file is read, and a resume there says what differs (device_type), rather than calling it unreadable and
    advising to remove it. A GPU run's file simulated: a CPU checkpoint whose tensors are marked as on cuda:0."""
    import io
    import zipfile

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"w": torch.ones(2)})
    out = io.BytesIO()
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name.endswith("/data.pkl"):  # the storage's location, a pickled string (torch's protocol 2)
                assert data.count(b"X\x03\x00\x00\x00cpu") == 1
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            zout.writestr(name, data)
    path.write_bytes(out.getvalue())
    w = load_checkpoint(path)["w"]
    assert w.device.type == "cpu" and w.tolist() == [1.0, 1.0]


def test_a_missing_encoder_file_given_by_a_relative_path_names_the_folder_it_was_read_in(tmp_path, monkeypatch):
    """A grid's relative `pretrained.encoder_file` is read in the folder the job runs in: the error says which (an
    absolute path needs no such note)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudyError) as relative:
        read_encoder("encoders/gone.pt")
    assert str(relative.value) == f"encoders/gone.pt: encoder file not found (a relative path: read in {tmp_path})"
    with pytest.raises(StudyError) as absolute:
        read_encoder(tmp_path / "gone.pt")
    assert str(absolute.value) == f"{tmp_path / 'gone.pt'}: encoder file not found"


def test_an_encoder_file_whose_backbone_names_no_architecture_is_no_study_encoder_file(tmp_path):
    """A hand-made file of the right keys but no architecture name: refused as such by read_encoder (a KeyError
    in building the backbone stopped `study status`'s stale check with a traceback)."""
    torch.save({"backbone": {"width": 64}, "state_dict": {}}, tmp_path / "hand.pt")
    with pytest.raises(StudyError, match=r"hand.pt: not a study encoder file \(ValueError: its 'backbone' names no "
                                         r"architecture"):
        read_encoder(tmp_path / "hand.pt")
