"""The views of a manifest's rows (ViewDataset), the per-sample rngs, the loader's workers and the resumable
sampler."""

import multiprocessing
import os
import signal
import sys

import numpy as np
import pytest
import torch

from study.errors import StudyError
from study.train.augment import build_augment
from study.train.data import (ResumableBatchSampler, ViewDataset, batch_generator, close_batches, collate_views,
                              default_workers, loader_context, make_loader, next_batch, sample_rng)
from study.train.images import ImageReader

from killable import run_script
from train_helpers import reader_manifest, write_images


def test_views_depend_only_on_seed_epoch_and_index(tmp_path):
    df = write_images(tmp_path, n=4)
    aug = build_augment({"preset": "simclr", "image_size": 16})
    ds = ViewDataset(ImageReader(reader_manifest(tmp_path, df)), df, aug, seed=3)
    a, la = ds[(0, 2)]
    b, _ = ds[(0, 2)]
    c, _ = ds[(1, 2)]
    assert la == int(df.iloc[2]["label"]) and len(a) == aug.num_views
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert sample_rng(3, 1, 2).random() == np.random.default_rng([3, 1, 2]).random()


def test_an_item_is_the_row_at_its_position_augmented_with_the_rng_of_seed_epoch_and_position(tmp_path):
    """Item (epoch, i) is row i of the rows given (not the row of rank i), its views drawn with
    sample_rng(seed, epoch, i), its label as given (any number of classes)."""
    df = write_images(tmp_path, n=4)
    rows = df.iloc[::-1].assign(label=[1000, 2, 1, 0])
    aug = build_augment({"preset": "simclr", "image_size": 16})
    reader = ImageReader(reader_manifest(tmp_path, df))
    for seed in (3, 4):
        views, label = ViewDataset(reader, rows, aug, seed)[(1, 0)]
        expect = aug.sample(reader.open(rows.iloc[0]), sample_rng(seed, 1, 0))
        assert all(torch.equal(a, b) for a, b in zip(views, expect)) and label == 1000


FORK_AFTER_OPENCV = """
import cv2, numpy as np, torch
from study.train.data import ResumableBatchSampler, make_loader


class Views(torch.utils.data.Dataset):
    def __getitem__(self, key):
        img = cv2.GaussianBlur(np.full((64, 64, 3), key[1], np.float32), (5, 5), 1)
        return [torch.from_numpy(img).permute(2, 0, 1)], key[1]

    def __len__(self):
        return 8

big = np.random.rand(2000, 2000, 3).astype(np.float32)
for _ in range(4):  # the hang came at about one fork in three
    cv2.cvtColor(big, cv2.COLOR_RGB2HSV)  # OpenCV's pool runs here
    views, labels = next(iter(make_loader(Views(), ResumableBatchSampler(8, 4, 0), 2, pin_memory=False)))
print("batch", len(labels), "opencv threads", cv2.getNumThreads())
"""


def test_loader_workers_forked_after_opencv_ran_threaded_in_this_process_start(tmp_path):
    """A worker forked while OpenCV's thread pool ran in the parent hung for ever in worker_init's
    cv2.setNumThreads(1); make_loader leaves the parent's OpenCV on one thread first."""
    script = tmp_path / "fork_after_opencv.py"
    script.write_text(FORK_AFTER_OPENCV)
    out = run_script(script, timeout=120, hung="the loader's workers hung after OpenCV had run threaded in the parent")
    assert "batch 4 opencv threads 1" in out, out


class _ParentPid:
    """An augmentation whose one view is the pid of the parent of the process it runs in."""

    def sample(self, img, rng):
        return [torch.tensor([os.getppid()])]


class _WorkerSignals:
    """An augmentation whose one view says whether SIGTERM and SIGUSR2 are ignored in the process it runs in."""

    def sample(self, img, rng):
        return [torch.tensor([signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGTERM, signal.SIGUSR2)])]


