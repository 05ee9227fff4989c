"""Ranking: hash order with ties in row order, class-balanced round robin, and ranks pinned for a seed."""
import numpy as np
import pyarrow as pa
import pytest

from study.manifests.ranking import balanced_order, rank_rows, uniform_order

# 12 rows of 4 classes, 3 each: the rows whose ranks the pinned tests below give
KEYS = pa.array([f"img{i:02d}" for i in range(12)])
LABELS = np.array([i % 4 for i in range(12)])
NAMES = ["cat", "dog", "owl", "yak"]


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
    labeled = rank_rows(KEYS, LABELS, NAMES, 3, True, "labeled")
    assert labeled.tolist() == [0, 5, 3, 6, 8, 9, 11, 2, 4, 1, 7, 10]
    assert sorted(LABELS[np.argsort(labeled)[:4]].tolist()) == [0, 1, 2, 3]  # any 4 first: one per class
    assert rank_rows(KEYS, LABELS, NAMES, 3, False, "pretrain").tolist() == [5, 8, 11, 3, 4, 1, 6, 9, 2, 10, 7, 0]


def test_balanced_pretraining_ranks_of_a_seed_are_pinned_with_their_own_class_order():
    """`--balanced` pretraining subsets take the classes in an order keyed by their purpose, not the labeled one's."""
    ranks = rank_rows(KEYS, LABELS, NAMES, 3, True, "pretrain")
    assert ranks.tolist() == [10, 4, 9, 7, 6, 0, 1, 11, 2, 8, 5, 3]


def test_a_class_takes_its_turn_by_its_name_not_by_its_label_number():
    """The same images and classes, numbered in another order (a dataset's own class order), rank the same."""
    renumber = np.array([2, 0, 3, 1])  # cat -> 2, dog -> 0, owl -> 3, yak -> 1
    renamed = [NAMES[int(np.flatnonzero(renumber == i)[0])] for i in range(4)]
    assert renamed == ["dog", "yak", "cat", "owl"]
    for purpose in ("labeled", "pretrain"):
        want = rank_rows(KEYS, LABELS, NAMES, 3, True, purpose)
        assert rank_rows(KEYS, renumber[LABELS], renamed, 3, True, purpose).tolist() == want.tolist(), purpose


def test_every_digit_and_the_sign_of_a_seed_count():
    """Seeds differing only in their last digit (a 21-digit seed) or in their sign give other subsets."""
    for a, b in ((10**20, 10**20 + 1), (3, -3)):
        for purpose, balanced in (("pretrain", False), ("labeled", True)):
            assert (rank_rows(KEYS, LABELS, NAMES, a, balanced, purpose).tolist()
                    != rank_rows(KEYS, LABELS, NAMES, b, balanced, purpose).tolist()), (a, b, purpose)


def test_a_seed_beyond_64_bits_is_refused_before_indexing(tmp_path):
    """The hash key holds 64 bytes: seeds of 64 bits fit it whole (the longest key, of the pretraining class order,
    takes 43 characters), a longer seed would share subsets with every seed of its first digits."""
    from study.errors import StudyError
    from study.manifests.build import BuildConfig, build_manifest

    assert max(len(f"study:{purpose}-classes:{-2**63}") for purpose in ("pretrain", "labeled")) == 43
    for seed in (2**63, -2**63 - 1):
        with pytest.raises(StudyError, match=rf"^--seed {seed}: a seed is a 64-bit integer"):
            build_manifest(BuildConfig("imagefolder", tmp_path / "no-such-folder", "train", "m", seed=seed))
