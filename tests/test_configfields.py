"""study.configfields: the typed configs' shared checks; each refusal is a StudyError naming the key."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from study.configfields import (build, count_or_none, device_name, mapping_or_none, nested, plain,
                                positive_num_or_none, refuse_unknown)
from study.errors import StudyError


@dataclass
class Optim:
    lr: float = 0.1
    betas: tuple[float, ...] = (0.9, 0.99)
    milestones: list[int] | None = None

    def validate(self, where: str) -> None:
        positive_num_or_none(self.lr, f"{where}.lr")


@pytest.mark.parametrize("bad", [True, -0.5, 0, float("nan"), "1"])
def test_a_positive_number_is_neither_a_bool_nor_zero_nor_nan(bad):
    with pytest.raises(StudyError, match=r"^optim.lr: expected a number > 0 or null"):
        positive_num_or_none(bad, "optim.lr")
    positive_num_or_none(None, "optim.lr")
    positive_num_or_none(2, "optim.lr")


@pytest.mark.parametrize("bad", [-1, True, 1.0])
def test_a_count_is_a_whole_number_of_zero_or_more(bad):
    with pytest.raises(StudyError, match=r"^limit: expected an integer >= 0 or null"):
        count_or_none(bad, "limit")
    count_or_none(0, "limit")
    count_or_none(None, "limit")


def test_unknown_keys_are_named_sorted_the_first_with_its_hint_and_the_known_ones_sorted():
    with pytest.raises(StudyError) as e:
        refuse_unknown({"zzz": 1, "lrr": 2, "lr": 3}, {"lr", "betas", "milestones"}, "optim")
    assert str(e.value) == ("optim: unknown key(s) 'lrr', 'zzz' (did you mean 'lr'?) "
                            "(known: betas, lr, milestones)")


def test_a_nested_section_is_an_instance_or_a_mapping_whose_lists_become_tuples_only_for_tuple_fields():
    given = Optim(lr=0.5)
    assert nested(Optim, given, "optim") is given
    got = nested(Optim, {"betas": [0.8, 0.9], "milestones": [10, 20]}, "optim")
    assert got.betas == (0.8, 0.9) and got.milestones == [10, 20]
    with pytest.raises(StudyError, match=r"^optim: expected a mapping, got \[1\]"):
        nested(Optim, [1], "optim")


def test_a_mapping_is_copied_so_the_config_never_shares_the_grids_dict():
    grid_section = {"a": 1}
    got = mapping_or_none(grid_section, "params")
    got["a"] = 2
    assert grid_section == {"a": 1} and mapping_or_none(None, "params") is None


def test_build_refuses_a_section_that_is_not_a_mapping_and_parses_then_validates_the_rest():
    with pytest.raises(StudyError, match=r"^pretrain.optim: expected a mapping, got list$"):
        build(Optim, [("lr", 1)], "pretrain.optim", {})
    cfg = build(Optim, {"lr": "2", "betas": (0.5,)}, "pretrain.optim", {"lr": lambda v, where: float(v)})
    assert cfg == Optim(lr=2.0, betas=(0.5,))
    with pytest.raises(StudyError, match=r"^pretrain.optim.lr: expected a number > 0"):
        build(Optim, {"lr": -1}, "pretrain.optim", {})


def test_build_refuses_an_unknown_key_and_parses_the_fields_in_their_order():
    """A typo is named, not dropped; of two bad fields the first of the dataclass is reported, whatever the order
    of the mapping's keys."""
    with pytest.raises(StudyError, match=r"^evaluate: unknown key\(s\) 'lrr' \(did you mean 'lr'\?\)"):
        build(Optim, {"lrr": 1}, "evaluate", {})

    def refuse(v, where):
        raise StudyError(f"{where}: bad")

    with pytest.raises(StudyError, match=r"^o\.lr: bad$"):
        build(Optim, {"betas": [1], "lr": 1}, "o", {"lr": refuse, "betas": refuse})


@pytest.mark.parametrize("value, ok", [("auto", True), ("cpu", True), ("cuda", True), ("cuda:1", True),
                                       ("cuda:x", False), ("cudax", False), ("cuda:", False), ("gpu", False),
                                       ("CPU", False), (0, False), (None, False)])
def test_a_device_setting_is_auto_cpu_or_cuda_n(value, ok):
    """Checked when the config is read (`study plan`), not when each job starts: `cuda:x` passed the plan and every
    job then stopped on it."""
    if ok:
        device_name(value, "evaluate.device")
    else:
        with pytest.raises(StudyError, match=r"^evaluate\.device: expected 'auto', 'cpu' or 'cuda\[:N\]', got "):
            device_name(value, "evaluate.device")


def test_plain_copies_yaml_data_as_dicts_and_lists_sharing_nothing_with_the_original(tmp_path):
    from study.grids.yamlio import YMap, load_yaml

    (tmp_path / "t.yaml").write_text("a: {b: [1, {c: 2}]}\nd: x\n")
    src = load_yaml(tmp_path / "t.yaml")
    assert isinstance(src["a"], YMap)
    src["t"] = (1, (2, 3))
    out = plain(src)
    assert out == {"a": {"b": [1, {"c": 2}]}, "d": "x", "t": [1, [2, 3]]}
    assert type(out) is dict and type(out["a"]) is dict and type(out["a"]["b"]) is list
    assert type(out["a"]["b"][1]) is dict and type(out["t"][1]) is list
    out["a"]["b"][1]["c"] = 9
    assert src["a"]["b"][1]["c"] == 2  # a copy, not a view
