"""The pre-run check (`Plan.check`, study.grids.checks), through `study plan` as a user meets it: each problem
found before anything runs, named at its line, and the warnings and notes."""
import json
import shlex
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import study.cli
from study.errors import StudyError
from study.grids import plan_grid
from study.grids.checks.advice import unequal_pool_warnings, unprobed_concat_warnings
from study.grids.checks.files import encoder_file_mismatches, files_not_here
from study.manifests.store import SCHEMA_VERSION, load_meta
from study.train.methods import METHODS
from study.train.methods.simclr import SimCLR
from tests.grids.conftest import REPO, line_of, run_plan_cli
from tests.image_trees import write_quadrant_tree


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_check_passes_when_manifests_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    plan = plan_grid("grids/granularity.yaml")
    assert list(plan.manifests()) == ["inat21_train", "inat21_val"]
    for name in plan.manifests():
        _fake_manifest(tmp_path, name, 2_700_000 if name.endswith("train") else 100_000, ["a", "b"],
                       levels=["kingdom", "phylum", "class", "order", "family", "genus", "species"])
    plan.check()  # study.manifests.manifest_exists (or the fallback) finds both files
    code, out, _ = run_plan_cli(["grids/granularity.yaml"], capsys)
    assert code == 0 and "granularity 4" in out


def _fake_manifest(folder, name, images, classes, levels=(), columns=(), **meta):
    """The files of a manifest as `study plan` reads them: the metadata, and the table's columns (`columns`: beyond
    its levels)."""
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in ("path", "class_name", *levels, *columns)}),
                   folder / f"{name}.parquet")
    (folder / f"{name}.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "num_images": images,
                                                     "class_names": classes, "levels": list(levels), **meta}))


def test_check_refuses_what_would_fail_only_after_pretraining(tmp_path, monkeypatch, capsys):
    """Sizes beyond a manifest and train/test manifests of other classes are found at plan time, not in a job."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "inat21_train", 200_000, ["a", "b", "c"])
    _fake_manifest(tmp_path, "inat21_val", 100_000, ["a", "b"])
    code, _, err = run_plan_cli(["grids/granularity.yaml"], capsys)
    assert code == 2
    assert ("pretraining size 1000000 (1M): manifest inat21_train has 200000 images (a size of at most 200k, or a "
            "manifest built from more images)") in err
    # val's classes are a subset of train's: the flag can align
    assert (f"have different classes (3 vs 2; in one only: c): delete {tmp_path}/inat21_val.parquet and "
            f"{tmp_path}/inat21_val.json and rebuild it with --classes-from inat21_train") in err
    assert err.count("different classes") == 1  # one line per problem, not one per job
    assert "--drop-other-classes" not in err


def test_a_test_manifest_of_other_classes_is_one_problem_at_its_dataset_line(tmp_path, monkeypatch, capsys):
    """A dataset's test manifest of other classes is one problem, at the dataset's `datasets:` line, however many
    evaluation entries score the dataset; one that shares no class with the labeled set (another dataset's test split,
    named by mistake) is told so, not to be rebuilt with --drop-other-classes, which would leave none of its images."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 100, ["a", "b"])
    _fake_manifest(tmp_path, "alpha_val", 20, ["a"])
    _fake_manifest(tmp_path, "beta_val", 20, ["/x/y", "z"])
    g = tmp_path / "g.yaml"
    g.write_text("name: t\ndatasets:\n  alpha: {train: alpha_train, test: alpha_val}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1, batch_size: 8, optim: {warmup_epochs: 0}}\n"
                 "axes: {method: [simclr], dataset: [alpha], size: [50, 100]}\nstages:\n  evaluate:\n"
                 "    - {protocol: linear, where: {size: [50]}, eval_datasets: same, labeled_sizes: [10]}\n"
                 "    - {protocol: linear, where: {size: [100]}, eval_datasets: same, labeled_sizes: [20]}\n")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and (f"{g}:3: manifests alpha_train and alpha_val (the labeled and test sets of an evaluation) "
                          f"have different classes (2 vs 1; in one only: b): delete {tmp_path}/alpha_val.parquet and "
                          f"{tmp_path}/alpha_val.json and rebuild it with --classes-from alpha_train") in err, err
    assert err.count("different classes") == 1, err
    g.write_text(g.read_text().replace("test: alpha_val", "test: beta_val"))
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and (f"{g}:3: manifests alpha_train and beta_val (the labeled and test sets of an evaluation) "
                          "have different classes, not one in common (e.g. a and /x/y): beta_val is another dataset's "
                          "test split? Make datasets.alpha.test this dataset's own, built with --classes-from "
                          "alpha_train") in err, err
    assert err.count("different classes") == 1 and "--drop-other-classes" not in err, err


def test_a_test_manifest_with_a_class_the_labeled_set_lacks_is_told_to_drop_its_images(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "inat21_train", 2_700_000, ["a", "b"])
    _fake_manifest(tmp_path, "inat21_val", 100_000, ["a", "b", "z"])
    code, _, err = run_plan_cli(["grids/granularity.yaml"], capsys)
    assert code == 2 and (f"in one only: z): delete {tmp_path}/inat21_val.parquet and {tmp_path}/inat21_val.json "
                          "and rebuild it with --classes-from inat21_train --drop-other-classes (its images of "
                          "classes") in err


def test_a_test_manifest_labelled_or_read_otherwise_than_its_labeled_set_is_refused(tmp_path, monkeypatch, capsys):
    """GLC20's classes are named by code whatever the label rule: equal class names, yet other labels (and other
    channels: a probe trained on NIR, scored on RGB)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "inat21_train", 2_700_000, ["a", "b"], label_rule="landcover_mode", channels=[3, 1, 2])
    _fake_manifest(tmp_path, "inat21_val", 100_000, ["a", "b"], label_rule="landcover_center", channels=[0, 1, 2])
    code, _, err = run_plan_cli(["grids/granularity.yaml"], capsys)
    assert code == 2
    assert ("manifests inat21_train and inat21_val (the labeled and test sets of an evaluation) are read with "
            "--label-rule landcover_mode and landcover_center") in err
    assert "are read with --channels 3,1,2 and 0,1,2" in err and "rebuild it with --channels 3,1,2" in err


def test_check_refuses_a_batch_larger_than_the_pretraining_images(tmp_path, monkeypatch, capsys, write_grid):
    """Such a job would run no step (with an epoch budget it used to write a random encoder as a finished run)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 10_000, ["x", "y"])
    _fake_manifest(tmp_path, "alpha_val", 1_000, ["x", "y"])
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain:
        backbone: resnet18
        epochs: 1
        batch_size: 4096
    axes: {method: [simclr, random], dataset: [alpha], size: [3000, 4096, 10000]}
    stages:
      pretrain: {}
    """, base=False)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2
    line = f"{g}:9"  # the `batch_size` key under defaults.pretrain (the text opens with a blank line)
    assert f"{line}: pretraining batch_size 4096 is larger than the 3000 images of alpha_train at size 3k" in err
    assert err.count("batch_size 4096 is larger") == 1  # not at 4096 (one step) nor 10k; `random` trains nothing


def _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, hints: str, name: str = "g.yaml"):
    """Manifests alpha_train (400 images of 3 classes) and alpha_val (40), and a grid pretraining SimCLR on alpha
    and probing it, its dataset entry given the cost `hints` (e.g. ", train_images: 400")."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 400, ["x", "y", "z"])
    _fake_manifest(tmp_path, "alpha_val", 40, ["x", "y", "z"])
    return write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val{hints}}}
    defaults:
      pretrain: {{backbone: resnet18, steps: 2, batch_size: 16, optim: {{warmup_epochs: 0}}}}
    axes: {{method: [simclr], dataset: [alpha], size: [400]}}
    stages:
      pretrain: {{}}
      evaluate:
        - {{protocol: linear, labeled_sizes: [40]}}
    """, name=name, base=False)


def test_plan_notes_cost_hints_that_its_manifests_contradict(tmp_path, monkeypatch, capsys, write_grid):
    """A paper grid copied to a small dataset keeps iNat21's image and class counts, which feed only the estimate:
    hours per job for jobs of seconds, said nowhere. Once the manifests are read, each hint that is not theirs is
    noted under the estimate (the plan still passes: the hints are the estimate's, not the jobs')."""
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, ", train_images: 2686843, test_images: 100000, "
                           "classes: 10000")
    code, out, _ = run_plan_cli([str(g)], capsys)
    assert code == 0
    assert "note: datasets.alpha.train_images is 2686843, but manifest alpha_train has 400 images" in out
    assert "note: datasets.alpha.test_images is 100000, but manifest alpha_val has 40 images" in out
    assert "note: datasets.alpha.classes is 10000, but manifest alpha_train has 3 classes" in out
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, ", train_images: 400, test_images: 40, classes: 3",
                           name="ok.yaml")
    code, out, _ = run_plan_cli([str(g)], capsys)
    assert code == 0 and "but manifest" not in out
    code, out, _ = run_plan_cli([str(g), "--format", "json"], capsys)
    assert code == 0 and not any("but manifest" in n for n in json.loads(out)["estimate"]["notes"])


def test_the_estimate_counts_from_the_manifests_what_the_grid_leaves_out(tmp_path, monkeypatch, capsys, write_grid):
    """A grid without train_images, test_images or classes: with its manifests there, the estimate counts theirs
    (400 train images, 40 test, 3 classes) with a note, not profile defaults (50,000 test images per evaluation) and
    a note asking for numbers the manifests hold; without the check (--no-check) it counts the defaults; a count the
    grid gives stays the grid's."""
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, "")
    code, out, _ = run_plan_cli([str(g), "--format", "json"], capsys)
    checked = json.loads(out)["estimate"]
    code_unchecked, out, _ = run_plan_cli([str(g), "--no-check", "--format", "json"], capsys)
    unchecked = json.loads(out)["estimate"]
    assert code == code_unchecked == 0
    assert ("datasets.alpha: train_images 400, test_images 40, classes 3 counted from its manifests (the grid gives "
            "none)") in checked["notes"] and not any("without datasets.alpha" in n for n in checked["notes"])
    assert any("without datasets.alpha.test_images" in n for n in unchecked["notes"])
    assert checked["feature_cache_gb"] < unchecked["feature_cache_gb"], (checked, unchecked)
    assert checked["per_stage"]["evaluate"]["job_hours"] < unchecked["per_stage"]["evaluate"]["job_hours"]
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, ", test_images: 40", name="half.yaml")
    code, out, _ = run_plan_cli([str(g), "--format", "json"], capsys)
    assert ("datasets.alpha: train_images 400, classes 3 counted from its manifests (the grid gives none)"
            in json.loads(out)["estimate"]["notes"]), out


