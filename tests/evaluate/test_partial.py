"""A feature extraction stopped part way (a signal, a crash) goes on from the rows it saved, and ends with the
features an uninterrupted extraction gives."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
import torch

from study.evaluate import features as features_mod
from study.evaluate.features import FeatureCache
from study.evaluate.partial import PartialExtraction
from study.manifests import load_manifest
from study.train.augment import AugmentConfig, build_augment


class Preempted(Exception):
    """What the handler installed before (submitit's requeue, in a Slurm job) does here: end the run."""


@pytest.fixture
def rows_computed(monkeypatch):
    """Rows the encoder is given, per forward call (a short last batch padded to the batch size); `at_call[k]` runs
    at the k-th call (1-based) of a run."""
    seen = {"rows": [], "at_call": {}}
    real = features_mod.load_encoder

    def hooked(path):
        enc = real(path)

        def hook(_module, inputs, _output):
            seen["rows"].append(len(inputs[0]))
            action = seen["at_call"].pop(len(seen["rows"]), None)
            if action:
                action()

        enc.register_forward_hook(hook)
        return enc

    monkeypatch.setattr(features_mod, "load_encoder", hooked)
    return seen


def cache(path, every_minutes=None):
    """The cache an evaluation of tests/evaluate/test_evaluate.py uses (12 px, batches of 16), on the CPU."""
    aug = build_augment(AugmentConfig.from_dict({"preset": "eval", "image_size": 12, "resize_ratio": 1.0}))
    return FeatureCache(path, aug, "pooled", 16, torch.device("cpu"), 0, every_minutes)


def signal_self(sig):
    return lambda: os.kill(os.getpid(), sig)


def extract_until_preempted(enc, manifest, cache_dir, rows_computed, at_call: dict) -> None:
    """Extract labeled(40) into `cache_dir`, running `at_call` (see rows_computed) until a SIGUSR2, whose handler
    (as submitit's requeue) ends the run."""
    def preempted(*_):
        raise Preempted

    previous = signal.signal(signal.SIGUSR2, preempted)
    try:
        rows_computed.update(rows=[], at_call=at_call)
        with pytest.raises(Preempted):
            cache(cache_dir).get(enc, manifest, 40)
    finally:
        signal.signal(signal.SIGUSR2, previous)


def preempt_at_the_third_batch(enc, manifest, cache_dir, rows_computed) -> None:
    """Extract labeled(40) into `cache_dir`, signalled SIGTERM in the first batch (saved and carried on) and SIGUSR2
    in the second (saved, then handed on): rows 0-32 saved, in two chunks."""
    extract_until_preempted(enc, manifest, cache_dir, rows_computed,
                            {1: signal_self(signal.SIGTERM), 2: signal_self(signal.SIGUSR2)})
    assert rows_computed["rows"] == [16, 16]


def test_a_signalled_extraction_saves_its_rows_and_the_next_run_computes_only_the_rest(
        manifests, encoder_file, rows_computed, tmp_path, capsys):
    enc, train = encoder_file(), load_manifest("evtrain")
    reference = cache(tmp_path / "reference").get(enc, train, 40)
    assert rows_computed["rows"] == [16, 16, 16]  # rows 32-40 padded
    capsys.readouterr()
    preempt_at_the_third_batch(enc, train, tmp_path / "features", rows_computed)
    (folder,) = (tmp_path / "features").glob("*/*/labeled40.partial")
    err = capsys.readouterr().err  # the log says where each signal left it, as a pretraining's does
    assert f"evtrain: rows 0-16 of 40 saved to {folder} on SIGTERM\n" in err, err
    assert (f"evtrain: rows 0-32 of 40 saved to {folder} on SIGUSR2 (a requeue or a stop: the job resumes from "
            "here)\n") in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["rows-0-16.pt", "rows-16-32.pt"]
    assert not list(folder.parent.glob("labeled40.pt"))
    took = [torch.load(folder / f"rows-{a}-{b}.pt", weights_only=True)["seconds"] for a, b in ((0, 16), (16, 32))]
    assert 0 < took[0] < took[1]  # the time to reach each chunk's last row

    rows_computed["rows"] = []
    again = cache(tmp_path / "features").get(enc, train, 40)
    assert rows_computed["rows"] == [16]  # rows 32-40 only (padded)
    assert torch.equal(again.x, reference.x) and torch.equal(again.y, reference.y)
    assert again.info["resumed_rows"] == 32 and again.info["cached"] is False
    assert again.info["images_per_s"] == pytest.approx(8 / again.info["seconds"])  # the rows this session computed
    assert again.info["earlier_sessions_seconds"] == took[1]  # the preempted session's, for the record's wall time
    assert not folder.exists() and (folder.parent / "labeled40.pt").is_file()  # the chunks give way to the file


def test_an_evaluation_resumed_from_saved_rows_counts_their_time_in_its_wall_time(
        manifests, encoder_file, rows_computed, tmp_path):
    """A requeued frozen-feature evaluation recorded this session's wall time only, though its earlier session
    computed most rows."""
    from study.evaluate import EvalConfig, evaluate

    enc = encoder_file()
    preempt_at_the_third_batch(enc, load_manifest("evtrain"), tmp_path / "features", rows_computed)
    (chunk,) = (tmp_path / "features").glob("*/*/labeled40.partial/rows-16-32.pt")
    set_seconds(chunk, 1000.0)  # a slow earlier session: more than this one can take
    took = torch.load(chunk, weights_only=True)["seconds"]
    cfg = EvalConfig.from_dict({"protocol": "linear", "train_manifest": "evtrain", "test_manifest": "evtest",
                                "labeled_sizes": [40], "image_size": 12, "augment": {"resize_ratio": 1.0},
                                "batch_size": 16, "num_workers": 0, "device": "cpu"})
    p = evaluate(cfg, tmp_path / "run", [enc], tmp_path / "features")["protocol"]
    assert [e["resumed_rows"] for e in p["extraction"]] == [32, 0]  # the labeled rows resumed, the test rows not
    assert p["earlier_sessions_seconds"] == took == 1000.0 and p["wall_time_s"] >= took + p["extraction_seconds"]
    assert p["images_per_s"] == pytest.approx((8 + 20) / p["extraction_seconds"])  # this session's rows only


def set_seconds(chunk, seconds: float) -> None:
    """Say that a saved chunk took `seconds` to reach its last row."""
    payload = torch.load(chunk, weights_only=True)
    torch.save({**payload, "seconds": seconds}, chunk)


def test_a_chunk_counts_the_seconds_of_every_earlier_session(manifests, encoder_file, rows_computed, tmp_path):
    """Preempted twice: the second session's chunk holds the time to reach its last row over both sessions (the
    record's wall time sums the chunks' seconds of the sessions before the last)."""
    enc, train = encoder_file(), load_manifest("evtrain")
    extract_until_preempted(enc, train, tmp_path / "f", rows_computed, {1: signal_self(signal.SIGUSR2)})
    (folder,) = (tmp_path / "f").glob("*/*/labeled40.partial")
    set_seconds(folder / "rows-0-16.pt", 1000.0)
    extract_until_preempted(enc, train, tmp_path / "f", rows_computed, {1: signal_self(signal.SIGUSR2)})
    assert sorted(p.name for p in folder.iterdir()) == ["rows-0-16.pt", "rows-16-32.pt"]
    assert torch.load(folder / "rows-16-32.pt", weights_only=True)["seconds"] > 1000.0


def test_rows_saved_by_time_survive_a_crash(manifests, encoder_file, rows_computed, tmp_path):
    """A crash mid-batch (here an error raised in the forward pass, as a SIGKILL would stop it) keeps the chunks
    saved before it; no chunk is saved after the last batch, which the whole file follows."""
    enc, test = encoder_file(), load_manifest("evtest")
    reference = cache(tmp_path / "reference").get(enc, test, None)

    def crash():
        raise RuntimeError("node lost")

    rows_computed.update(rows=[], at_call={2: crash})
    with pytest.raises(RuntimeError, match="node lost"):
        cache(tmp_path / "features", every_minutes=1e-9).get(enc, test, None)
    (folder,) = (tmp_path / "features").glob("*/*/all.partial")
    assert [p.name for p in folder.iterdir()] == ["rows-0-16.pt"]
    rows_computed["rows"] = []
    again = cache(tmp_path / "features", every_minutes=1e-9).get(enc, test, None)
    assert rows_computed["rows"] == [16] and torch.equal(again.x, reference.x)  # rows 16-20 (padded)
    assert not folder.exists()


def test_an_extraction_whose_every_row_was_saved_computes_none(manifests, encoder_file, rows_computed, tmp_path):
    """Signalled in its last batch, an extraction saves every row before the handler ends it: the next run reads
    them all back, runs the encoder on none, and writes the file (no rate: no row was computed)."""
    enc, train = encoder_file(), load_manifest("evtrain")
    reference = cache(tmp_path / "reference").get(enc, train, 40)
    extract_until_preempted(enc, train, tmp_path / "features", rows_computed, {3: signal_self(signal.SIGUSR2)})
    (folder,) = (tmp_path / "features").glob("*/*/labeled40.partial")
    assert [p.name for p in folder.iterdir()] == ["rows-0-40.pt"]
    rows_computed["rows"] = []
    again = cache(tmp_path / "features").get(enc, train, 40)
    assert rows_computed["rows"] == [] and torch.equal(again.x, reference.x)
    assert (again.info["resumed_rows"], again.info["seconds"], again.info["images_per_s"]) == (40, 0.0, None)
    assert not folder.exists() and (folder.parent / "labeled40.pt").is_file()


def test_an_extraction_saves_no_chunk_of_its_last_rows_by_time(manifests, encoder_file, monkeypatch, tmp_path):
    """Saving by time stops before the last batch, which the whole file follows at once (a chunk of every row
    would be written, then removed, for nothing: at iNat21's scale gigabytes)."""
    saved, real = [], PartialExtraction.save

    def spy(self, feats, start, seconds=0.0):
        saved.append((start, start + len(feats)))
        real(self, feats, start, seconds)

    monkeypatch.setattr(PartialExtraction, "save", spy)
    cache(tmp_path / "features", every_minutes=1e-9).get(encoder_file(), load_manifest("evtest"), None)
    assert saved == [(0, 16)]  # 20 rows in batches of 16: after the first batch only


def test_a_killed_chunk_writers_temporary_file_is_removed_once_stale(manifests, encoder_file, rows_computed,
                                                                    tmp_path):
    """A chunk's temporary left by a killed writer in the extraction's `.partial` folder is removed by the next
    extraction once an hour old (one preempted again would otherwise keep it for ever); a fresh one, of a writer
    at work, is kept."""
    enc, train = encoder_file(), load_manifest("evtrain")
    extract_until_preempted(enc, train, tmp_path / "f", rows_computed, {1: signal_self(signal.SIGUSR2)})
    (folder,) = (tmp_path / "f").glob("*/*/labeled40.partial")
    old, fresh = folder / ".rows-16-32.pt.dead_123.tmp", folder / ".rows-16-32.pt.busy_456.tmp"  # atomic_path's
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * features_mod.STALE_TMP_S,) * 2)
    extract_until_preempted(enc, train, tmp_path / "f", rows_computed, {1: signal_self(signal.SIGUSR2)})
    assert sorted(p.name for p in folder.iterdir()) == [fresh.name, "rows-0-16.pt", "rows-16-32.pt"]


