"""study.atomic: whole files or none, with the permissions of a plainly written file."""
import os
import stat

import pytest

from study import atomic


def test_written_file_gets_the_umask_mode_not_mkstemps_private_one(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_UMASK", 0o022)  # a shared cluster's usual umask: group and others may read
    atomic.write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644


def test_the_umask_is_read_as_the_process_has_it():
    mask = os.umask(0o027)
    try:
        assert atomic._read_umask() == 0o027
    finally:
        os.umask(mask)


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "b.json"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A checkpoint is written by torch.save, which does not sync: after a node crash the new name could point at
    data never written, and the only checkpoint would be lost."""
    synced, real = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    with atomic.atomic_path(tmp_path / "checkpoint.pt") as tmp:
        tmp.write_bytes(b"weights")
        written = str(tmp)
    assert synced == [written, str(tmp_path)]
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"weights"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path, stop):
    """Ctrl-C (KeyboardInterrupt), or a stop signal's handler calling sys.exit (SystemExit), in the middle of a
    write: no `.<name>.*.tmp` is left beside the target (no later write removes it)."""
    with pytest.raises(stop):
        with atomic.atomic_path(tmp_path / "checkpoint.pt") as tmp:
            tmp.write_bytes(b"half")
            raise stop()
    assert list(tmp_path.iterdir()) == []