def test_counts_read_from_manifests_are_noted_only_for_the_datasets_of_the_jobs_where_selects(
        tmp_path, monkeypatch, capsys, write_grid):
    """--where dataset=alpha: the estimate's note names alpha's counts, not beta's, whose jobs it leaves out."""
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, "")
    for name in ("beta_train", "beta_val"):
        _fake_manifest(tmp_path, name, 40, ["x", "y", "z"])
    g.write_text(g.read_text().replace("alpha: {train: alpha_train, test: alpha_val}",
                                       "alpha: {train: alpha_train, test: alpha_val}\n  beta: {train: beta_train, "
                                       "test: beta_val}").replace("dataset: [alpha], size: [400]",
                                                                  "dataset: [alpha, beta], size: [40]"))
    notes = {}
    for where in ([], ["--where", "dataset=alpha"]):
        code, out, err = run_plan_cli([str(g), "--format", "json", *where], capsys)
        assert code == 0, err
        notes[bool(where)] = [n for n in json.loads(out)["estimate"]["notes"] if "counted from its manifests" in n]
    assert [n.split(":")[0] for n in notes[False]] == ["datasets.alpha", "datasets.beta"], notes
    assert [n.split(":")[0] for n in notes[True]] == ["datasets.alpha"], notes


def test_an_evaluation_at_another_image_size_than_its_pretraining_is_a_warning(write_grid, capsys):
    """An evaluation's image_size defaults to 224 whatever the pretraining's: a small-image grid that leaves it
    upsamples every image (many times the cost) and scores other features. The plan says so, once per entry, at the
    line to change; an entry at the pretraining's size (or augment.image_size) is not named."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta], size: [1k]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [100]}
        - {protocol: knn, labeled_sizes: [100], params: {image_size: 32}}
        - {protocol: knn, labeled_sizes: [50], params: {augment: {image_size: 32}}}
    """, pretrain={"image_size": 32})
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "protocol: linear" in t)
    code, _, err = run_plan_cli([str(g), "--no-check"], capsys)
    assert code == 0 and err.count("study: warning: ") == 1, err
    assert (f"study: warning: {g}:{line}: 2 evaluation job(s) score at image_size 224 encoders pretrained at 32 px "
            "(e.g. job ") in err, err
    assert "image_size (defaults.evaluate, or the entry's params) to 32 unless that is meant" in err


def test_encoders_that_do_not_train_get_no_image_size_warning_and_a_missing_encoder_file_is_named(
        write_grid, capsys, tmp_path):
    """random and pretrained jobs train at no image size: an evaluation of theirs at another is no mistake. The file
    `pretrained.encoder_file` names is said where it is not here, at the line of `pretrained`."""
    (tmp_path / "enc.pt").write_bytes(b"")
    g = write_grid("""
    axes: {method: [random, pretrained], dataset: [alpha], size: [1k]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [100]}
    """, pretrain={"image_size": 32, "pretrained": {"encoder_file": str(tmp_path / "enc.pt")}})
    code, _, err = run_plan_cli([str(g), "--no-check"], capsys)
    assert code == 0 and "warning" not in err, err
    assert files_not_here(plan_grid(g)) == []
    (tmp_path / "enc.pt").unlink()
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "pretrained:" in t)
    warnings = files_not_here(plan_grid(g))
    assert warnings == [f"{g}:{line}: defaults.pretrain.pretrained.encoder_file: {tmp_path / 'enc.pt'} is not a file "
                        "here (relative paths are read from the folder the jobs start in: the one `study submit` is "
                        "run from); every pretraining job that reads it would stop on it"], warnings


@dataclass(frozen=True)
class TableSettings:
    table: str = ""


class MethodWithAFile(SimCLR):
    """A method of a contributor's, reading a file its setting `table` names in each job."""

    settings = TableSettings
    file_settings = {"table": "table"}


def test_a_file_a_methods_setting_names_is_said_where_not_here(write_grid, tmp_path):
    """Each method's `file_settings` are checked as `pretrained.encoder_file` is, for a method the plan runs only: a
    new method's file is said without an edit of the checks."""
    METHODS.register("with_table")(MethodWithAFile)
    try:
        g = write_grid("""
        axes: {method: [with_table], dataset: [alpha], size: [1k]}
        stages: {}
        """, pretrain={"with_table": {"table": str(tmp_path / "t.csv")}})
        line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "with_table:" in t)
        assert files_not_here(plan_grid(g)) == [
            f"{g}:{line}: defaults.pretrain.with_table.table: {tmp_path / 't.csv'} is not a file here (relative paths "
            "are read from the folder the jobs start in: the one `study submit` is run from); every pretraining job "
            "that reads it would stop on it"]
        (tmp_path / "t.csv").write_text("x\n")
        assert files_not_here(plan_grid(g)) == []
    finally:
        METHODS.unregister("with_table")


def test_an_encoder_file_of_another_backbone_or_width_than_its_jobs_is_a_problem_at_plan_time(
        write_grid, capsys, tmp_path):
    """`pretrained.encoder_file` and `init_encoder` hold one architecture: a job of another backbone or width would
    stop on the file once queued; the plan names the file, what it holds, and what the jobs ask, at its line."""
    import torch

    from study.train.backbones import build_backbone, encoder_payload

    torch.save(encoder_payload(build_backbone("resnet18", 8)), tmp_path / "enc.pt")
    body = """
    axes: {method: [simclr, pretrained], dataset: [alpha], size: [1k]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [100]}
    """
    g = write_grid(body, pretrain={"width": 8, "pretrained": {"encoder_file": str(tmp_path / "enc.pt")}})
    assert encoder_file_mismatches(plan_grid(g)) == []  # simclr does not read it
    g = write_grid(body, pretrain={"width": 16, "pretrained": {"encoder_file": str(tmp_path / "enc.pt")}})
    line = line_of(g, "pretrained:")
    want = (f"{g}:{line}: defaults.pretrain.pretrained.encoder_file: {tmp_path / 'enc.pt'} holds resnet18 (width 8), "
            "the jobs that read it ask for resnet18 (width 16): import the checkpoint with that --backbone and "
            "--width, or give those jobs the file's (`backbone` axis, defaults.pretrain.width)")
    assert encoder_file_mismatches(plan_grid(g)) == [want]
    code, _, err = run_plan_cli([str(g)], capsys)  # among the other problems (no manifests here)
    assert code == 2 and want in err, err
    g = write_grid(body.replace("simclr, pretrained", "simclr"),
                   pretrain={"backbone": "resnet18_small", "width": 8, "init_encoder": str(tmp_path / "enc.pt")})
    assert encoder_file_mismatches(plan_grid(g)) == [
        f"{g}:{line_of(g, 'init_encoder')}: defaults.pretrain.init_encoder: {tmp_path / 'enc.pt'} holds resnet18 "
        "(width 8), the jobs that read it ask for resnet18_small (width 8): import the checkpoint with that "
        "--backbone and --width, or give those jobs the file's (`backbone` axis, defaults.pretrain.width)"]
    (tmp_path / "enc.pt").write_bytes(b"")  # no encoder file: the job names it
    assert encoder_file_mismatches(plan_grid(g)) == []


def test_a_method_that_trains_nothing_at_several_sizes_is_a_warning(write_grid, capsys, tmp_path):
    """random and pretrained see no pretraining image: at two sizes each is the same encoder scored twice (and drawn
    as two lines of the same values, labelled with sizes it never trained at). The plan says so once per method,
    at the method's line, with the exclude rule that keeps one size; SimCLR at two sizes, and each at one, are not
    named."""
    (tmp_path / "enc.pt").write_bytes(b"")
    g = write_grid("""
    axes: {method: [simclr, random, pretrained], dataset: [alpha, beta], size: [1k, 2k]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [100], params: {image_size: 32}}
    """, pretrain={"image_size": 32, "pretrained": {"encoder_file": str(tmp_path / "enc.pt")}})
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "method: [simclr, random" in t)
    code, _, err = run_plan_cli([str(g), "--no-check"], capsys)
    warnings = [w for w in err.splitlines() if w.startswith("study: warning: ")]
    assert code == 0 and len(warnings) == 2, err
    assert warnings[0].startswith(f"study: warning: {g}:{line}: method random trains nothing, yet its pretraining "
                                  "jobs take 2 sizes (1k, 2k) (e.g. job "), warnings
    assert warnings[1].endswith("keep one size for it (`exclude: [{method: pretrained, size: [2k]}]`), unless that "
                                "is meant"), warnings
    g.write_text(g.read_text().replace("stages:", "exclude: [{method: [random, pretrained], size: [2k]}]\nstages:"))
    code, _, err = run_plan_cli([str(g), "--no-check"], capsys)
    assert code == 0 and "warning" not in err, err


def test_a_profile_cost_entry_for_an_unknown_method_or_backbone_is_named_at_its_line(tmp_path, write_grid):
    """A typo there used to leave the estimate as it was, in silence."""
    p = tmp_path / "p.yaml"
    p.write_text("name: mine\ncost:\n  throughput:\n    resnet_50: {pretrain: 70}\n  method_factor:\n"
                 "    simclrr: 3.0\n")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    with pytest.raises(StudyError) as e:
        plan_grid(g, p).check(manifests=False)
    msg = str(e.value)
    assert f"{p}:4: cost.throughput: unknown backbone 'resnet_50' (did you mean 'resnet50'?)" in msg
    assert f"{p}:6: cost.method_factor: unknown method 'simclrr' (did you mean 'simclr'?)" in msg


def test_a_lone_profile_problem_is_named_at_the_profiles_line_only(tmp_path, write_grid):
    """One problem is prefixed with the grid file unless it names its own file: a profile's is not the grid's."""
    p = tmp_path / "p.yaml"
    p.write_text("name: mine\ncost:\n  method_factor:\n    simclrr: 3.0\n")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    with pytest.raises(StudyError) as e:
        plan_grid(g, p).check(manifests=False)
    assert str(e.value).startswith(f"{p}:4: cost.method_factor: unknown method 'simclrr'"), str(e.value)


def test_a_warmup_refused_for_one_method_of_the_axis_names_that_method(tmp_path, monkeypatch, capsys, write_grid):
    """Each method pretrains with its own recipe where the grid sets no `optim` value: SimCLR's 10 warmup epochs fill
    a short run, MoCo's none do not. The refusal named neither, at the axis line both share: a user who set no
    warmup could not tell which method's it was."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 400, ["x", "y"])
    _fake_manifest(tmp_path, "alpha_val", 100, ["x", "y"])
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, steps: 4, batch_size: 16}
    axes: {method: [simclr, moco], dataset: [alpha], size: [200]}
    stages: {}
    """, base=False)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and err.count("warmup steps") == 1, err
    assert "pretrain.optim.warmup_epochs 10 x 12 steps per epoch" in err and "(method simclr, pretraining size 200)" \
        in err, err