def test_chunks_left_beside_a_finished_file_are_removed_once_idle(manifests, encoder_file, rows_computed, tmp_path):
    """Chunks beside a cached file (a writer killed between writing the file and removing them) are removed by the
    next read of that file once nothing was written among them for an hour; those of a writer at work are kept."""
    enc, train = encoder_file(), load_manifest("evtrain")
    extract_until_preempted(enc, train, tmp_path / "f", rows_computed, {2: signal_self(signal.SIGUSR2)})
    (folder,) = (tmp_path / "f").glob("*/*/labeled40.partial")
    kept = {p.name: p.read_bytes() for p in folder.iterdir()}
    cache(tmp_path / "f").get(enc, train, 40)
    assert (folder.parent / "labeled40.pt").is_file() and not folder.exists()
    folder.mkdir()
    for name, data in kept.items():  # as the killed writer left them
        (folder / name).write_bytes(data)
    rows_computed["rows"] = []
    cache(tmp_path / "f").get(enc, train, 40)
    assert rows_computed["rows"] == [] and sorted(p.name for p in folder.iterdir()) == sorted(kept)  # fresh: kept
    for p in folder.iterdir():
        os.utime(p, (time.time() - 2 * features_mod.STALE_TMP_S,) * 2)
    again = cache(tmp_path / "f").get(enc, train, 40)
    assert again.info["cached"] and rows_computed["rows"] == [] and not folder.exists()


