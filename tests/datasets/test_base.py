"""study.datasets.base: the checks every reader's index passes."""
import numpy as np
import pyarrow as pa
import pytest

from study.datasets.base import Index, check_index
from study.errors import StudyError


def test_a_label_equal_to_the_number_of_classes_is_out_of_range():
    index = Index(paths=pa.array(["x/a.png", "y/b.png"]), labels=np.array([0, 2]), class_names=["x", "y"])
    with pytest.raises(StudyError, match=r"toy: label 2 of 'y/b.png' is out of range 0..1"):
        check_index(index, "toy")
    index.labels = np.array([0, 1])
    check_index(index, "toy")