def test_check_refuses_a_warmup_that_fills_a_run_before_anything_trains(tmp_path, monkeypatch, capsys, write_grid):
    """A pretraining or fine-tuning run whose warmup takes all of its steps is refused when it starts training; the
    plan says so first (a scratch run's 5 warmup epochs fill 80 steps at 30k labels: the job would have failed, its
    pretraining dependency done; at 3k labels 80 steps are 6.8 epochs and the run is fine)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 40_000, ["x", "y"])
    _fake_manifest(tmp_path, "alpha_val", 1_000, ["x", "y"])
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, steps: 10, batch_size: 1000, optim: {warmup_epochs: 1}}
    axes: {method: [simclr], dataset: [alpha], size: [5000, 20000]}
    stages:
      evaluate:
        - protocol: scratch
          where: {size: [5000]}
          labeled_sizes: [3000, 30000]
          params:
            finetune: {steps: 80}
    """, base=False)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2
    text = g.read_text().splitlines()
    size_line = next(i for i, t in enumerate(text, 1) if "size: [5000, 20000]" in t)
    ft_line = next(i for i, t in enumerate(text, 1) if "finetune: {steps: 80}" in t)
    assert (f"{g}:{size_line}: pretrain.optim.warmup_epochs 1 x 20 steps per epoch comes to 20 warmup steps of the "
            "run's 10 (steps 10): the learning rate would never reach its peak nor decay") in err
    # which job: two sizes may share the axis's line, and two methods (each its own recipe's warmup)
    assert "train for more steps (method simclr, pretraining size 20k)" in err
    assert err.count("warmup steps") == 2  # not at 5k images (5 steps per epoch)
    assert (f"{g}:{ft_line}: evaluate.finetune.optim.warmup_epochs 5 x 117 steps per epoch comes to 585 warmup steps "
            "of the run's 80 (steps 80)") in err and "(labeled size 30k)" in err


def test_a_schedule_a_setting_does_not_fit_is_a_plan_warning(tmp_path, monkeypatch, capsys, write_grid):
    """What a run's log would warn of when it starts, said by `study plan` (the manifests there), once for the jobs it
    concerns at the line of the setting: MoCo's queue larger than the keys the run enqueues (the paper's 65536 in a
    short run keep their random start as most negatives); a warmup of more than half the run; none where they fit."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 1_000, ["x", "y"])  # 31 steps per epoch at batch 32
    grid = """
    name: t
    datasets:
      alpha: {{train: alpha_train}}
    defaults:
      pretrain: {{backbone: resnet18, steps: 20, batch_size: 32, optim: {{warmup_epochs: {warmup}}}{moco}}}
    axes: {{method: [simclr, moco], dataset: [alpha], seed: [0, 1]}}
    stages: {{}}
    """

    def warnings(warmup: float, moco: str, at: str) -> list[str]:
        """The schedule warnings, each less its `study: warning: <grid>:<line of at>: `."""
        g = write_grid(grid.format(warmup=warmup, moco=moco), base=False)
        code, _, err = run_plan_cli([str(g)], capsys)
        assert code == 0, err
        return [line.replace(f"study: warning: {g}:{line_of(g, at)}: ", "") for line in err.splitlines()
                if "pretraining job(s)" in line]

    [queue] = warnings(0.2, "", "defaults:")  # no moco setting written: at the defaults
    assert queue.startswith("2 pretraining job(s) (e.g. job ") and queue.endswith(
        "(pretrain: method=moco, dataset=alpha, seed=0)): pretrain.moco.queue_size 65536 is more than the 640 keys "
        "the run enqueues (20 steps x batch_size 32): most of its negatives stay the queue's random initial keys to "
        "the end; set it to at most 640 (MoCo v2's 65536 fill in 256 steps at batch 256)"), queue
    [warmup] = warnings(0.5, ", moco: {queue_size: 640}", "pretrain:")
    assert warmup.startswith("4 pretraining job(s) (e.g. job ") and warmup.endswith(
        "pretrain.optim.warmup_epochs 0.5 x 31 steps per epoch comes to 16 warmup steps of the run's 20 (steps 20), "
        "more than half of the run"), warmup
    assert warnings(0.2, ", moco: {queue_size: 640}", "pretrain:") == []


def test_check_refuses_a_labeled_size_beyond_the_manifest(tmp_path, monkeypatch, write_grid):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "m"))
    (tmp_path / "m").mkdir()
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [300]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [40, 500]}
    """)
    for name in ("alpha_train", "alpha_val"):
        _fake_manifest(tmp_path / "m", name, 320, ["a", "b"])
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "labeled_sizes: [40, 500]" in t)
    with pytest.raises(StudyError, match=rf"{g}:{line}: labeled size 500 asked of manifest alpha_train, "
                                         r"which has 320 images \(at most 320, or `all` for every one\)"):
        plan_grid(g).check()
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [300]}
    stages:
      evaluate:
        - protocol: finetune
          labeled_sizes: [40, 500]
    """, pretrain={"epochs": 1})
    g.write_text(g.read_text().replace("defaults:\n", "defaults:\n  evaluate: {labeled_sizes: [40]}\n"))
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "labeled_sizes: [40, 500]" in t)
    with pytest.raises(StudyError, match=rf"{g}:{line}: labeled size 500 "):  # the entry's line, not the defaults'
        plan_grid(g).check()


def test_a_non_number_in_the_recipe_is_a_config_error_not_a_traceback(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: finetune, labeled_sizes: [5], params: {finetune: {steps: 5, batch_size: big}}}
    """, pretrain={"steps": "twenty", "batch_size": "64x"})
    plan = plan_grid(g)  # the cost estimate does not stumble on the values
    with pytest.raises(StudyError, match="steps"):
        plan.check(manifests=False)


def test_check_refuses_granularity_levels_the_manifests_lack(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    plan = plan_grid("grids/granularity.yaml")
    _fake_manifest(tmp_path, "inat21_train", 2_700_000, ["a", "b"])
    levels = ("kingdom", "phylum", "class", "order", "genus", "species", "class_name")
    _fake_manifest(tmp_path, "inat21_val", 100_000, ["a", "b"], levels=levels)  # no "family"
    with pytest.raises(StudyError) as e:
        plan.check()
    line = next(i for i, t in enumerate(Path("grids/granularity.yaml").read_text().splitlines(), 1)
                if t.strip().startswith("levels: [kingdom"))
    assert (f"grids/granularity.yaml:{line}: granularity levels ['family'] are not columns of manifest inat21_val "
            f"(its taxonomy levels: {', '.join(levels)})") in str(e.value)  # where levels is set; class_name once


@pytest.mark.parametrize("train_levels, rebuilt, advice", [
    ((), ["alpha_val", "alpha_train"], "build alpha_val and alpha_train again with the same --taxonomy FILE"),
    (["group"], ["alpha_val"], "build alpha_val again with alpha_train's --taxonomy FILE"),
])
def test_granularity_on_manifests_without_a_taxonomy_says_how_to_build_them(tmp_path, monkeypatch, capsys,
                                                                            write_grid, train_levels, rebuilt, advice):
    """The manifests that lack the taxonomy (its columns) are built again under their names, their files deleted
    first: both, or the test one alone where the train one was built with --taxonomy (it is not named to delete)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 400, ["x", "y"], levels=train_levels)
    _fake_manifest(tmp_path, "alpha_val", 100, ["x", "y"])
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, steps: 10, batch_size: 100, optim: {warmup_epochs: 0}}
    axes: {method: [simclr], dataset: [alpha], size: [200]}
    stages:
      evaluate:
        - {protocol: granularity, eval_datasets: same}
    """, base=False)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and f"granularity on manifest alpha_val, which has no taxonomy levels: {advice}" in err, err
    for name in ("alpha_val", "alpha_train"):
        assert (f"delete {tmp_path}/{name}.parquet" in err) == (name in rebuilt), err
    assert ("--classes-from alpha_train, after you delete" in err) == bool(train_levels), err


def test_check_refuses_granularity_levels_out_of_the_taxonomys_order(tmp_path, monkeypatch):
    """The report draws the levels in the order given, under "coarse -> fine": species before genus would be drawn
    so, mislabelled (and be another job, the same work under another id)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    levels = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
    for name, n in (("inat21_train", 2_700_000), ("inat21_val", 100_000)):
        _fake_manifest(tmp_path, name, n, ["a", "b"], levels=levels)
    text = Path("grids/granularity.yaml").read_text()
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(text.replace("genus, species]", "species, genus]", 1))
    with pytest.raises(StudyError) as e:
        plan_grid(swapped).check()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("levels: [kingdom"))
    assert (f"swapped.yaml:{line}: granularity levels run coarse -> fine, as the taxonomy of manifest inat21_val does "
            f"({', '.join(levels)}, class_name); list them as [{', '.join(levels)}]") in str(e.value)
    last = tmp_path / "labels_last.yaml"  # the labels (class_name) after every taxonomy level: in order
    last.write_text(text.replace("genus, species]", "genus, species, class_name]", 1))
    plan_grid(last).check()
    first = tmp_path / "labels_first.yaml"
    first.write_text(text.replace("levels: [kingdom,", "levels: [class_name, kingdom,", 1))
    with pytest.raises(StudyError, match=r"list them as \[kingdom, .*, species, class_name\]"):
        plan_grid(first).check()


def test_check_places_the_supercategory_between_the_kingdom_and_the_class(tmp_path, monkeypatch):
    """iNat21's supercategory (Birds, Insects, ...) is finer than the kingdom and coarser than the class: listed last
    it would be drawn, and read by the findings, as the finest level; listed first, as coarser than the kingdom."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    levels = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
    for name, n in (("inat21_train", 2_700_000), ("inat21_val", 100_000)):
        _fake_manifest(tmp_path, name, n, ["a", "b"], levels=levels, columns=["supercategory"])
    text = Path("grids/granularity.yaml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("levels: [kingdom"))
    for where, given in (("last", "genus, species, supercategory]"), ("first", "supercategory, kingdom, phylum")):
        bad = tmp_path / f"supercategory_{where}.yaml"
        bad.write_text(text.replace("genus, species]" if where == "last" else "kingdom, phylum", given, 1))
        with pytest.raises(StudyError) as e:
            plan_grid(bad).check()
        assert (f"{bad.name}:{line}: granularity level supercategory (iNat21's groups: Plants, Insects, Birds, ...) is "
                "coarser than the class and finer than the kingdom: list it between them, [kingdom, phylum, "
                "supercategory, class, order, family, genus, species]") in str(e.value), str(e.value)
    for given in ("kingdom, supercategory, phylum", "kingdom, phylum, supercategory"):
        good = tmp_path / "supercategory_between.yaml"
        good.write_text(text.replace("kingdom, phylum", given, 1))
        plan_grid(good).check()


def test_a_size_an_include_rule_adds_is_reported_at_that_rule(tmp_path, monkeypatch, capsys):
    """The pooled sets of data_domain get their 500k from an `include` rule: an error names its line, not the line
    of `axes.size` that happens to list 500k too."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    for name in plan_grid("grids/data_domain.yaml").manifests():
        _fake_manifest(tmp_path, name, 30 if name == "pooled_imagenet_inat21" else 2_000_000, ["x"])
    code, _, err = run_plan_cli(["grids/data_domain.yaml"], capsys)
    assert code == 2
    lines = (REPO / "grids/data_domain.yaml").read_text().splitlines()
    rule = next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith("- {dataset: [imagenet+inat21,"))
    assert f"grids/data_domain.yaml:{rule}: pretraining size 500000 (500k): manifest pooled_imagenet_inat21 has 30" \
        in err


def test_check_refuses_a_corrupted_manifest_made_from_another_base_or_corruption(tmp_path, monkeypatch, capsys,
                                                                                  write_grid):
    """`<train>.<slug>` is found by its name: one made from the test split, with another corruption, or from a base
    rebuilt since would pretrain the job on other images than its axes say, and only its result would show it."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 100, ["x", "y"], content_hash="h-train")
    _fake_manifest(tmp_path, "alpha_val", 100, ["x", "y"], content_hash="h-val")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], corruption: [downsample:factor=2]}\nstages: {}\n",
                   pretrain={"optim": "{warmup_epochs: 0}"})  # 12 steps: the default 10 warmup epochs would fill them
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "corruption:" in t)
    made = {"from the test split": ("downsample:factor=2", "alpha_val", "h-val", "it was made from alpha_val"),
            "with another corruption": ("downsample:factor=4", "alpha_train", "h-train",
                                        "its corruption is downsample:factor=4"),
            "from a base rebuilt since": ("downsample:factor=2", "alpha_train", "h-old",
                                          "alpha_train has been rebuilt since it was made")}
    for spec, base, base_hash, why in made.values():
        _fake_manifest(tmp_path, "alpha_train.downsample-factor2", 100, ["x", "y"], corruption=spec,
                       base={"name": base, "content_hash": base_hash})
        code, _, err = run_plan_cli([str(g)], capsys)
        assert code == 2 and (f"{g}:{line}: manifest alpha_train.downsample-factor2 is meant to be alpha_train "
                              f"corrupted by downsample:factor=2, but {why}; delete {tmp_path}/alpha_train."
                              f"downsample-factor2.parquet and {tmp_path}/alpha_train.downsample-factor2.json and make "
                              f"it again:\n    study manifest corrupt alpha_train.downsample-factor2 --base "
                              f"alpha_train --corruption downsample:factor=2") in err, err
    _fake_manifest(tmp_path, "alpha_train.downsample-factor2", 100, ["x", "y"], corruption="downsample:factor=2",
                   base={"name": "alpha_train", "content_hash": "h-train"})
    assert run_plan_cli([str(g)], capsys)[0] == 0