def test_rows_are_saved_by_time_only_once_the_minutes_set_have_passed(manifests, encoder_file, rows_computed,
                                                                     tmp_path):
    """`save_every_minutes` counts minutes: at 0.5 no chunk is saved after a first batch of 0.6 s (read as seconds,
    every batch of a large extraction would write a chunk)."""
    def crash():
        raise RuntimeError("node lost")

    rows_computed.update(rows=[], at_call={1: lambda: time.sleep(0.6), 2: crash})
    with pytest.raises(RuntimeError, match="node lost"):
        cache(tmp_path / "features", every_minutes=0.5).get(encoder_file(), load_manifest("evtest"), None)
    assert rows_computed["rows"] == [16, 16] and not list((tmp_path / "features").rglob("rows-*.pt"))


def test_rows_are_saved_by_time_as_soon_as_the_minutes_set_have_passed(manifests, encoder_file, rows_computed,
                                                                       tmp_path):
    """At 0.01 minutes (0.6 s), a first batch of 0.8 s is saved as a chunk before the crash in the second."""
    def crash():
        raise RuntimeError("node lost")

    rows_computed.update(rows=[], at_call={1: lambda: time.sleep(0.8), 2: crash})
    with pytest.raises(RuntimeError, match="node lost"):
        cache(tmp_path / "features", every_minutes=0.01).get(encoder_file(), load_manifest("evtest"), None)
    assert [p.name for p in (tmp_path / "features").rglob("rows-*.pt")] == ["rows-0-16.pt"]