def test_loader_workers_ignore_slurms_signals_whatever_handlers_this_process_has(tmp_path):
    """Slurm signals every process of a job step: a worker leaves SIGTERM and SIGUSR2 to this process, also where
    this process handles them (submitit's SIGUSR2 handler requeues the job: a forked worker would inherit it)."""
    df = write_images(tmp_path, n=4)
    data = ViewDataset(ImageReader(reader_manifest(tmp_path, df)), df, _WorkerSignals(), seed=0)
    before = signal.signal(signal.SIGUSR2, lambda *_: None)
    try:
        (ignored,), _ = next(iter(make_loader(data, ResumableBatchSampler(4, 4, 0), 1, pin_memory=False)))
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert ignored.tolist() == [[True, True]] * 4


@pytest.fixture
def start_method():
    """`start_method(name)`: this process's multiprocessing start method is `name` until the test ends."""
    before = multiprocessing.get_start_method(allow_none=True)
    yield lambda name: multiprocessing.set_start_method(name, force=True)
    multiprocessing.set_start_method(before, force=True)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_loader_workers_start_under_spawn_and_forkserver_as_children_of_this_process(tmp_path, start_method, method):
    """macOS's start method (spawn, also set for CUDA) pickles what a worker runs (reader, manifest, augmentation,
    collate, worker_init). Python 3.14's on Linux (forkserver) made the workers children of the fork server, which
    dies of the SIGTERM Slurm sends every process of a job step, and they with it: the run failed ("DataLoader
    worker ... exited unexpectedly") instead of checkpointing and training on (`loader_context`)."""
    if method == "forkserver" and not sys.platform.startswith("linux"):
        pytest.skip("loader_context forks the workers on Linux only")
    start_method(method)
    df = write_images(tmp_path, n=8)
    data = ViewDataset(ImageReader(reader_manifest(tmp_path, df)), df, _ParentPid(), seed=0)
    (parents,), labels = next(iter(make_loader(data, ResumableBatchSampler(8, 4, 0), 1, pin_memory=False)))
    assert parents.flatten().tolist() == [os.getpid()] * 4 and len(labels) == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="loader_context forks the workers on Linux only")
def test_loader_workers_fork_where_the_unset_start_method_defaults_to_forkserver(start_method, monkeypatch):
    """Python 3.14 sets no start method and defaults to forkserver (the first of get_all_start_methods): the workers
    fork all the same; where the default is fork, or no worker runs, the loader is left as it is."""
    start_method(None)
    for first, fork in (("forkserver", True), ("fork", False)):
        monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: [first, "spawn"])
        got = loader_context(2)
        assert (got.get_start_method() if got else None) == ("fork" if fork else None) and loader_context(0) is None
    assert multiprocessing.get_start_method(allow_none=True) is None  # not fixed by asking


def test_sampler_is_a_per_epoch_permutation_and_resumes_mid_epoch():
    s = ResumableBatchSampler(n=10, global_batch=3, seed=5)
    assert s.steps_per_epoch == 3
    it = iter(s)
    batches = [next(it) for _ in range(7)]
    epoch0 = [i for b in batches[:3] for _, i in b]
    assert len(set(epoch0)) == 9 and all(e == 0 for b in batches[:3] for e, _ in b)
    assert [e for e, _ in batches[3]] == [1, 1, 1]
    assert batches[:3] != [[(0, i) for _, i in b] for b in batches[3:6]]  # another permutation
    resumed = iter(ResumableBatchSampler(n=10, global_batch=3, seed=5, start_step=4))
    assert [next(resumed) for _ in range(3)] == batches[4:7]
    assert ResumableBatchSampler(10, 3, 5).position(4) == (1, 1)
    # two ranks split each global batch
    r0 = next(iter(ResumableBatchSampler(12, 4, 5, rank=0, world=2)))
    r1 = next(iter(ResumableBatchSampler(12, 4, 5, rank=1, world=2)))
    full = ResumableBatchSampler(12, 4, 5).permutation(0)[:4].tolist()
    assert [i for _, i in r0 + r1] == full
    with pytest.raises(StudyError, match="batch_size 20"):
        ResumableBatchSampler(10, 20, 5)