def _study(*argv) -> None:
    """`study ...` in-process, as a user runs it; it must succeed."""
    assert study.cli.main([str(a) for a in argv]) == 0


def _alpha_of_one_tree(tmp_path, monkeypatch) -> None:
    """Manifests alpha_train and alpha_val built from one tree of class folders and no split folder: every split is
    the whole tree, so the test manifest shares every image with the train one."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    write_quadrant_tree(tmp_path / "tree", per_class=5, seed=0)
    for split in ("train", "val"):
        _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "tree", "--split", split,
               "--name", f"alpha_{split}")


def test_check_refuses_a_pooled_manifest_that_is_not_the_grids_pool(tmp_path, monkeypatch, capsys):
    """A pooled manifest is found by its name: one built with other shares (16 + 4 where the grid says 10 + 10), or
    from a source rebuilt since, would pretrain on other images than `pool:` says, and only its results would show."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    for name, seed in (("alpha", 0), ("beta", 1)):
        write_quadrant_tree(tmp_path / name, per_class=5, seed=seed)
        _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / name, "--split", "train",
               "--name", f"{name}_train")
    g = tmp_path / "g.yaml"
    g.write_text("name: t\ndatasets:\n  alpha: {train: alpha_train}\n  beta: {train: beta_train}\n  alpha+beta:\n"
                 "    train: pooled_ab\n    pool: {alpha: 10, beta: 10}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1, batch_size: 8, optim: {warmup_epochs: 0}}\n"
                 "axes: {method: [simclr], dataset: [alpha+beta], size: [20]}\nstages: {}\n")
    remake = (f"delete {tmp_path}/manifests/pooled_ab.parquet and {tmp_path}/manifests/pooled_ab.json and make it "
              "again:\n    study manifest pool pooled_ab --from alpha_train:10 --from beta_train:10")
    meant = f"{g}:7: manifest pooled_ab is meant to pool alpha_train:10, beta_train:10 (datasets.alpha+beta.pool), but"

    def pool(*sources: str) -> None:
        for ext in ("json", "parquet"):
            (tmp_path / "manifests" / f"pooled_ab.{ext}").unlink(missing_ok=True)
        _study("manifest", "pool", "pooled_ab", *(f"--from={s}" for s in sources))

    pool("alpha_train:16", "beta_train:4")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and f"{meant} it pools alpha_train:16, beta_train:4; {remake}" in err, err
    pool("beta_train:10", "alpha_train:10")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and (f"{meant} it pools beta_train:10, alpha_train:10 (the same sources in another order); "
                          f"{remake}") in err, err
    pool("alpha_train:10", "beta_train:10")
    assert run_plan_cli([str(g)], capsys)[0] == 0
    for ext in ("json", "parquet"):  # the source rebuilt since (another seed: other nested prefixes)
        (tmp_path / "manifests" / f"alpha_train.{ext}").unlink()
    _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "alpha", "--split", "train",
           "--name", "alpha_train", "--seed", "7")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and f"{meant} alpha_train has been rebuilt since it was made; {remake}" in err, err


def _pool_grid(tmp_path, monkeypatch, pool: str, axes: str = "method: [simclr], dataset: [alpha+beta], size: [120]",
               **hashes) -> Path:
    """Manifests alpha_train and beta_train of 180 images each ($STUDY_MANIFESTS: tmp_path; `hashes`: their
    content_hash by name) and g.yaml pooling them as pooled_ab, `pool` its `pool:` mapping, line 7."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    for name in ("alpha_train", "beta_train"):
        _fake_manifest(tmp_path, name, 180, ["a", "b"], **({"content_hash": hashes[name]} if name in hashes else {}))
    g = tmp_path / "g.yaml"
    g.write_text("name: t\ndatasets:\n  alpha: {train: alpha_train}\n  beta: {train: beta_train}\n  alpha+beta:\n"
                 f"    train: pooled_ab\n    pool: {pool}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1, batch_size: 8, optim: {warmup_epochs: 0}}\n"
                 f"axes: {{{axes}}}\nstages: {{}}\n")
    return g


def test_a_missing_pool_whose_share_exceeds_its_source_is_refused_at_the_pool_line(tmp_path, monkeypatch, capsys):
    """A pool not made yet, whose `pool:` share is larger than its source: `study plan` names the share and the
    source's images at the `pool:` line, not a `study manifest pool` command that would itself be refused."""
    g = _pool_grid(tmp_path, monkeypatch, "{alpha: 500, beta: 60}")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and (f"{g}:7: datasets.alpha+beta.pool.alpha: 500 images asked of manifest alpha_train, which "
                          "has 180; pool at most 180 of it") in err, err
    assert "study manifest pool pooled_ab" not in err and "beta_train" not in err, err
    g.write_text(g.read_text().replace("alpha: 500", "alpha: 60"))  # within its source: the command to make it
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "study manifest pool pooled_ab --from alpha_train:60 --from beta_train:60" in err, err
    # a missing manifest beside the share: the closing advice follows its command, not the share's line after it
    g.write_text(g.read_text().replace("alpha: 60", "alpha: 500").replace(
        "  beta: {train: beta_train}\n", "  beta: {train: beta_train}\n  gamma: {train: gamma_train}\n").replace(
        "dataset: [alpha+beta]", "dataset: [gamma, alpha+beta]"))
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "manifest 'gamma_train' not found" in err, err
    assert err.index("manifest 'gamma_train' not found") < err.index("its sbatch scripts") < err.index(
        "500 images asked of manifest alpha_train"), err


def test_a_made_pool_whose_share_in_the_grid_exceeds_its_source_is_refused_at_the_pool_line(tmp_path, monkeypatch,
                                                                                            capsys):
    """A pool made with shares its sources hold, whose grid `pool:` asks more of a source than it has (a share mistyped
    after the pool was made): `study plan` names the share and the source's images, not "delete it and make it again"
    with a `study manifest pool` command that would itself be refused."""
    g = _pool_grid(tmp_path, monkeypatch, "{alpha: 600, beta: 60}", alpha_train="ha", beta_train="hb")
    _fake_manifest(tmp_path, "pooled_ab", 120, ["alpha_train/a", "alpha_train/b", "beta_train/a", "beta_train/b"],
                   pool=[{"name": "alpha_train", "content_hash": "ha", "size": 60},
                         {"name": "beta_train", "content_hash": "hb", "size": 60}])
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and (f"{g}:7: datasets.alpha+beta.pool.alpha: 600 images asked of manifest alpha_train, which "
                          "has 180; pool at most 180 of it (pool pooled_ab cannot be made as the grid gives it)") in err
    assert "study manifest pool" not in err and "is meant to pool" not in err, err
    g.write_text(g.read_text().replace("alpha: 600", "alpha: 60"))  # the grid's shares again: the pool is its own
    assert run_plan_cli([str(g)], capsys)[0] == 0


def test_a_size_beyond_a_pool_not_made_yet_is_refused_at_the_size(tmp_path, monkeypatch, capsys):
    """Before the pool is made, a pretraining size over its shares' sum was said only after `study manifest pool`
    made it (then a problem of the made manifest); the plan says it at once, at the size's line, once."""
    g = _pool_grid(tmp_path, monkeypatch, "{alpha: 60, beta: 60}",
                   axes="method: [simclr, byol], dataset: [alpha+beta], size: [100, 150]")
    code, _, err = run_plan_cli([str(g)], capsys)
    said = (f"{g}:10: pretraining size 150: pool pooled_ab will hold 120 images, the sum of its shares "
            "(datasets.alpha+beta.pool): a size of at most 120, or larger shares")
    assert code == 2 and err.count(said) == 1, err  # two methods, one problem
    assert "pretraining size 100" not in err and "study manifest pool pooled_ab" in err, err


def test_a_pool_of_unequal_shares_is_a_warning_at_its_pool_line(tmp_path):
    """The report reads a pool of k sets as k equal shares (the per-domain share bar, in_domain_share_beats_pooled):
    a pool of unequal ones is said, at its `pool:` line; equal shares are not."""
    g = tmp_path / "g.yaml"
    g.write_text("name: t\ndatasets:\n  alpha: {train: alpha_train}\n  beta: {train: beta_train}\n  alpha+beta:\n"
                 "    train: pooled_ab\n    pool: {alpha: 90, beta: 30}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1}\n"
                 "axes: {method: [simclr], dataset: [alpha+beta], size: [120]}\nstages: {}\n")
    assert unequal_pool_warnings(plan_grid(g)) == [
        f"{g}:7: datasets.alpha+beta.pool: unequal shares (alpha 90, beta 30): the report reads a pool of 2 sets as "
        "2 equal shares (domain_pooling's per-domain share of size / 2, finding in_domain_share_beats_pooled), so "
        "those read wrong for it"]
    g.write_text(g.read_text().replace("alpha: 90, beta: 30", "alpha: 60, beta: 60"))
    assert unequal_pool_warnings(plan_grid(g)) == []