def test_chunks_of_other_boundaries_combine_and_a_bad_chunk_ends_them(tmp_path):
    """Two runs may have saved chunks at other boundaries; the longest run of rows from row 0 is read back. A chunk
    that cannot be read, or of another width, ends it: the rows after are extracted again."""
    feats = torch.randn(50, 2000)
    partial = PartialExtraction(tmp_path / "labeled50.pt", "fmt")
    for lo, hi in ((0, 10), (0, 16), (12, 30), (36, 50)):
        partial.save(feats[lo:hi], lo)
    got = list(partial.load(50))
    assert torch.equal(torch.cat(got), feats[:30]) and [len(b) for b in got] == [16, 14]
    assert os.path.getsize(partial.folder / "rows-0-10.pt") < 2 * 10 * 2000 * 4  # the rows, not the whole tensor

    (partial.folder / "rows-30-36.pt").write_bytes(b"truncated")
    assert len(torch.cat(list(partial.load(50)))) == 30
    partial.save(torch.randn(6, 7), 30)  # another width (another layer cannot share this folder, but a file can)
    assert len(torch.cat(list(partial.load(50)))) == 30
    partial.save(feats[30:36], 30)
    assert torch.equal(torch.cat(list(partial.load(50))), feats)
    assert list(PartialExtraction(tmp_path / "labeled50.pt", "another format").load(50)) == []
    assert list(partial.load(40)) and len(torch.cat(list(partial.load(40)))) == 36  # chunks past the rows: unused
    partial.remove()
    assert not partial.folder.exists() and list(partial.load(50)) == []


