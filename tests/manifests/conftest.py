import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import study.cli


def write_tree(root: Path, classes: dict[str, int], order_seed: int | None = None) -> Path:
    """`root/train/<class>/<i>.png`, real PNG files, created in a shuffled order when `order_seed` is given."""
    files = [(c, i) for c, n in classes.items() for i in range(n)]
    if order_seed is not None:
        random.Random(order_seed).shuffle(files)
    for c, i in files:
        p = root / "train" / c / f"{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(p)
    return root


CLASSES = {"cat": 9, "dog": 6, "eel": 4, "fox": 5}  # 24 images, imbalanced


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
    def run(name="toy", *extra):
        code, out, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                             "--name", name, *extra)
        assert code == 0, err
        return out

    return run