def test_check_takes_sizes_of_every_image_of_the_manifest(tmp_path, monkeypatch, write_grid):
    """A pretraining size or labeled size equal to the manifest's images is the whole manifest: not refused."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [320]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [40, 320]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    for name in ("alpha_train", "alpha_val"):
        _fake_manifest(tmp_path, name, 320, ["a", "b"])
    assert not [w for w in plan_grid(g).check() if "size" in w]
    _fake_manifest(tmp_path, "alpha_train", 319, ["a", "b"])  # one image fewer: both sizes are refused
    with pytest.raises(StudyError) as e:
        plan_grid(g).check()
    assert "pretraining size 320: manifest alpha_train has 319 images" in str(e.value), e.value
    assert "labeled size 320 asked of manifest alpha_train, which has 319 images" in str(e.value), e.value


def test_a_manifest_whose_dataset_root_is_not_here_is_named(tmp_path, monkeypatch, capsys, write_grid):
    """A manifest records its root when it is made, a corrupted variant and a pool their base's and sources' roots of
    that moment: after the dataset moved, each job stops at its first image (after the jobs it waits for), and
    rebuilding the base alone leaves the variant and the pool on the old root (same content hash). The plan names
    each such manifest: a warning (Slurm's nodes may mount what this machine does not), a problem where the jobs run
    on this machine (`images_here`, `study submit --cluster local`)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    options = {"alpha_train": ["--sizes", "10,20", "--labeled-sizes", "8", "--seed", "3"]}  # part of its hash
    for name, seed in (("alpha", 0), ("beta", 1)):
        for split in ("train", "val"):
            write_quadrant_tree(tmp_path / "data" / name / split, per_class=5, seed=seed * 2 + (split == "val"))
            _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "data" / name, "--split",
                   split, "--name", f"{name}_{split}", *options.get(f"{name}_{split}", []))
    hashes = {name: load_meta(name)["content_hash"] for name in ("alpha_train", "alpha_val")}
    _study("manifest", "corrupt", "alpha_train.jpeg-quality10", "--base", "alpha_train", "--corruption", "jpeg")
    _study("manifest", "pool", "pooled_ab", "--from", "alpha_train:10", "--from", "beta_train:10")
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
      beta: {train: beta_train, test: beta_val}
      alpha+beta: {train: pooled_ab, pool: {alpha: 10, beta: 10}}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8, optim: {warmup_epochs: 0}}
    axes: {method: [simclr], dataset: [alpha, alpha+beta], size: [20], corruption: [none, jpeg]}
    exclude: [{dataset: [alpha+beta], corruption: [jpeg]}]
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: [alpha], labeled_sizes: [8]}
    """, base=False)
    text = g.read_text().splitlines()
    alpha, pooled = (next(i for i, t in enumerate(text, 1) if t.lstrip().startswith(k)) for k in ("alpha:", "alpha+"))
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0, err
    old, new = tmp_path / "data" / "alpha", tmp_path / "moved" / "alpha"
    new.parent.mkdir()
    shutil.move(old, new)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0 and err.count("study: warning: ") == 4, err
    with pytest.raises(StudyError, match="4 problem\\(s\\) found before anything runs"):
        plan_grid(g).check(images_here=True)
    manifests = tmp_path / "manifests"

    def gone(name: str) -> str:
        return (f"reads its images under {old}, which is not a folder here (the dataset moved, or is not mounted on "
                f"this machine): a job that cannot read it stops at its first image; if it moved, delete "
                f"{manifests}/{name}.parquet and {manifests}/{name}.json and ")

    for name in ("alpha_train", "alpha_val"):  # the command with the options it was built with: the same hash
        split = name.split("_")[1]
        command = f'study manifest build --dataset imagefolder --root "$NEW_ROOT" --split {split} --name {name}' + (
            " --sizes 10,20 --labeled-sizes 8 --seed 3" if split == "train" else "")
        assert (f"study: warning: {g}:{alpha}: manifest {name} reads its images under {old}, which is not a folder "
                f"here (the dataset moved, or is not mounted on this machine): a job that cannot read it stops at its "
                f"first image; if it moved, build it again at the dataset's new place with the options it was built "
                f"with (the content hash, so each result and checkpoint on it, stays the same only with them; the "
                f"grid's sizes alone, as `study plan` suggests once it is gone, give another):\n    {command}  "
                f"($NEW_ROOT: where {old} is now)\n  before deleting it: the build says \"the same content under "
                f"another root\" where only the root moved (else it names what differs); then delete "
                f"{manifests}/{name}.parquet and {manifests}/{name}.json and run the build again") in err, err
        argv = shlex.split(command.replace('"$NEW_ROOT"', shlex.quote(str(new))))[1:]
        capsys.readouterr()
        assert study.cli.main(argv) == 2 and "already exists with the same content under another root" in \
            capsys.readouterr().err  # as the message says, before deleting it
        for ext in ("json", "parquet"):  # then rebuilt at the new place, as the message says
            (tmp_path / "manifests" / f"{name}.{ext}").unlink()
        _study(*argv)
        assert load_meta(name)["content_hash"] == hashes[name] and load_meta(name)["root"] == str(new)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0 and err.count("study: warning: ") == 2, err
    assert (f"{g}:{alpha}: manifest alpha_train.jpeg-quality10 {gone('alpha_train.jpeg-quality10')}make it again, "
            f"once its base is built at the dataset's new place:\n    study manifest corrupt "
            f"alpha_train.jpeg-quality10 --base alpha_train --corruption jpeg:quality=10") in err, err
    assert (f"{g}:{pooled}: manifest pooled_ab {gone('pooled_ab')}make it again, once its sources are built at the "
            f"dataset's new place:\n    study manifest pool pooled_ab --from alpha_train:10 --from beta_train:10"
            ) in err, err
    for name in ("alpha_train.jpeg-quality10", "pooled_ab"):
        for ext in ("json", "parquet"):
            (tmp_path / "manifests" / f"{name}.{ext}").unlink()
    _study("manifest", "corrupt", "alpha_train.jpeg-quality10", "--base", "alpha_train", "--corruption", "jpeg")
    _study("manifest", "pool", "pooled_ab", "--from", "alpha_train:10", "--from", "beta_train:10")
    assert run_plan_cli([str(g)], capsys)[:3:2] == (0, "")
    assert plan_grid(g).check(images_here=True) == []


def test_check_refuses_test_images_among_the_labeled_images(tmp_path, monkeypatch, capsys, write_grid):
    """An image folder without split folders gives every --split the whole tree (with a note): train and val built
    from it share every image, and each evaluation stopped on it only after its encoder's pretraining. The plan
    names it, at the dataset's line; a test manifest of other images (another root) is fine."""
    _alpha_of_one_tree(tmp_path, monkeypatch)
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [20]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [8, 12]}
        - {protocol: knn, labeled_sizes: [4]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if t.lstrip().startswith("alpha:"))
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2, err
    assert (f"{g}:{line}: 12 of the 20 test images of manifest alpha_val are among the 12 labeled images of "
            f"alpha_train an evaluation trains on (e.g. {tmp_path / 'tree'}/") in err, err
    assert err.count("test images of manifest") == 1, err  # once per pair of manifests, at its largest labeled size
    assert "build the test manifest from another split" in err

    for ext in ("json", "parquet"):
        (tmp_path / "manifests" / f"alpha_val.{ext}").unlink()
    write_quadrant_tree(tmp_path / "split" / "val", per_class=2, seed=1)
    _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "split", "--split", "val",
           "--name", "alpha_val", "--classes-from", "alpha_train")
    assert run_plan_cli([str(g)], capsys)[0] == 0  # another root: other images


def test_check_refuses_glc20_test_occurrences_among_the_labeled_ones(tmp_path, monkeypatch, capsys, write_grid):
    """One's own GLC20 tables may list an occurrence in both occurrences_fr_train.csv and _test.csv: one patch file,
    which the evaluation refused only after its encoder's pretraining. The plan names it."""
    import numpy as np

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    glc = tmp_path / "glc"
    ids = [10561200 + i for i in range(6)]
    for i in ids:
        folder = glc / "patches_fr" / f"{i % 100:02d}" / f"{i // 100 % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{i}.npy", np.full((8, 8, 5), 11, np.uint8))
    (glc / "occurrences_fr_train.csv").write_text("id;lat;lon;species_id\n" + "".join(f"{i};0;0;1\n" for i in ids[:4]))
    (glc / "occurrences_fr_test.csv").write_text("id;lat;lon\n" + "".join(f"{i};0;0\n" for i in ids[3:]))
    for split in ("train", "test"):
        _study("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", f"fr_{split}",
               "--name", f"alpha_{'val' if split == 'test' else split}")
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [4]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [4]}
    """, pretrain={"optim": "{warmup_epochs: 0}", "batch_size": 2})
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2, err
    assert ("1 of the 3 test images of manifest alpha_val are among the 4 labeled images of alpha_train an "
            "evaluation trains on") in err, err
    assert "leave the train table's occurrences out of the test table" in err


def test_check_refuses_a_glc20_test_manifest_of_another_regions_land_cover(tmp_path, monkeypatch, capsys,
                                                                           write_grid):
    """France's OSO and the US's NLCD give one code other classes: a fr_train labeled manifest and a us_test test
    manifest of the same class names (landcover_11) passed; of other classes, the plan said to rebuild the test
    manifest with --classes-from --drop-other-classes, which keeps the other scheme's codes. Both are named as
    manifests of other regions, with the split to build instead."""
    import numpy as np

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    glc = tmp_path / "glc"
    for region, ids in (("fr", [10561200, 10561201, 10561202, 10561203]), ("us", [1234500, 1234501])):
        for i in ids:
            folder = glc / f"patches_{region}" / f"{i % 100:02d}" / f"{i // 100 % 100:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{i}.npy", np.full((8, 8, 5), 11 if i % 2 == 0 else 21, np.uint8))
    (glc / "occurrences_fr_train.csv").write_text("id;lat;lon;species_id\n" + "".join(f"{i};0;0;1\n" for i in
                                                                                         range(10561200, 10561204)))
    (glc / "occurrences_us_test.csv").write_text("id;lat;lon\n1234500;0;0\n1234501;0;0\n")
    _study("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "fr_train", "--name", "alpha_train")
    _study("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "us_test", "--name", "alpha_val")
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [4]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [2]}
    """, pretrain={"optim": "{warmup_epochs: 0}", "batch_size": 2})
    want = (f"{g}:3: manifests alpha_train and alpha_val (the labeled and test sets of an evaluation) are of other "
            "regions: alpha_val is labelled with the US's (NLCD) land-cover codes, alpha_train with France's (OSO): "
            "the two schemes give one code other classes: delete ")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and want in err and "rebuild it with --split fr_test --classes-from alpha_train (or " in err, err
    np.save(glc / "patches_us/01/45/1234501.npy", np.full((8, 8, 5), 41, np.uint8))  # a code France's lacks
    for ext in ("json", "parquet"):
        (tmp_path / "manifests" / f"alpha_val.{ext}").unlink()
    _study("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "us_test", "--name", "alpha_val")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and want in err and "--drop-other-classes" not in err, err


def test_an_init_encoder_that_is_not_a_file_here_is_named(tmp_path, monkeypatch, capsys, write_grid):
    """`defaults.pretrain.init_encoder` starts every pretraining job from that file: one not here was found only by
    each job, after its wait in the queue. A warning (Slurm's nodes may mount it elsewhere), a problem where the
    jobs run on this machine."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    for split in ("train", "val"):
        write_quadrant_tree(tmp_path / "data" / split, per_class=5, seed=split == "val")
        _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "data", "--split", split,
               "--name", f"alpha_{split}")
    encoder = tmp_path / "enc.pt"
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
    defaults:
      pretrain: {{backbone: resnet18, epochs: 1, batch_size: 8, optim: {{warmup_epochs: 0}}, init_encoder: {encoder}}}
    axes: {{method: [simclr], dataset: [alpha], size: [20]}}
    stages: {{}}
    """, base=False)
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "init_encoder" in t)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0 and err.count("study: warning: ") == 1, err
    assert f"study: warning: {g}:{line}: defaults.pretrain.init_encoder: {encoder} is not a file here" in err, err
    with pytest.raises(StudyError, match=f"init_encoder: {encoder} is not a file here"):
        plan_grid(g).check(images_here=True)
    plan = plan_grid(g)  # of the jobs that will run (`todo`): a file only done jobs read is not looked at
    with pytest.raises(StudyError, match=f"init_encoder: {encoder} is not a file here"):
        plan.check(images_here=True, todo={plan.jobs[0].id})
    assert plan.check(images_here=True, todo=set()) == []
    encoder.write_bytes(b"")
    assert plan_grid(g).check(images_here=True) == []


