"""docs/protocol.md and docs/protocol-evaluation.md name every key a grid may set in a pretraining, augmentation or
evaluation section (each settable field of the config dataclasses), so that no setting is documented only in code."""
import dataclasses
import re
from pathlib import Path

import pytest

from study.evaluate.config import EvalConfig, KnnConfig, LinearConfig
from study.train.augment.config import AugmentConfig
from study.train.config import OptimConfig, PretrainConfig
from study.train.methods import method_settings

REPO = Path(__file__).resolve().parents[1]
DOCS = ("docs/protocol.md", "docs/protocol-evaluation.md")
INTERNAL = {"method_settings"}  # PretrainConfig's field behind `pretrain.<method>`: not a key of its own


def settable(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in INTERNAL]


CONFIGS = [PretrainConfig, OptimConfig, AugmentConfig, EvalConfig, LinearConfig, KnnConfig, *method_settings().values()]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_settable_key_is_in_the_protocol_docs(cls):
    quoted = " ".join(token for doc in DOCS for token in re.findall(r"`([^`]+)`", (REPO / doc).read_text()))
    missing = [name for name in settable(cls) if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", quoted)]
    assert not missing, f"{cls.__name__} keys named in neither {' nor '.join(DOCS)}: {missing}"


def test_every_key_the_protocol_tables_name_is_settable():
    sections = {"optim": OptimConfig, "augment": AugmentConfig, "linear": LinearConfig, "knn": KnnConfig,
                **method_settings()}
    known = {name for cls in CONFIGS for name in settable(cls)} | set(sections)
    unknown = []
    for doc in DOCS:
        for line in (REPO / doc).read_text().splitlines():
            if not line.startswith("| `"):
                continue
            for key in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
                section, _, name = key.rpartition(".")
                if key.startswith("_"):  # `checkpoint_every_steps` / `_minutes`: the first key's other ending
                    continue
                if name not in ({*settable(sections[section])} if section in sections else known):
                    unknown.append(f"{doc}: {key}")
    assert not unknown


def test_each_config_reads_back_its_to_dict():
    """docs/architecture.md, Conventions: a config turns back into a plain dict with `to_dict()`, which `from_dict`
    reads as the same config (not `dataclasses.asdict`: PretrainConfig's holds `method_settings`)."""
    configs = [PretrainConfig.from_dict({"manifest": "m", "method": "byol", "byol": {"tau_base": 0.99},
                                         "optim": {"lr": 0.5}, "augment": {"jpeg_draft": False}}),
               EvalConfig.from_dict({"train_manifest": "a", "test_manifest": "b", "linear": {"optimizer": "sgd"},
                                     "labeled_sizes": ["1k", "all"]}),
               AugmentConfig.from_dict({"preset": "byol", "image_size": 32})]
    for cfg in configs:
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
