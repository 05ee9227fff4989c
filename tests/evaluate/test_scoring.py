"""Test-set scoring a block of rows at a time: ranking.ranked / hit_rate, the probe's blocks, and the granularity
protocol's one pass over the test rows."""
from __future__ import annotations

import functools
import math

import pandas as pd
import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode

from largest_tensor import LargestFloat
from study.evaluate import granularity, knn, linear, ranking
from study.evaluate import run as run_mod
from study.evaluate.config import EvalConfig


def test_ranking_block_by_block_is_the_ranking_of_the_whole():
    """Each view's ranks over blocks of rows are those of all the rows at once, in the rows' order."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 12, generator=g)
    mapping = torch.arange(12) % 7  # a level of 7 values
    view = functools.partial(granularity.level_scores, mapping=mapping, num_values=7)
    whole = ranking.ranked([scores], 5, [None, view])
    blocks = ranking.ranked(scores.split(7), 5, [None, view])
    assert [tuple(r.shape) for r in blocks] == [(50, 5), (50, 5)]
    assert all(torch.equal(a, b) for a, b in zip(whole, blocks))
    assert torch.equal(blocks[0], scores.topk(5, dim=1).indices)
    assert torch.equal(blocks[1][:, 0], mapping[scores.argmax(1)])  # a level's best value holds the best class


def test_a_non_finite_score_makes_every_view_missing_and_stops_the_blocks():
    drawn = []

    def blocks():
        for i, b in enumerate((torch.zeros(3, 4), torch.full((3, 4), math.nan), torch.zeros(3, 4))):
            drawn.append(i)
            yield b

    assert ranking.ranked(blocks(), 2, [None, lambda s: s[:, :2]]) == [None, None]
    assert drawn == [0, 1]  # the block after the diverged one is never computed
    assert math.isnan(ranking.hit_rate(None, torch.tensor([0, 1]), 1))


def test_top_classes_ranks_each_block_and_stays_not_finite_after_a_non_finite_block():
    """TopClasses (fine-tuning's scoring): each block's best min(k, width) classes, best first; `finite` is False
    from the first block holding a NaN or an inf on, a later finite block included (the ranks are then no accuracy)."""
    top = ranking.TopClasses(2)
    assert top(torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])).tolist() == [[1, 2], [0, 2]] and top.finite
    assert top(torch.tensor([[0.4]])).tolist() == [[0]] and top.finite  # one class: k is cut to the width
    top(torch.tensor([[0.0, math.inf, 1.0]]))
    assert not top.finite
    top(torch.zeros(2, 3))
    assert not top.finite


def test_hit_rate_counts_a_label_among_the_first_k_ranked_classes():
    ranks = torch.tensor([[2, 0, 1], [1, 2, 0], [0, 1, 2]])
    y = torch.tensor([0, 0, 0])
    assert [ranking.hit_rate(ranks, y, k) for k in (1, 2, 3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert math.isnan(ranking.hit_rate(ranks[:0], y[:0], 1))  # no row: missing, not 0
    hits = torch.arange(100)  # 39 of 100 rows right: exactly 0.39 (a float32 mean gave 0.38999998569488525)
    assert ranking.hit_rate(torch.where(hits < 39, hits, -1)[:, None], hits, 1) == 0.39
    (empty,) = ranking.ranked([], 5)
    assert empty.shape == (0, 5) and empty.dtype == torch.long  # class indices, as of any row


def test_a_probe_scores_rows_a_chunk_at_a_time(monkeypatch):
    """Probe.blocks: the probe's scores of x (z-scored included), CHUNK_LOGITS values at most per block."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=g) * 3 + 1
    probe = linear.Probe(torch.randn(8, 4, generator=g), torch.randn(8, generator=g), linear.Scaler.fit(x))
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 7)  # 7 rows of 8 classes
    blocks = list(probe.blocks(x))
    assert [tuple(b.shape) for b in blocks] == [(7, 8)] * 4 + [(2, 8)]
    torch.testing.assert_close(torch.cat(blocks), probe(x))
    wide = linear.Probe(torch.randn(2, 8, generator=g), torch.randn(2, generator=g))  # features wider than classes
    assert [len(b) for b in wide.blocks(torch.randn(30, 8, generator=g))] == [7] * 4 + [2]