def test_cost_hint_notes_need_the_manifest_check_and_a_hint(tmp_path, monkeypatch, capsys, write_grid):
    """`--no-check` reads no manifest, so it notes no hint; a dataset without hints has none to contradict; a plan
    checked twice notes each hint once."""
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, ", train_images: 2686843")
    code, out, err = run_plan_cli([str(g), "--no-check"], capsys)
    assert code == 0 and "but manifest" not in out, err
    plan = plan_grid(g)
    plan.check()
    plan.check()
    assert sum("but manifest" in n for n in plan.estimate["notes"]) == 1, plan.estimate["notes"]
    g = _hinted_alpha_grid(write_grid, tmp_path, monkeypatch, "", name="bare.yaml")
    code, out, err = run_plan_cli([str(g)], capsys)
    assert code == 0 and "but manifest" not in out, err


def test_a_batch_larger_than_the_images_of_a_method_that_trains_nothing_is_fine(tmp_path, monkeypatch, write_grid):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 10_000, ["x", "y"])
    _fake_manifest(tmp_path, "alpha_val", 1_000, ["x", "y"])
    g = write_grid("axes: {method: [random], dataset: [alpha], size: [3000]}\nstages: {}\n",
                   pretrain={"batch_size": 4096})
    assert plan_grid(g).check() == []


def test_a_missing_corrupted_variant_is_not_told_to_set_a_dataset_root(tmp_path, monkeypatch, write_grid):
    """Its command makes it from its base: no $<DATASET>_ROOT nor $<DATASET>_TAXONOMY to set."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 10_000, ["x", "y"])
    g = write_grid("axes: {method: [simclr], dataset: [alpha], corruption: [jpeg]}\nstages: {}\n")
    with pytest.raises(StudyError) as e:
        plan_grid(g).check()
    assert "study manifest corrupt alpha_train.jpeg" in str(e.value), e.value
    assert "_ROOT" not in str(e.value) and "_TAXONOMY" not in str(e.value), e.value


def _tiny_imagenet(tmp_path, monkeypatch, corruptions=("jpeg",), val_corruptions=()) -> None:
    """ImageNet's official layout in small (`train/<wnid>/<wnid>_<n>.JPEG`, a `val/` sorted into wnid folders), its
    manifests imagenet_train and imagenet_val, and corrupted variants of each: a reader whose splits are files of
    their own, so the plan reads no paths of them to look for test images among the labeled ones."""
    from PIL import Image

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    root = tmp_path / "imagenet"
    for split, per_class in (("train", 5), ("val", 2)):
        for c in range(3):
            wnid = f"n0144076{c}"
            (root / split / wnid).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (12, 12), (80 * c, 10 * i, 50)).save(root / split / wnid / f"{wnid}_{split}{i}.JPEG")
    _study("manifest", "build", "--dataset", "imagenet", "--root", root, "--split", "train", "--name",
           "imagenet_train")
    _study("manifest", "build", "--dataset", "imagenet", "--root", root, "--split", "val", "--name", "imagenet_val",
           "--classes-from", "imagenet_train")
    for base, specs in (("imagenet_train", corruptions), ("imagenet_val", val_corruptions)):
        for spec in specs:
            _study("manifest", "corrupt", f"{base}.{spec}-quality10", "--base", base, "--corruption", spec)


def _line(g) -> int:
    """The line of the grid's one dataset, where the checks of its manifests are named."""
    return line_of(g, "imagenet: {")


def _imagenet_grid(write_grid, train: str, test: str, corruption: str = "[none]"):
    return write_grid(f"""
    name: q
    datasets:
      imagenet: {{reader: imagenet, train: {train}, test: {test}}}
    defaults:
      pretrain: {{backbone: resnet18, epochs: 1, batch_size: 5, optim: {{warmup_epochs: 0}}}}
    axes: {{method: [simclr], dataset: [imagenet], size: [15], corruption: {corruption}}}
    stages:
      evaluate:
        - {{protocol: linear, labeled_sizes: [6, 15]}}
    """, base=False)


def test_check_refuses_a_corrupted_variant_of_the_train_split_as_the_test_set(tmp_path, monkeypatch, capsys,
                                                                             write_grid):
    """A corrupted variant lists its base's images: as a dataset's `test` beside its base as `train`, every test
    image is a labeled one, which each evaluation refused only after its encoder's pretraining (ImageNet's splits
    are files of their own, so the plan did not look)."""
    _tiny_imagenet(tmp_path, monkeypatch)
    g = _imagenet_grid(write_grid, "imagenet_train", "imagenet_train.jpeg-quality10")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2, err
    assert (f"{g}:{_line(g)}: 15 of the 15 test images of manifest imagenet_train.jpeg-quality10 are among the 15 "
            f"labeled images of imagenet_train an evaluation trains on") in err, err
    assert err.rstrip().endswith("after its pretraining; manifest imagenet_train.jpeg-quality10 is a corrupted "
                                 "variant of imagenet_train, whose images it lists: test on a manifest of another "
                                 "split (the paper's probes train and test on clean images)"), err
    assert run_plan_cli([str(_imagenet_grid(write_grid, "imagenet_train", "imagenet_val"))], capsys)[:3:2] == (0, "")


def test_a_corruption_of_a_dataset_whose_train_is_a_corrupted_variant_is_refused_not_given_a_command(
        tmp_path, monkeypatch, capsys, write_grid):
    """`study manifest corrupt` refuses a variant of a variant: the plan says so at the dataset's line, naming the
    clean manifest, rather than print the commands that would be refused."""
    _tiny_imagenet(tmp_path, monkeypatch)
    g = _imagenet_grid(write_grid, "imagenet_train.jpeg-quality10", "imagenet_val",
                       corruption="[none, 'downsample:factor=2', 'downsample:factor=4']")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2, err
    assert (f"{g}:{_line(g)}: datasets.imagenet.train imagenet_train.jpeg-quality10 is a corrupted variant "
            f"(jpeg:quality=10), which the grid's corruptions other than none would corrupt again: `study manifest "
            f"corrupt` makes a variant of a clean manifest only; name the clean one (imagenet_train) as the dataset's "
            f"train") in err, err
    assert "study manifest corrupt imagenet_train.jpeg-quality10.downsample" not in err, err
    assert err.count("is a corrupted variant (jpeg:quality=10)") == 1, err  # once, not once per corruption


def test_plan_warns_of_evaluations_on_corrupted_images(tmp_path, monkeypatch, capsys, write_grid):
    """The paper's probes train and test on clean images, and the report tells a cell's corruption by its
    pretraining's alone: a dataset whose `test` (or `train`, the probes' labeled images) is a corrupted variant is a
    warning at the dataset's line, once per manifest."""
    _tiny_imagenet(tmp_path, monkeypatch, val_corruptions=("jpeg",))
    g = _imagenet_grid(write_grid, "imagenet_train", "imagenet_val.jpeg-quality10",
                       corruption="[none, 'jpeg:quality=10']")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0, err
    assert (f"study: warning: {g}:{_line(g)}: datasets.imagenet.test imagenet_val.jpeg-quality10 is a corrupted "
            f"variant (jpeg:quality=10): 2 evaluation(s) (e.g. job ") in err, err
    assert ("score corrupted images, where the paper's probes train and test on clean ones, and the report draws "
            "them as evaluations on clean images (its corruption is the pretraining's); name the clean manifest "
            "(imagenet_val) there, unless corrupted evaluation is meant") in err, err
    assert err.count("study: warning: ") == 1, err
    g = _imagenet_grid(write_grid, "imagenet_train.jpeg-quality10", "imagenet_val")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0 and err.count("study: warning: ") == 1, err
    assert (f"{g}:{_line(g)}: datasets.imagenet.train imagenet_train.jpeg-quality10 is a corrupted variant "
            f"(jpeg:quality=10): 1 evaluation(s) (e.g. job ") in err, err
    assert "train their probes on corrupted images" in err, err
    assert run_plan_cli([str(_imagenet_grid(write_grid, "imagenet_train", "imagenet_val",
                                            corruption="[none, jpeg]"))], capsys)[:3:2] == (0, "")


def test_an_init_encoder_that_is_a_folder_is_not_a_file_here(tmp_path, monkeypatch, write_grid):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n",
                   pretrain={"init_encoder": str(tmp_path)})
    with pytest.raises(StudyError, match=f"init_encoder: {tmp_path} is not a file here"):
        plan_grid(g).check(images_here=True)


