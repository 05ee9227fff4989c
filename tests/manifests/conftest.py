from pathlib import Path

import pytest
from manifest_trees import CLASSES, write_tree

import study.cli


@pytest.fixture
def manifests(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "manifests"
    monkeypatch.setenv("STUDY_MANIFESTS", str(folder))
    return folder


@pytest.fixture
def tree(tmp_path) -> Path:
    return write_tree(tmp_path / "data", CLASSES)


@pytest.fixture
def cli(monkeypatch, capsys, manifests):
    """Run `study ...` in-process (only the manifest commands); returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(study.cli, "COMMAND_MODULES", ("study.manifests.cli",))

    def run(*argv):
        capsys.readouterr()
        code = study.cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def build(cli, tree):
    """`study manifest build` of an image-folder tree (`root`, else the `tree` fixture's) as manifest `name`."""
    def run(name="toy", *extra, root=None):
        code, out, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", root or tree, "--split",
                             "train", "--name", name, *extra)
        assert code == 0, err
        return out

    return run


@pytest.fixture
def pool_sources(build, tmp_path):
    """Manifests `a` (the `tree` fixture's 24 images of 4 classes) and `b` (12 images of classes x and y, in a folder
    of their own): two sources to pool."""
    build("a", "--seed", "0")
    build("b", "--seed", "1", root=write_tree(tmp_path / "other", {"x": 5, "y": 7}))