def test_a_chunk_whose_rows_disagree_with_its_name_ends_them(tmp_path):
    """A chunk file holding other rows than its name says (another first row, or another count) is not read back:
    the rows from it on are extracted again."""
    feats = torch.randn(20, 3)
    partial = PartialExtraction(tmp_path / "labeled20.pt", "fmt")
    partial.save(feats[:10], 0)
    partial.save(feats[10:15], 10)
    (partial.folder / "rows-10-15.pt").rename(partial.folder / "rows-10-16.pt")  # 5 rows, named 6
    assert torch.equal(torch.cat(list(partial.load(20))), feats[:10])
    (partial.folder / "rows-10-16.pt").unlink()
    partial.save(feats[12:17], 12)
    (partial.folder / "rows-12-17.pt").rename(partial.folder / "rows-10-15.pt")  # rows 12-17, named 10-15
    assert torch.equal(torch.cat(list(partial.load(20))), feats[:10])


def _extract_in_child(cache_dir, enc, n: int, calls: dict) -> None:
    """A worker process's extraction of labeled(n), saving a chunk after every batch; `calls[k]` runs at its k-th
    forward call (e.g. waits for another worker, or kills this one)."""
    torch.set_num_threads(1)
    real = features_mod.load_encoder

    def hooked(path):
        model, seen = real(path), []

        def hook(*_):
            seen.append(1)
            action = calls.get(len(seen))
            if action:
                action()

        model.register_forward_hook(hook)
        return model

    features_mod.load_encoder = hooked
    cache(cache_dir, every_minutes=1e-9).get(enc, load_manifest("evtrain"), n)


def test_chunks_of_a_smaller_extraction_killed_while_another_made_a_larger_file_are_removed_once_idle(
        manifests, encoder_file, tmp_path):
    """Two workers extract one encoder's features of one manifest at once, at two labeled sizes (say a linear and a
    granularity job): the one of 20 rows is killed after saving a chunk, while the one of 40 rows finishes. Its rerun
    is served by the file of 40 rows, so nothing reads its chunks again: they are removed once idle, as those of the
    file itself are, and not left in the cache for ever (at iNat21's scale, gigabytes)."""
    ctx = multiprocessing.get_context("fork")
    saved, finished = ctx.Event(), ctx.Event()
    enc, features = encoder_file(), tmp_path / "features"

    def killed_once_the_other_finished():
        saved.set()  # its first chunk (rows 0-16) is on disk
        assert finished.wait(120)
        os.kill(os.getpid(), signal.SIGKILL)

    small = ctx.Process(target=_extract_in_child, args=(features, enc, 20, {2: killed_once_the_other_finished}))
    large = ctx.Process(target=_extract_in_child, args=(features, enc, 40, {1: lambda: saved.wait(120)}))
    small.start()
    large.start()
    large.join(120)
    finished.set()
    small.join(120)
    assert large.exitcode == 0 and small.exitcode == -signal.SIGKILL
    (folder,) = features.glob("*/*/labeled20.partial")
    assert [p.name for p in folder.iterdir()] == ["rows-0-16.pt"] and (folder.parent / "labeled40.pt").is_file()
    cache(features).get(enc, load_manifest("evtrain"), 8)
    assert folder.is_dir()  # fresh: a writer may be at work
    for p in folder.iterdir():
        os.utime(p, (time.time() - 2 * features_mod.STALE_TMP_S,) * 2)
    again = cache(features).get(enc, load_manifest("evtrain"), 20)  # the killed job's rerun
    assert again.info["cached"] and again.info["file"] == str(folder.parent / "labeled40.pt")
    assert not folder.exists()