def test_knn_params_are_read_with_also_knn_from_the_defaults(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [10], params: {knn: {k: 5}}}
    """)
    g.write_text(g.read_text().replace("defaults:\n", "defaults:\n  evaluate: {also_knn: true}\n"))
    assert plan_grid(g).check(manifests=False) == []


def test_a_knn_entrys_linear_params_are_one_problem_not_one_per_key(write_grid):
    """A knn entry never reads `linear`: that is said once, not again for each of its keys the probe ignores."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: knn, labeled_sizes: [10], params: {linear: {optimizer: lbfgs, epochs: 5}}}
    """)
    with pytest.raises(StudyError) as e:
        plan_grid(g).check(manifests=False)
    assert str(e.value).endswith("stages.evaluate[0].params.linear: protocol knn never reads it; remove it (it would "
                                 "change the job ids and no result)") and "problem(s)" not in str(e.value), e.value


def test_a_concat_entrys_knn_params_need_also_knn(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages:
      evaluate:
        - protocol: concat
          pairs: [[{dataset: alpha}, {dataset: beta}]]
          params: {knn: {k: 5}}
    """)
    with pytest.raises(StudyError, match=r"params.knn: protocol concat reads it only with also_knn: true"):
        plan_grid(g).check(manifests=False)


def test_a_concatenation_of_an_encoder_no_linear_entry_probes_alone_is_warned(write_grid):
    """alpha|beta evaluated on alpha, with linear probes of alpha's encoder only: the report would have no bar of
    beta's encoder alone there, nor the gain over the better single one. A probe of it there quiets the warning."""
    text = """
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages:
      evaluate:
        - {protocol: linear, where: {dataset: alpha}, eval_datasets: [alpha]}
        - protocol: concat
          pairs: [[{dataset: alpha}, {dataset: beta}]]
          eval_datasets: [alpha]
    """
    plan = plan_grid(write_grid(text))
    beta = next(j.id for j in plan.by_stage("pretrain") if j.axes["dataset"] == "beta")
    [said] = unprobed_concat_warnings(plan)
    assert said.startswith(f"{plan.path}: 1 concatenation(s) hold an encoder that no linear entry probes alone on "
                           f"their evaluation dataset at their largest labeled size (e.g. job ")
    assert f"encoder {beta} on alpha at all labels)" in said, said
    probed = text.replace("where: {dataset: alpha}, eval_datasets: [alpha]}", "eval_datasets: [alpha]}")
    assert unprobed_concat_warnings(plan_grid(write_grid(probed))) == []


def test_a_concatenation_whose_encoders_are_probed_alone_at_other_labeled_sizes_is_warned(write_grid):
    """domain_concat draws the single encoders at the concatenation's largest labeled size: probes of both alone at
    1000 labels beside a concatenation of every label (`all`) give it no bar of either; one at its size does."""
    text = """
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: [alpha], labeled_sizes: [1000]}
        - protocol: concat
          pairs: [[{dataset: alpha}, {dataset: beta}]]
          eval_datasets: [alpha]
    """
    [said] = unprobed_concat_warnings(plan_grid(write_grid(text)))
    assert " on alpha at all labels): the report has no bar of that single encoder" in said, said
    assert unprobed_concat_warnings(plan_grid(write_grid(text.replace("[1000]", "[1000, all]")))) == []
    concat = text.replace("pairs:", "labeled_sizes: [SIZES]\n          pairs:")
    assert unprobed_concat_warnings(plan_grid(write_grid(concat.replace("SIZES", "100, 1000")))) == []
    [said] = unprobed_concat_warnings(plan_grid(write_grid(concat.replace("SIZES", "1000, 10k"))))
    assert " on alpha at 10k labels)" in said, said


def test_a_config_error_names_a_concat_job_of_two_sizes(write_grid):
    """A concat job's size is its encoders' joined (`20|4000`): the message that names it spells it so (it was a
    TypeError, format_count of a string)."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [20, 4000]}
    stages:
      evaluate:
        - protocol: concat
          pairs: [[{size: 20}, {size: 4000}]]
          params: {no_such_key: 1}
    """)
    with pytest.raises(StudyError, match=r"job \w+ \(evaluate: method=simclr, dataset=alpha, size=20\|4000, seed=0, "
                                         r"protocol=concat, eval_dataset=alpha\): evaluate: unknown key\(s\) "
                                         r"'no_such_key'"):
        plan_grid(g).check(manifests=False)


def test_test_images_among_the_labeled_ones_are_counted_at_the_largest_labeled_size(tmp_path, monkeypatch, capsys,
                                                                                    write_grid):
    """Whatever entry comes first; the same relative paths under another root (a copy of the tree) are other
    images."""
    _alpha_of_one_tree(tmp_path, monkeypatch)
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [20]}
    stages:
      evaluate:
        - {protocol: knn, labeled_sizes: [4]}
        - {protocol: linear, labeled_sizes: [8, 12]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "are among the 12 labeled images of alpha_train" in err, err
    shutil.copytree(tmp_path / "tree", tmp_path / "copy")
    for ext in ("json", "parquet"):
        (tmp_path / "manifests" / f"alpha_val.{ext}").unlink()
    _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "copy", "--split", "val",
           "--name", "alpha_val", "--classes-from", "alpha_train")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0, err


def test_a_pool_whose_sources_were_all_rebuilt_names_them_all(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    for name, seed in (("alpha", 0), ("beta", 1)):
        write_quadrant_tree(tmp_path / name, per_class=5, seed=seed)
        _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / name, "--split", "train",
               "--name", f"{name}_train")
    _study("manifest", "pool", "pooled_ab", "--from=alpha_train:10", "--from=beta_train:10")
    g = tmp_path / "g.yaml"
    g.write_text("name: t\ndatasets:\n  alpha: {train: alpha_train}\n  beta: {train: beta_train}\n  alpha+beta:\n"
                 "    train: pooled_ab\n    pool: {alpha: 10, beta: 10}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1, batch_size: 8, optim: {warmup_epochs: 0}}\n"
                 "axes: {method: [simclr], dataset: [alpha+beta], size: [20]}\nstages: {}\n")
    for name in ("alpha", "beta"):
        for ext in ("json", "parquet"):
            (tmp_path / "manifests" / f"{name}_train.{ext}").unlink()
        _study("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / name, "--split", "train",
               "--name", f"{name}_train", "--seed", "7")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "but alpha_train, beta_train have been rebuilt since it was made" in err, err


def test_a_default_batch_that_splits_over_no_pretraining_job_is_refused(tmp_path, write_grid):
    """A grid that sets no batch_size pretrains at PretrainConfig's: that one must split over the processes."""
    from study.train import PretrainConfig

    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\ngpus_per_node: 6\nstages:\n  pretrain: {gpus: node}\n")
    g = write_grid("name: t\ndatasets:\n  alpha: {train: alpha_train, test: alpha_val}\n"
                   "defaults:\n  pretrain: {backbone: resnet18, epochs: 1}\n"
                   "axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", base=False)
    assert PretrainConfig.batch_size % 6
    with pytest.raises(StudyError, match=f"pretraining batch_size {PretrainConfig.batch_size} does not split over "
                                         "the 6 processes of a job"):
        plan_grid(g, p).check(manifests=False)


def test_a_fine_tune_on_every_labeled_image_has_its_schedule_checked(tmp_path, monkeypatch, capsys, write_grid):
    """An entry without labeled_sizes fine-tunes on every labeled image: a warmup that fills that run is refused."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 40_000, ["x", "y"])
    _fake_manifest(tmp_path, "alpha_val", 1_000, ["x", "y"])
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - protocol: scratch
          params:
            finetune: {steps: 80}
    """, pretrain={"steps": 10, "batch_size": 1000, "optim": "{warmup_epochs: 0}"})
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "evaluate.finetune.optim.warmup_epochs 5 x " in err, err
    assert "(labeled size" not in err, err


def test_granularity_levels_come_from_the_test_manifest_and_are_columns_of_both(tmp_path, monkeypatch, write_grid):
    """An entry without `levels` scores the test manifest's taxonomy; a level the labeled set's table lacks is
    named at that manifest."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    levels = ("genus", "species")
    _fake_manifest(tmp_path, "alpha_train", 40_000, ["x", "y"], levels=levels)
    _fake_manifest(tmp_path, "alpha_val", 1_000, ["x", "y"], levels=levels)
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: granularity, labeled_sizes: [100]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    assert plan_grid(g).check() == []
    _fake_manifest(tmp_path, "alpha_train", 40_000, ["x", "y"], levels=("genus",))
    with pytest.raises(StudyError, match=r"granularity levels \['species'\] are not columns of manifest alpha_train"):
        plan_grid(g).check()
    # a level misspelt in the grid, which neither manifest has: one problem naming both, not one per manifest
    _fake_manifest(tmp_path, "alpha_train", 40_000, ["x", "y"], levels=levels)
    g.write_text(g.read_text().replace("labeled_sizes: [100]", "labeled_sizes: [100], levels: [genus, specie]"))
    with pytest.raises(StudyError) as e:
        plan_grid(g).check()
    said = str(e.value)
    assert said.count("are not columns of") == 1 and ("granularity levels ['specie'] are not columns of manifests "
                                                      "alpha_train and alpha_val (their taxonomy levels: genus, "
                                                      "species, class_name)") in said, said


def test_a_selection_is_checked_for_its_own_jobs_only(write_grid, tmp_path, monkeypatch, capsys):
    """`--where size=500` of a grid whose 2k pretraining the manifest cannot hold plans and runs; the whole grid
    is refused for the 2k job's size."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 1000, ["a", "b"])
    _fake_manifest(tmp_path, "alpha_val", 100, ["a", "b"])
    grid = write_grid("""\
        axes: {method: [simclr], dataset: [alpha], size: [500, 2k]}
        seeds: [0]
        stages:
          evaluate:
            - {protocol: linear, eval_datasets: same, labeled_sizes: [100]}
        """, pretrain={"optim": "{warmup_epochs: 0}"})
    code, _, err = run_plan_cli([str(grid)], capsys)
    assert code == 2 and "pretraining size 2000 (2k): manifest alpha_train has 1000 images" in err, err
    code, out, err = run_plan_cli([str(grid), "--where", "size=500"], capsys)
    assert code == 0 and "size 2000" not in err, err