def test_granularity_scores_each_level_from_one_ranking_in_chunks(monkeypatch):
    """The paper's granularity protocol, its test rows scored a chunk at a time: each level's top-1 is the level of
    the best class and its top-5 that of the level's own scores, as computed from all the scores at once (by hand
    below), and no float tensor beyond a chunk is made while scoring."""
    g = torch.Generator().manual_seed(1)
    classes, test_rows = 30, 60
    y, y_test = torch.arange(classes).repeat(3), torch.randint(0, classes, (test_rows,), generator=g)
    centres = torch.randn(classes, 8, generator=g)
    x = centres[y] + torch.randn(len(y), 8, generator=g)
    xt = centres[y_test] + torch.randn(test_rows, 8, generator=g) * 1.5
    table = pd.DataFrame({"label": range(classes), "order": [f"o{c % 5}" for c in range(classes)],  # no top-5
                          "family": [f"f{c % 10}" for c in range(classes)],
                          "genus": [f"g{c % 20}" for c in range(classes)]})
    taxonomy = ["order", "family", "genus"]
    level_maps = {lv: granularity.level_map([table], granularity.level_path(taxonomy, lv), classes, "t")
                  for lv in taxonomy}
    cfg = EvalConfig.from_dict({"protocol": "granularity", "train_manifest": "a", "test_manifest": "b",
                                "labeled_sizes": [len(y)], "linear": {"weight_decays": [1e-3]}})
    probe, pinfo = linear.train_probe(x, y, classes, cfg.linear, cfg.seed)
    monkeypatch.setattr(linear, "train_probe", lambda *a, **k: (probe, dict(pinfo)))
    logits = probe(xt)

    monkeypatch.setattr(linear, "CHUNK_LOGITS", classes * 9)  # 9 test rows a chunk
    with LargestFloat() as largest:
        rows = run_mod._granularity(cfg, x, y, xt, y_test, len(y), level_maps, classes, {})
    assert 0 < largest.numel <= classes * 9 < logits.numel()
    got = {(r["metric"], r["level"]): r["value"] for r in rows}
    for level, (mapping, values) in level_maps.items():
        top1 = int((mapping[logits.argmax(1)] == mapping[y_test]).sum()) / test_rows
        assert got[("top1", level)] == top1, level
        if len(values) <= 5:
            assert ("top5", level) not in got, level
            continue
        level_top5 = granularity.level_scores(logits, mapping, len(values)).topk(5, dim=1).indices
        assert got[("top5", level)] == int((level_top5 == mapping[y_test][:, None]).any(1).sum()) / test_rows, level
    assert 0 < got[("top1", "genus")] < got[("top5", "genus")] < 1  # the checks above are not vacuous


def test_top5_is_scored_only_with_more_than_5_classes():
    """Of 5 classes a top-5 is 1 always: not reported; of 6 it is, each label counted where it ranks 1st to 5th."""
    y = torch.tensor([0, 1, 2])
    for classes, metrics in ((5, ["top1"]), (6, ["top1", "top5"])):
        rows = run_mod._scores_rows([torch.randn(3, classes)], y, 3, classes)
        assert [r["metric"] for r in rows] == metrics, classes
        assert all(r["labeled_size"] == 3 and r["level"] is None for r in rows)
    scores = torch.tensor([[9.0, 1, 2, 3, 4, 5], [5.0, 0, 1, 2, 3, 4], [5.0, 4, 3, 2, 1, 0]])  # labels 1st, 6th, 3rd
    blocks = scores.split(2)
    assert [r["value"] for r in run_mod._scores_rows(blocks, y, 3, 6)] == pytest.approx([1 / 3, 2 / 3])


def test_scoring_keeps_each_tensor_on_one_device_with_the_scores_on_a_gpu():
    """The scores (and a probe's held-out labels) on the GPU, the ranks on CPU (ranking.ranked), the level maps on
    CPU: each step compares tensors of one device. Checked with fake CUDA tensors (no GPU here), which raise on two
    devices as CUDA does: hit_rate and mapped_top1 get past every operation to the one read of a value (that a fake
    tensor cannot give), level_scores and knn.score_blocks give scores on the scores' device."""
    ranks, mapping = torch.tensor([[0, 1], [1, 0]]), torch.tensor([0, 0, 1])
    with FakeTensorMode(allow_non_fake_inputs=True):
        y = torch.zeros(2, dtype=torch.long, device="cuda")
        with pytest.raises(DataDependentOutputException):
            ranking.hit_rate(ranks, y, 1)
        with pytest.raises(DataDependentOutputException):
            granularity.mapped_top1(ranks, y, mapping)
        logits = torch.zeros(4, 3, device="cuda")
        assert granularity.level_scores(logits, mapping, 2).device.type == "cuda"
        (block,) = knn.score_blocks(logits, torch.tensor([0, 1, 2, 2]), logits, 3, k=2, temperature=0.1)
        assert block.device.type == "cuda"