@pytest.mark.parametrize("epochs, per_epoch, steps", [(0.07, 100, 7), (0.14, 50, 7), (0.071, 100, 8), (2, 3, 6)])
def test_fractional_epochs_round_up_without_float_error(epochs, per_epoch, steps):
    from study.train.data import total_steps
    assert total_steps(epochs, None, per_epoch * 8, 8) == steps  # 0.07 x 100 is 7.000000000000001 in floats
    assert total_steps(epochs, 5, per_epoch * 8, 8) == 5  # a step budget wins


def test_an_epoch_of_fewer_images_than_a_batch_is_no_step():
    """The remainder of an epoch is dropped: 5 images in batches of 8 make no step, whatever the epochs."""
    from study.train.data import steps_per_epoch, total_steps
    assert steps_per_epoch(5, 8) == 0 and steps_per_epoch(16, 8) == 2
    assert total_steps(100, None, 5, 8) == 0


def test_the_sampler_order_is_the_same_for_a_seed_and_another_for_another_seed():
    def first_epoch(seed):
        it = iter(ResumableBatchSampler(n=24, global_batch=8, seed=seed))
        return [i for _ in range(3) for _, i in next(it)]

    assert first_epoch(0) == first_epoch(0)
    assert first_epoch(0) != first_epoch(1)
    assert sorted(first_epoch(1)) == list(range(24))


def test_each_epoch_is_the_permutation_drawn_from_seed_and_epoch():
    """The order is part of every result: it is drawn as it always was, from (seed, epoch)."""
    it = iter(ResumableBatchSampler(n=6, global_batch=3, seed=4))
    for epoch in (0, 1):
        drawn = np.random.default_rng([4, epoch, 0x5EED]).permutation(6).tolist()
        assert [i for _ in range(2) for _, i in next(it)] == drawn


@pytest.mark.parametrize("start_step", [0, 2])
def test_two_ranks_split_every_global_batch_across_epochs(start_step):
    """Each rank takes its half of every global batch (not only the first), also from a mid-epoch resume."""
    full = iter(ResumableBatchSampler(12, 4, 5, start_step=start_step))
    r0 = iter(ResumableBatchSampler(12, 4, 5, start_step=start_step, rank=0, world=2))
    r1 = iter(ResumableBatchSampler(12, 4, 5, start_step=start_step, rank=1, world=2))
    for _ in range(5):  # 3 steps per epoch: into the next epoch
        assert next(r0) + next(r1) == next(full)


def test_a_batch_that_devices_cannot_share_equally_is_refused():
    with pytest.raises(StudyError, match="batch_size 6 is not divisible by the 4 devices"):
        ResumableBatchSampler(12, 6, 5, world=4)


def test_a_batch_of_the_whole_training_set_is_one_step_per_epoch():
    s = ResumableBatchSampler(n=8, global_batch=8, seed=0)
    it = iter(s)
    a, b = next(it), next(it)
    assert s.steps_per_epoch == 1
    assert sorted(i for _, i in a) == sorted(i for _, i in b) == list(range(8))
    assert ([e for e, _ in a], [e for e, _ in b]) == ([0] * 8, [1] * 8)


