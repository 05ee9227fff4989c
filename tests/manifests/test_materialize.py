"""study.manifests.materialize: where each row's PNG is written, never outside the output folder."""
from pathlib import Path

import pytest

from study.errors import StudyError
from study.manifests.materialize import out_path


def test_rows_are_written_below_the_output_folder(tmp_path):
    assert out_path(tmp_path, "cat/x.jpg", None, False) == tmp_path / "cat" / "x.jpg.png"
    assert out_path(tmp_path, "a b/é\nx.jpg", "src", False) == tmp_path / "src" / "a b" / "é\nx.jpg.png"
    assert out_path(tmp_path, "train-images#7", None, True) == tmp_path / "train-images" / "7.png"


@pytest.mark.parametrize("rel, source", [("/tmp/evil", None), ("../../evil", None), ("cat/../../evil", None),
                                         ("cat//x", None), ("cat/./x", None), ("cat/x", "../up"), ("cat/x", "/abs")])
def test_a_row_leading_out_of_the_output_folder_is_refused(tmp_path, rel, source):
    """A manifest made elsewhere (its hash recomputed) holding `/home/u/.x` or `../x`: `out / rel` was that path,
    and materialize wrote a PNG there."""
    with pytest.raises(StudyError, match="not a relative path below the root"):
        out_path(tmp_path / "png", rel, source, False)
    assert list(Path(tmp_path).iterdir()) == []
