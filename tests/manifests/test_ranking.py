"""Ranking: hash order with ties in row order, class-balanced round robin, and ranks pinned for a seed."""
import numpy as np
import pyarrow as pa

from study.manifests.ranking import balanced_order, rank_rows, uniform_order


def test_uniform_order_sorts_by_hash_and_breaks_ties_in_row_order():
    """Equal hashes keep their rows' (path) order, also in arrays large enough for numpy's unstable sort to reorder."""
    hashes = np.repeat(np.array([3, 1, 2], dtype=np.uint64), 400)
    assert uniform_order(hashes).tolist() == list(range(400, 800)) + list(range(800, 1200)) + list(range(400))


def test_balanced_order_takes_classes_in_turn_in_class_key_order_and_rows_by_hash_within_a_class():
    """Class order by class key (class 1, then 2, then 0 here), not by label; each turn takes a class's next row by
    hash; a class out of rows drops out of the turns."""
    labels = np.array([2, 0, 1, 0, 2, 0, 1])
    hashes = np.array([50, 30, 70, 10, 20, 40, 60], dtype=np.uint64)
    class_keys = np.array([30, 10, 20], dtype=np.uint64)
    assert balanced_order(hashes, labels, class_keys).tolist() == [6, 4, 3, 2, 0, 1, 5]


def test_ranks_of_a_seed_are_pinned_for_both_purposes():
    """The ranks (pretraining: by hash; labeled: class-balanced) of 12 rows at seed 3 are the same on every machine
    and every version: the row hashes are keyed by purpose and seed, the class order by its own key and the seed."""
    keys = pa.array([f"img{i:02d}" for i in range(12)])
    labels = np.array([i % 4 for i in range(12)])
    names = ["cat", "dog", "owl", "yak"]
    labeled = rank_rows(keys, labels, names, 3, True, "labeled")
    assert labeled.tolist() == [0, 5, 3, 6, 8, 9, 11, 2, 4, 1, 7, 10]
    assert sorted(labels[np.argsort(labeled)[:4]].tolist()) == [0, 1, 2, 3]  # any 4 first: one per class
    assert rank_rows(keys, labels, names, 3, False, "pretrain").tolist() == [5, 8, 11, 3, 4, 1, 6, 9, 2, 10, 7, 0]