def test_a_chunk_a_full_disk_refuses_is_reported_once_with_the_space_left(tmp_path, monkeypatch, capsys):
    """A chunk torch.save cannot write (a full disk, which its zip writer reports as `unexpected pos`) is one warning
    naming the chunk, the space left and the likely cause; no temporary is left, and no later chunk is tried."""
    import study.evaluate.partial as partial_mod

    calls = []

    def full_disk(obj, f):
        calls.append(f)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(partial_mod.torch, "save", full_disk)
    partial = PartialExtraction(tmp_path / "labeled8.pt", "fmt")
    partial.save(torch.zeros(4, 3), 0)
    partial.save(torch.zeros(4, 3), 4)
    err = capsys.readouterr().err
    assert len(calls) == 1 and err.count("WARNING") == 1
    assert f"progress in {partial.folder / 'rows-0-4.pt'}" in err
    assert "GB free there now: a full disk or quota fails writes so" in err
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_an_extraction_hands_back_the_signal_handlers_installed_before_it(manifests, encoder_file, rows_computed,
                                                                         tmp_path):
    """SIGTERM and SIGUSR2 only mark a save while an extraction runs; once it ends, finished or failed, the handlers
    installed before are back (a SIGUSR2 later in the job then requeues it, a SIGTERM ends it), not the flag's."""
    enc, train = encoder_file(), load_manifest("evtrain")

    def ours(*_):
        pass

    before = {sig: signal.signal(sig, ours) for sig in (signal.SIGTERM, signal.SIGUSR2)}
    try:
        cache(tmp_path / "f").get(enc, train, 8)
        assert [signal.getsignal(sig) for sig in before] == [ours, ours]

        def crash():
            raise RuntimeError("node lost")

        rows_computed.update(rows=[], at_call={1: crash})
        with pytest.raises(RuntimeError, match="node lost"):
            cache(tmp_path / "f").get(enc, train, 40)
        assert [signal.getsignal(sig) for sig in before] == [ours, ours]
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_idle_chunks_of_a_larger_extraction_are_kept_when_a_smaller_file_serves_a_run(manifests, encoder_file,
                                                                                    rows_computed, tmp_path):
    """A run served by labeled8.pt removes idle chunks of extractions that file serves, never those of a larger
    one (here labeled40's, preempted and waiting an hour or more to be requeued): its rerun goes on from them."""
    enc, train = encoder_file(), load_manifest("evtrain")
    cache(tmp_path / "f").get(enc, train, 8)
    extract_until_preempted(enc, train, tmp_path / "f", rows_computed, {2: signal_self(signal.SIGUSR2)})
    (folder,) = (tmp_path / "f").glob("*/*/labeled40.partial")
    for p in folder.iterdir():
        os.utime(p, (time.time() - 2 * features_mod.STALE_TMP_S,) * 2)
    assert cache(tmp_path / "f").get(enc, train, 8).info["cached"]
    assert [p.name for p in folder.iterdir()] == ["rows-0-32.pt"]
    rows_computed["rows"] = []
    assert cache(tmp_path / "f").get(enc, train, 40).info["resumed_rows"] == 32 and rows_computed["rows"] == [16]


def test_chunks_left_beside_a_finished_file_of_every_row_are_removed_once_idle(manifests, encoder_file,
                                                                              rows_computed, tmp_path):
    """As for a labeled size: chunks of an extraction of every row (`all.partial`) left beside its finished `all.pt`
    by a writer killed in between are removed by a read of that file once idle."""
    enc, test = encoder_file(), load_manifest("evtest")
    cache(tmp_path / "f").get(enc, test, None)
    (folder,) = (tmp_path / "f").glob("*/*")
    PartialExtraction(folder / "all.pt", features_mod.FORMAT).save(torch.zeros(16, 32), 0)  # as the killed writer's
    for p in (folder / "all.partial").iterdir():
        os.utime(p, (time.time() - 2 * features_mod.STALE_TMP_S,) * 2)
    assert cache(tmp_path / "f").get(enc, test, None).info["cached"] and not (folder / "all.partial").exists()


def test_a_chunk_that_records_no_time_is_read_back_with_none_known(tmp_path):
    """A chunk without a usable `seconds` (none recorded, or not a positive number) gives its rows all the same, its
    time as 0 s, rather than failing the extraction at every retry."""
    feats = torch.randn(12, 3)
    partial = PartialExtraction(tmp_path / "labeled12.pt", "fmt")
    partial.save(feats[:8], 0, 5.0)
    partial.save(feats[8:], 8, 9.0)
    for name, seconds in (("rows-0-8.pt", None), ("rows-8-12.pt", "9 s")):
        payload = torch.load(partial.folder / name, weights_only=True)
        torch.save({**payload, "seconds": seconds}, partial.folder / name)
    again = PartialExtraction(tmp_path / "labeled12.pt", "fmt")
    assert torch.equal(torch.cat(list(again.load(12))), feats) and again.seconds_before == 0.0
