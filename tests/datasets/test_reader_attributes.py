"""A reader's optional attributes (docs/contributing.md: `options`, `suggested_splits`, `splits`, `shared_files`,
`own_taxonomy`),
each checked where it is read: a value of the wrong kind is a StudyError naming the reader's module, not a traceback
of `study plan`; `shared_files` is what makes `study plan` look for test images among the labeled ones."""
import re
import textwrap
from pathlib import Path

import pytest

import study.cli
from study.datasets import DATASETS, ReaderOptions
from study.datasets.base import READER_ATTRIBUTES, reader_attribute
from study.datasets.imagefolder import index_class_tree
from study.errors import StudyError
from tests.image_trees import write_quadrant_tree

NAME = "one_tree_reader"


def read_one_tree(root: Path, split: str, options: ReaderOptions):
    """Every split is the whole tree of class folders at `root` (a reader whose splits share files)."""
    return index_class_tree(root, root)


@pytest.fixture
def one_tree_reader():
    """`read_one_tree` registered as NAME, its attributes removed and the registration undone afterwards."""
    DATASETS.register(NAME)(read_one_tree)
    yield read_one_tree
    for attr in READER_ATTRIBUTES:
        if hasattr(read_one_tree, attr):
            delattr(read_one_tree, attr)
    DATASETS.unregister(NAME)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_reader_has_its_attributes_of_the_kind_they_take(name):
    assert reader_attribute(name, "options") == tuple(reader_attribute(name, "options"))
    assert set(reader_attribute(name, "options")) <= set(ReaderOptions.__dataclass_fields__)
    assert isinstance(reader_attribute(name, "suggested_splits"), dict)
    assert all(isinstance(s, str) for s in reader_attribute(name, "splits"))
    assert reader_attribute(name, "shared_files") is None or isinstance(reader_attribute(name, "shared_files"), str)
    assert isinstance(reader_attribute(name, "own_taxonomy"), bool)


def test_the_readers_whose_splits_may_share_files_say_what_to_do():
    assert "another split" in reader_attribute("imagefolder", "shared_files")
    assert "occurrences" in reader_attribute("glc20", "shared_files")
    assert reader_attribute("imagenet", "shared_files") is None


@pytest.mark.parametrize("attr, value, message", [
    ("suggested_splits", ("train", "test"), "not a dict from a manifest name's tail"),
    ("suggested_splits", {"training": "train"}, "not a dict from a manifest name's tail"),
    ("options", ("crop",), "not a tuple of ReaderOptions fields (label_rule, channels)"),
    ("splits", "train", "not a tuple of split names"),
    ("shared_files", True, "not a string"),
    ("shared_files", "", "not a string (not empty"),  # "" is falsy: study plan skipped the check silently
    ("own_taxonomy", "yes", "not True or False"),
])
def test_an_attribute_of_the_wrong_kind_is_named_with_the_module(one_tree_reader, attr, value, message):
    setattr(one_tree_reader, attr, value)
    pattern = rf"reader '{NAME}' \({__name__}\): its `{attr}` attribute is .*{re.escape(message)}"
    with pytest.raises(StudyError, match=pattern):
        reader_attribute(NAME, attr)


def _grid(tmp_path: Path) -> Path:
    g = tmp_path / "g.yaml"
    g.write_text(textwrap.dedent(f"""\
        name: g
        datasets:
          alpha: {{reader: {NAME}, train: alpha_train, test: alpha_val}}
        defaults:
          pretrain: {{backbone: resnet18_small, width: 4, image_size: 12, steps: 2, batch_size: 4,
                     optim: {{warmup_epochs: 0}}}}
        axes: {{method: [simclr], dataset: [alpha], size: [20]}}
        stages:
          evaluate: [{{protocol: linear, labeled_sizes: [12]}}]
        """))
    return g


def test_study_plan_names_a_suggested_splits_of_the_wrong_kind(one_tree_reader, tmp_path, monkeypatch, capsys):
    """It was `AttributeError: 'tuple' object has no attribute 'get'` where a missing manifest's command is made."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    one_tree_reader.suggested_splits = {"val": "test"}
    assert study.cli.main(["plan", str(_grid(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert f"study manifest build --dataset {NAME} --root \"$ALPHA_ROOT\" --split test --name alpha_val" in err, err
    one_tree_reader.suggested_splits = ("train", "test")
    assert study.cli.main(["plan", str(_grid(tmp_path))]) == 2
    assert f"reader '{NAME}' ({__name__}): its `suggested_splits` attribute is ('train', 'test')" in \
        capsys.readouterr().err


def test_study_manifest_build_refuses_options_that_are_no_reader_option(one_tree_reader, tmp_path, capsys):
    write_quadrant_tree(tmp_path / "tree", per_class=2, seed=0)
    one_tree_reader.options = ("label_rules",)
    argv = ["manifest", "build", "--dataset", NAME, "--root", str(tmp_path / "tree"), "--split", "train", "--name", "a",
            "--label-rule", "species"]
    assert study.cli.main(argv) == 2
    assert "its `options` attribute is ('label_rules',)" in capsys.readouterr().err


def test_a_new_reader_with_shared_files_gets_the_plans_check_of_test_images_among_labeled_ones(
        one_tree_reader, tmp_path, monkeypatch, capsys):
    """Train and test manifests of one tree under one root: without `shared_files` the plan does not read their
    paths (the job refuses them after its pretraining); with it, the plan names the pair and the reader's remedy."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    write_quadrant_tree(tmp_path / "tree", per_class=5, seed=0)
    for split in ("train", "val"):
        assert study.cli.main(["manifest", "build", "--dataset", NAME, "--root", str(tmp_path / "tree"), "--split",
                               split, "--name", f"alpha_{split}"]) == 0
    g = _grid(tmp_path)
    capsys.readouterr()
    assert study.cli.main(["plan", str(g)]) == 0
    assert "test images of manifest" not in capsys.readouterr().err
    one_tree_reader.shared_files = "give each split a tree of its own"
    assert study.cli.main(["plan", str(g)]) == 2
    err = capsys.readouterr().err
    assert (f"{g}:3: 12 of the 20 test images of manifest alpha_val are among the 12 labeled images of alpha_train"
            in err), err
    assert err.rstrip().endswith("after its pretraining; give each split a tree of its own"), err


def test_a_new_reader_with_its_own_taxonomy_is_asked_no_taxonomy_file_by_the_plan(one_tree_reader, tmp_path,
                                                                                  monkeypatch, capsys):
    """The build commands of a granularity job's manifests ask a --taxonomy file, which would replace the levels of a
    reader that gives its own (`own_taxonomy`); that was iNat21's alone, by name, so a new such reader was asked one."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    g = _grid(tmp_path)
    g.write_text(g.read_text().replace("protocol: linear", "protocol: granularity"))
    assert study.cli.main(["plan", str(g)]) == 2
    err = capsys.readouterr().err
    assert '--split train --name alpha_train --sizes 20 --labeled-sizes 12 --taxonomy "$ALPHA_TAXONOMY"' in err, err
    one_tree_reader.own_taxonomy = True
    assert study.cli.main(["plan", str(g)]) == 2
    err = capsys.readouterr().err
    assert f"study manifest build --dataset {NAME} --root \"$ALPHA_ROOT\" --split train --name alpha_train" in err, err
    assert "--taxonomy" not in err and "_TAXONOMY" not in err, err
