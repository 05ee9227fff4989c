"""study.evaluate.config.EvalConfig: what `from_dict` accepts and refuses, and what a result records."""
from __future__ import annotations

import pytest

from study.errors import StudyError
from study.evaluate.config import EvalConfig


def config(**over) -> EvalConfig:
    return EvalConfig.from_dict({"train_manifest": "tr", "test_manifest": "te", **over})


def test_a_weight_decay_of_zero_is_a_grid_value_and_a_negative_one_is_refused():
    assert config(linear={"weight_decays": [0, 1e-4]}).linear.weight_decays == (0.0, 1e-4)
    with pytest.raises(StudyError, match=r"evaluate\.linear\.weight_decays: expected a non-empty list of numbers >= 0"):
        config(linear={"weight_decays": [-1e-4]})


@pytest.mark.parametrize("key,good,value,why", [("history_size", 3, 0, "expected a positive integer"),
                                                ("history_size", 3, 2.5, "expected a positive integer"),
                                                ("tolerance_grad", 3, 0, "expected a number > 0"),
                                                ("tf32", True, 1, "expected true or false, got 1"),
                                                ("standardize", False, "yes", "expected true or false, got 'yes'")])
def test_a_probe_setting_out_of_range_is_refused_naming_it(key, good, value, why):
    assert config(linear={key: good}).recorded_dict()["linear"][key] == good
    with pytest.raises(StudyError, match=rf"linear\.{key}: {why}"):
        config(linear={key: value})


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_lbfgs_settings_are_not_recorded_for_an_optimizer_that_never_reads_them(optimizer):
    """adam and sgd read no gradient tolerance or history: a change of them changes no fingerprint of their probes."""
    cfg = config(linear={"optimizer": optimizer, "tolerance_grad": 1e-3, "history_size": 5})
    linear = cfg.recorded_dict()["linear"]
    assert linear["optimizer"] == optimizer and not {"tolerance", "tolerance_grad", "history_size"} & set(linear)


@pytest.mark.parametrize("key", ["manifest", "method", "subset", "size", "init_encoder"])
def test_a_finetune_setting_the_evaluation_makes_is_refused_naming_it(key):
    with pytest.raises(StudyError, match=rf"evaluate\.finetune\.{key}: is set by the evaluation; remove it"):
        config(protocol="finetune", finetune={key: "x"})


@pytest.mark.parametrize("protocol", ["finetune", "scratch"])
@pytest.mark.parametrize("key,place", [("steps", "finetune.steps"), ("optim", "finetune.optim"),
                                       ("lr", "finetune.optim.lr"), ("warmup_epochs", "finetune.optim.warmup_epochs")])
def test_a_training_setting_beside_finetune_is_pointed_under_it(protocol, key, place):
    """`params: {steps: 20}` (or `lr`, `optim`) on a fine-tune was an unknown key among the evaluation's, with no
    word of `finetune:`, where the run's training settings go."""
    with pytest.raises(StudyError) as e:
        config(protocol=protocol, **{key: 1})
    assert str(e.value) == (f"evaluate: unknown key(s) {key!r}: a setting of the {protocol} run's training: give it "
                            f"as evaluate.{place} (in a grid entry: params.{place})")


def test_a_training_setting_is_not_pointed_under_finetune_where_the_run_would_not_read_it():
    """A linear probe trains no network (`finetune` would be refused as unread); a fine-tune never reads `head`, and
    sets `size` itself: each is an unknown key, listed with the known ones."""
    for over in ({"steps": 5}, {"protocol": "finetune", "head": [8]}, {"protocol": "finetune", "size": 5}):
        with pytest.raises(StudyError) as e:
            config(**over)
        assert "finetune" not in str(e.value).split("(known:")[0] and "(known: " in str(e.value), over


def test_a_concat_without_knn_records_no_knn_settings_and_with_it_does():
    assert "knn" not in config(protocol="concat").recorded_dict()
    assert config(protocol="concat", also_knn=True).recorded_dict()["knn"] == {"k": 200, "temperature": 0.07}


def test_a_finetune_records_no_backbone_or_width_the_encoder_fixes_and_a_scratch_run_does():
    assert not {"backbone", "width"} & set(config(protocol="finetune").recorded_dict())
    assert {"backbone", "width"} <= set(config(protocol="scratch").recorded_dict())


def test_the_eval_transform_is_at_the_image_size_unless_augment_gives_one():
    assert config(image_size=64).augment_config().image_size == 64
    assert config(image_size=64, augment={"image_size": 32}).augment_config().image_size == 32


def test_labeled_sizes_are_counts_as_grids_write_them_or_all():
    """`EvalConfig` from Python takes the grid spelling of a size (`"1k"`) and keeps ints; zero is refused."""
    assert config(labeled_sizes=["1k", 250, "all", "2.5k"]).labeled_sizes == (1000, 250, "all", 2500)
    assert config(labeled_sizes="all").labeled_sizes == ("all",) and config(labeled_sizes=64).labeled_sizes == (64,)
    with pytest.raises(StudyError, match=r"evaluate\.labeled_sizes: expected a count >= 1, got 0 \(or all\)"):
        config(labeled_sizes=[0])
    with pytest.raises(StudyError,
                       match=r"labeled_sizes: expected a count such as 50000, 50k or 1M, got 'al' \(or all\)$"):
        config(labeled_sizes="al")
    with pytest.raises(StudyError, match=r"evaluate\.labeled_sizes: 1000 is listed twice$"):
        config(labeled_sizes=["1k", 1000])


def test_a_granularity_level_listed_twice_is_refused():
    """Scored once (the job keeps one map per level) but hashed twice: another job id for the same scores."""
    with pytest.raises(StudyError, match=r"evaluate\.levels: 'genus' is listed twice$"):
        config(protocol="granularity", levels=["genus", "species", "genus"])


@pytest.mark.parametrize("level", ["label", "rank", "path"])
def test_a_manifests_own_column_is_refused_as_a_granularity_level(level):
    """`label` as a level crashed the job (a column taken twice), `rank` or `path` failed it after the pretraining:
    refused with the config, when the grid is planned."""
    assert config(protocol="granularity", levels=["genus", "class_name"]).levels == ("genus", "class_name")
    with pytest.raises(StudyError, match=rf"evaluate\.levels: '{level}' is a manifest column of its own, not a "
                                         r"taxonomy level \(the finest level, the labels', is class_name\)$"):
        config(protocol="granularity", levels=["genus", level])
