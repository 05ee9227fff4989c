import re

import pytest
from dataset_layouts import make_imagefolder

from study.datasets import read_dataset
from study.errors import StudyError


def test_scan_threads_not_a_count_is_named_and_a_count_lists_the_same_index(tmp_path, monkeypatch):
    make_imagefolder(tmp_path / "train", {"a": 3, "b": 2, "c": 4})
    one = read_dataset("imagefolder", tmp_path, "train")
    for value in ("auto", "2.5", "0", ""):
        monkeypatch.setenv("STUDY_SCAN_THREADS", value)
        message = re.escape(f"STUDY_SCAN_THREADS={value!r}: expected a whole number of threads, 1 or more")
        with pytest.raises(StudyError, match=message):
            read_dataset("imagefolder", tmp_path, "train")
    monkeypatch.setenv("STUDY_SCAN_THREADS", "3")
    three = read_dataset("imagefolder", tmp_path, "train")
    assert three.paths.to_pylist() == one.paths.to_pylist() and three.labels.tolist() == one.labels.tolist()