def test_pretraining_that_no_evaluation_uses_is_warned_of_once(write_grid, capsys):
    """A byol pretraining that the one evaluation entry's `where` misses: trained, never scored nor drawn. A grid
    without evaluations (pretraining for later use) and a selection of its pretraining are not warned of."""
    body = """\
        axes: {method: [simclr, byol], dataset: [alpha], size: [500]}
        seeds: [0]
        stages:
          evaluate:
            - {protocol: linear, where: {method: [simclr]}, eval_datasets: same, labeled_sizes: [100]}
        """
    grid = write_grid(body, pretrain={"optim": "{warmup_epochs: 0}"})
    code, _, err = run_plan_cli([str(grid), "--no-check"], capsys)
    (line,) = [w for w in err.splitlines() if "no evaluation" in w]
    byol = next(j for j in plan_grid(grid).jobs if j.axes["method"] == "byol")
    assert code == 0 and line == (f"study: warning: {grid}: 1 pretraining job(s) that no evaluation of the grid uses "
                                  f"(e.g. job {byol.id} (pretrain: method=byol, dataset=alpha, size=500, seed=0)): "
                                  "nothing will score or draw their encoders; widen an evaluation entry's `where` to "
                                  "them, or drop them from the axes, unless that is meant")
    code, _, err = run_plan_cli([str(grid), "--no-check", "--where", "method=simclr"], capsys)
    assert code == 0 and "no evaluation" not in err
    alone = write_grid(textwrap.dedent(body).split("stages:")[0] + "stages: {}\n", name="alone.yaml",
                       pretrain={"optim": "{warmup_epochs: 0}"})
    code, _, err = run_plan_cli([str(alone), "--no-check"], capsys)
    assert code == 0 and err == "" and len(plan_grid(alone).jobs) == 2, err


def test_a_method_that_does_not_train_has_no_schedule_warning(tmp_path, monkeypatch, capsys, write_grid):
    """`random` takes no step (its run never reads the schedule): no warmup warning for it at plan time, while a
    method that trains on the same schedule is warned of."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 1_000, ["x", "y"])  # 31 steps per epoch at batch 32
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train}
    defaults:
      pretrain: {backbone: resnet18, steps: 20, batch_size: 32, optim: {warmup_epochs: 0.5}}
    axes: {method: [random, simclr], dataset: [alpha], seed: [0]}
    stages: {}
    """, base=False)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0, err
    [warning] = [line for line in err.splitlines() if "pretraining job(s)" in line]
    assert "1 pretraining job(s)" in warning and "method=simclr" in warning, warning


def test_a_class_of_another_taxonomy_in_the_test_manifest_is_refused_at_plan_time(tmp_path, monkeypatch, write_grid):
    """A test manifest built without --classes-from, from another taxonomy file (a class moved to another genus),
    would fail each granularity job after its pretraining ("class 3 has several values"): named at plan time, with
    the class's name, the level and both values."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    levels = ("family", "genus", "class_name")
    for name, n, genus_of_y in (("alpha_train", 40_000, "g2"), ("alpha_val", 1_000, "g1")):
        _fake_manifest(tmp_path, name, n, ["x", "y"], levels=levels)
        pq.write_table(pa.table({"path": ["x/1", "y/1", "y/2"], "label": pa.array([0, 1, 1], pa.int64()),
                                 "class_name": ["x", "y", "y"], "family": ["f1", "f2", "f2"],
                                 "genus": ["g1", genus_of_y, genus_of_y]}), tmp_path / f"{name}.parquet")
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: granularity, labeled_sizes: [100], levels: [family, class_name]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "protocol: granularity" in t)
    with pytest.raises(StudyError) as e:
        plan_grid(g).check()
    assert (f"{g}:{line}: class 'y' has genus 'g2' in manifest alpha_train but 'g1' in alpha_val: granularity would "
            f"map its predictions up another taxonomy; delete {tmp_path}/alpha_val.parquet") in str(e.value)
    assert "--classes-from alpha_train" in str(e.value)
    only_family = tmp_path / "family.yaml"  # genus is not on the path to any level scored: no clash
    only_family.write_text(g.read_text().replace("levels: [family, class_name]", "levels: [family]"))
    assert plan_grid(only_family).check() == []
    for name in ("alpha_train", "alpha_val"):  # a taxonomy whose finest level is no class_name (iNat21's species):
        meta = json.loads((tmp_path / f"{name}.json").read_text())  # the job scores class_name alone, genus unread
        (tmp_path / f"{name}.json").write_text(json.dumps({**meta, "levels": ["family", "genus"]}))
    assert plan_grid(g).check() == []


def test_a_taxonomy_clash_of_an_inat21_pair_is_not_told_to_rebuild_with_a_taxonomy_file(tmp_path, monkeypatch,
                                                                                      write_grid):
    """iNat21's taxonomy comes from its JSON's categories, not from a --taxonomy FILE (which would replace it): a val
    manifest built from another release's val.json (a class moved to another genus) is told to be rebuilt from the
    train manifest's release, with --classes-from; a pair whose taxonomy a CSV gave is told to use that CSV."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    levels = ("family", "genus", "species")

    def pair(train_sources, val_sources, reader):
        for name, n, genus_of_y, sources in (("alpha_train", 40_000, "g2", train_sources),
                                             ("alpha_val", 1_000, "g1", val_sources)):
            _fake_manifest(tmp_path, name, n, ["x", "y"], levels=levels, sources=sources, dataset=reader)
            pq.write_table(pa.table({"path": ["x/1", "y/1"], "label": pa.array([0, 1], pa.int64()),
                                     "class_name": ["x", "y"], "species": ["x", "y"], "family": ["f1", "f2"],
                                     "genus": ["g1", genus_of_y]}), tmp_path / f"{name}.parquet")

    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: granularity, labeled_sizes: [100], levels: [family, genus, species]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    pair([{"path": "train.json", "sha256": "0" * 64}], [{"path": "val.json", "sha256": "1" * 64}], "inat21")
    with pytest.raises(StudyError) as e:
        plan_grid(g).check()
    message = str(e.value)
    assert "class 'y' has genus 'g2' in manifest alpha_train but 'g1' in alpha_val" in message, message
    assert "--taxonomy FILE and" not in message and "alpha_train's --taxonomy" not in message, message
    assert ("rebuild it with --classes-from alpha_train, from annotation files whose categories give its taxonomy "
            "(the inat21 release of its train.json;") in message, message
    csv = [{"path": "taxonomy.csv", "sha256": "2" * 64, "role": "taxonomy"}]
    pair(csv, csv, "imagefolder")
    with pytest.raises(StudyError) as e:
        plan_grid(g).check()
    assert "rebuild it with alpha_train's --taxonomy FILE and --classes-from alpha_train" in str(e.value), e.value

def test_a_granularity_level_of_one_value_in_the_test_manifest_is_warned_at_plan_time(tmp_path, monkeypatch,
                                                                                     write_grid):
    """A level whose every test image has one value (a subset of one kingdom) scores 1.0 whatever the encoder: said
    once per (level, manifest) at the line of `levels`, with the value and the jobs it concerns; a level of two
    values, told apart only by their paths (two genera g in two families), is not."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    levels = ("kingdom", "family", "genus", "class_name")
    for name in ("alpha_train", "alpha_val"):
        _fake_manifest(tmp_path, name, 40_000 if name == "alpha_train" else 1_000, ["x", "y"], levels=levels)
        pq.write_table(pa.table({"path": ["x/1", "y/1"], "label": pa.array([0, 1], pa.int64()),
                                 "class_name": ["x", "y"], "kingdom": ["Animalia"] * 2, "family": ["f1", "f2"],
                                 "genus": ["g", "g"]}), tmp_path / f"{name}.parquet")
    g = write_grid("""
    axes: {method: [simclr, byol], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: granularity, labeled_sizes: [100],
           levels: [kingdom, family, genus, class_name]}
    """, pretrain={"optim": "{warmup_epochs: 0}"})
    warnings = plan_grid(g).check()
    line = line_of(g, "levels: [kingdom")
    [warning] = [w for w in warnings if "granularity level" in w]
    assert warning.startswith(f"{g}:{line}: granularity level kingdom has one value in manifest alpha_val "
                              "('Animalia'): every prediction maps up to it, so its accuracy is 1.0 whatever the "
                              "encoder (2 job(s), e.g. job "), warning
    assert warning.endswith("drop it from `levels`, or test on a manifest that spans several")
    (g.parent / "two.yaml").write_text(g.read_text().replace("kingdom, ", ""))
    assert not [w for w in plan_grid(g.parent / "two.yaml").check() if "granularity level" in w]


def test_a_size_that_is_every_image_of_its_manifest_beside_all_is_warned_of(tmp_path, monkeypatch, capsys, write_grid):
    """Sizes [500, 1000, all] of a manifest of 1000 images: 1000 and `all` are two jobs (two ids, two report lines)
    of the same images; warned of once at the size line; not where `all` is not planned beside it."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))
    _fake_manifest(tmp_path, "alpha_train", 1_000, ["x", "y"])
    grid = """
    name: t
    datasets:
      alpha: {{train: alpha_train}}
    defaults:
      pretrain: {{backbone: resnet18, steps: 20, batch_size: 32, optim: {{warmup_epochs: 0}}}}
    axes: {{method: [simclr], dataset: [alpha], seed: [0, 1], size: [{sizes}]}}
    stages: {{}}
    """
    g = write_grid(grid.format(sizes="500, 1000, all"), base=False)
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 0, err
    [warning] = [line for line in err.splitlines() if "every image" in line]
    assert warning.startswith(f"study: warning: {g}:{line_of(g, 'axes:')}: pretraining size 1k is every image of "
                              "manifest alpha_train, as size `all` beside it is (2 job(s), e.g. job "), warning
    assert warning.endswith("drop one of the two sizes"), warning
    for sizes in ("500, 1000", "500, 999, all"):
        g = write_grid(grid.format(sizes=sizes), base=False)
        code, _, err = run_plan_cli([str(g)], capsys)
        assert code == 0 and "every image" not in err, err


def test_pretrain_cpus_not_a_multiple_of_its_gpus_is_a_warning(write_grid, capsys):
    """A pretraining job on several GPUs runs one task per GPU of cpus // gpus CPUs: cpus 10 over gpus 4 leaves two
    idle (the warning names the grid's cpus line and the multiple to ask for); fewer CPUs than GPUs takes one each,
    more than asked; a multiple, or one GPU, is not named."""
    body = """
    axes: {method: [simclr], dataset: [alpha], size: [1k]}
    stages:
      pretrain:
        resources: {gpus: 4, cpus: CPUS}
      evaluate:
        - {protocol: linear, labeled_sizes: [100]}
    """
    warned = {}
    for cpus in (10, 3, 8):
        g = write_grid(body.replace("CPUS", str(cpus)), name=f"g{cpus}.yaml")
        code, _, err = run_plan_cli([str(g), "--no-check"], capsys)
        assert code == 0, err
        warned[cpus] = [w for w in err.splitlines() if "pretrain resources: cpus" in w]
    line = line_of(g, "resources: {gpus: 4")
    assert len(warned[10]) == 1 and warned[10][0].startswith(
        f"study: warning: {g.parent / 'g10.yaml'}:{line}: pretrain resources: cpus 10 over gpus 4: a pretraining job "
        "runs one task per GPU of 2 CPU(s) each"), warned[10]
    assert warned[10][0].endswith("so 2 CPU(s) asked for sit idle; ask for a multiple of gpus (cpus: 8)")
    assert warned[3][0].endswith("so 1 CPU(s) more than asked are taken; ask for a multiple of gpus (cpus: 4)")
    assert warned[8] == []
