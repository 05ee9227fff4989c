"""The quickstart's preparation end to end at the tiny scale: real data -> PNG trees -> manifests -> a checked plan."""
from __future__ import annotations

from study.cli import main
from study.grids import plan_grid
from study.manifests import load_manifest


def test_tiny_quickstart_prepares_every_manifest_the_grid_needs(tmp_path, monkeypatch, capsys):
    manifests = tmp_path / "manifests"
    code = main(["quickstart", "--scale", "tiny", "--data", str(tmp_path / "data"), "--manifests", str(manifests)])
    assert code == 0
    out = capsys.readouterr().out
    assert "grid quickstart: 22 pretrain" in out

    monkeypatch.setenv("STUDY_MANIFESTS", str(manifests))
    plan = plan_grid("grids/quickstart.yaml")
    plan.check(manifests=True)  # raises if any manifest the grid names is missing
    fm = load_manifest("qs_fmnist_train")
    assert fm.levels == ["group", "class_name"] and fm.num_classes == 10
    assert set(fm.subset(40).path) <= set(fm.subset(100).path)  # nested
    pooled = load_manifest("qs_fmnist+mnist_train")
    assert len(pooled.all()) == 40 and pooled.num_classes == 20
    corrupted = load_manifest("qs_fmnist_train.downsample-factor2")
    assert corrupted.corruption is not None and corrupted.corruption.name == "downsample"

    # a rerun is a no-op: identical manifests are not rebuilt, the trees are reused
    before = {p.name: p.stat().st_mtime_ns for p in manifests.iterdir()}
    assert main(["quickstart", "--scale", "tiny", "--data", str(tmp_path / "data"), "--manifests", str(manifests)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in manifests.iterdir()} == before
