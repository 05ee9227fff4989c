"""study.atomic: whole files or none, with the permissions of a plainly written file."""
import os
import stat

import pytest

from study import atomic


def test_written_file_gets_the_umask_mode_not_mkstemps_private_one(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "b.json"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