def test_batch_augmentation_draws_depend_on_seed_step_and_rank():
    cpu = torch.device("cpu")

    def draws(seed, step, rank=0):
        return torch.rand(8, generator=batch_generator(seed, step, cpu, rank)).tolist()

    assert draws(0, 1) == draws(0, 1) == draws(0, 1, rank=0)
    assert len({tuple(draws(*a)) for a in [(0, 1), (0, 2), (1, 1), (0, 1, 1)]}) == 4
    # drawn as they always were: rank 0 (and a single process) from (seed, step) alone
    seed = int(np.random.SeedSequence([0, 1]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    assert draws(0, 1) == torch.rand(8, generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("cpus, workers", [(1, 0), (4, 3), (64, 8)])
def test_default_workers_leave_a_core_to_the_main_process_and_stop_at_8(monkeypatch, cpus, workers):
    from study.train import data

    monkeypatch.setattr(data, "usable_cores", lambda: cpus)  # the affinity, capped by a cgroup quota (study.cores)
    assert default_workers() == workers


def test_a_resume_finds_its_epoch_and_batch_by_the_steps_per_epoch_not_the_batch_size():
    """20 images in batches of 3: 6 steps per epoch (2 images dropped), so step 7 is epoch 1, batch 1, and a run
    resumed there draws what the uninterrupted one drew from step 7 on, into the next epoch."""
    s = ResumableBatchSampler(n=20, global_batch=3, seed=2)
    assert s.steps_per_epoch == 6 and s.position(7) == (1, 1) and s.position(12) == (2, 0)
    it = iter(s)
    whole = [next(it) for _ in range(14)]
    resumed = iter(ResumableBatchSampler(n=20, global_batch=3, seed=2, start_step=7))
    assert [next(resumed) for _ in range(7)] == whole[7:]
    assert {e for b in whole[7:12] for e, _ in b} == {1} and {e for b in whole[12:] for e, _ in b} == {2}


def test_collate_stacks_each_view_of_every_item_in_order_with_its_label():
    """View v of the batch is view v of each item (never another view), in item order; labels as int64."""
    items = [(tuple(torch.full((3, 2, 2), 10 * i + v, dtype=torch.uint8) for v in range(2)), label)
             for i, label in enumerate([2, 0, 1])]
    views, labels = collate_views(items)
    assert len(views) == 2 and all(v.shape == (3, 3, 2, 2) and v.dtype == torch.uint8 for v in views)
    assert [[int(views[v][i, 0, 0, 0]) for i in range(3)] for v in range(2)] == [[0, 10, 20], [1, 11, 21]]
    assert labels.dtype == torch.long and labels.tolist() == [2, 0, 1]


class _Indices(torch.utils.data.Dataset):
    """Item `(epoch, i)` -> a single view holding i, label i."""

    def __getitem__(self, key):
        return (torch.tensor([key[1]]),), key[1]

    def __len__(self):
        return 8


def test_the_loader_never_draws_from_the_global_torch_generator():
    """The DataLoader draws a base seed at each iter(); make_loader gives it a private generator, so that starting
    (or restarting, on resume) the loader does not shift the global torch RNG a method or a checkpoint reads."""
    torch.manual_seed(0)
    before = torch.get_rng_state()
    views, labels = next(iter(make_loader(_Indices(), ResumableBatchSampler(8, 4, 0), 0, pin_memory=False)))
    assert torch.equal(torch.get_rng_state(), before)
    assert sorted(views[0].flatten().tolist()) == sorted(labels.tolist()) and len(labels) == 4


class _Unreadable(torch.utils.data.Dataset):
    """Every item fails as an unreadable image does in a loader worker."""

    def __getitem__(self, key):
        raise StudyError("cannot read image x.png (manifest m1): bad")

    def __len__(self):
        return 8


def test_a_workers_study_error_comes_back_with_its_own_message_and_closing_ends_the_workers():
    """torch re-raises a worker's error wrapped in its traceback: next_batch gives back the error's own message;
    close_batches ends the workers at once (they ignore SIGTERM: left to the iterator, exit would wait on them)."""
    before = set(multiprocessing.active_children())
    batches = iter(make_loader(_Unreadable(), ResumableBatchSampler(8, 4, 0), 1, pin_memory=False))
    try:
        with pytest.raises(StudyError) as e:
            next_batch(batches)
        assert str(e.value) == "cannot read image x.png (manifest m1): bad"
        assert set(multiprocessing.active_children()) - before  # the worker serves on after the error
    finally:
        close_batches(batches)
        left = set(multiprocessing.active_children()) - before
        for worker in left:  # they ignore SIGTERM: a worker left running would hang this process's exit
            worker.kill()
    assert not left
    close_batches(None)  # no loader made yet: nothing to end
