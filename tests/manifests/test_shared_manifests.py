"""A lab's shared manifests folder, read-only to its users (manifests/README.md, "A shared, read-only manifests
folder"): a new manifest there is refused before any work with the way out, a folder of one's own linking the
shared ones, where it is made; an existing one rebuilt is the no-op it is elsewhere; nothing is written there."""
import errno
import os
import re
import subprocess
from pathlib import Path

from read_only import read_only


def _files(folder):
    return sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())


def test_a_new_manifest_in_a_read_only_folder_is_refused_before_any_work_with_the_way_out(
        pool_sources, build, cli, manifests, tmp_path, monkeypatch, request):
    read_only(manifests, monkeypatch, request)
    before = _files(manifests)
    corrupt = ("manifest", "corrupt", "a.jpeg-quality30", "--base", "a", "--corruption", "jpeg:quality=30")
    for name, argv in (("a.jpeg-quality30", corrupt),
                       ("ab", ("manifest", "pool", "ab", "--from", "a:10", "--from", "b:10")),
                       ("c", ("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "data", "--split",
                              "train", "--name", "c"))):
        code, _, err = cli(*argv)
        assert code == 2 and f"cannot write manifest {name}; {manifests} is read-only to you" in err, err
        assert "[manifest] indexing" not in err  # a build says so before hours of indexing
    build("a", "--seed", "0")  # the same content again: a no-op, as where it can be written
    assert _files(manifests) == before
    # the way out the refusal gives, as a user types it: their own folder, linking the shared manifests
    command = re.search(r"`(mkdir -p DIR && ln -s [^`]+)`, then `export STUDY_MANIFESTS=DIR`", err).group(1)
    own = tmp_path / "own"
    subprocess.run(["sh", "-c", command.replace("DIR", str(own))], check=True)
    monkeypatch.setenv("STUDY_MANIFESTS", str(own))
    code, out, err = cli(*corrupt)
    assert code == 0 and "written" in out, err
    code, out, err = cli("manifest", "verify", "a.jpeg-quality30", "--files")  # its base found, through a link
    assert code == 0 and "OK" in out and "warning" not in err, err
    assert not os.path.islink(own / "a.jpeg-quality30.json") and os.path.islink(own / "a.json")
    assert _files(manifests) == before


def test_materialize_into_a_read_only_folder_says_it_cannot_make_its_out_folder(build, cli, tmp_path, monkeypatch):
    """`--out` under the lab's read-only data: the folder itself cannot be made, which the refusal says (it named
    the stamp file it would have written in it)."""
    build("a")
    shared, real_mkdir = tmp_path / "shared", Path.mkdir
    shared.mkdir()

    def refused(self, *args, **kwargs):  # as a folder read-only to a user (root's mkdir is not stopped by modes)
        if self.parent == shared:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused)
    code, _, err = cli("manifest", "materialize", "a", "--out", shared / "pngs")
    assert code == 2 and f"--out {shared / 'pngs'}: cannot make the folder: Permission denied" in err, err
