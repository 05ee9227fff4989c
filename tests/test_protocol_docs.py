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
# a method's settings are documented as `<method>.<key>` (`moco.dim`): its bare key may be another's (`byol.dim`)
PREFIX = {cls: f"{name}." for name, cls in method_settings().items()}


def quoted_tokens() -> list[str]:
    return [token for doc in DOCS for token in re.findall(r"`([^`]+)`", (REPO / doc).read_text())]


def undocumented(keys: list[str], tokens: list[str]) -> list[str]:
    """The `keys` no token names: a plain key as a whole word (`optim.lr` names `lr`, not `lr_scaling`), a dotted
    one from its start (`moco.dim`, not in `x.moco.dim`)."""
    quoted = " ".join(tokens)
    return [key for key in keys
            if not re.search(rf"(?<![\w{'.' if '.' in key else ''}]){re.escape(key)}(?![\w])", quoted)]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_settable_key_is_in_the_protocol_docs(cls):
    keys = [PREFIX.get(cls, "") + name for name in settable(cls)]
    missing = undocumented(keys, quoted_tokens())
    assert not missing, f"{cls.__name__} keys named in neither {' nor '.join(DOCS)}: {missing}"


def test_a_methods_setting_is_documented_under_its_own_name():
    """`pretrain.<method>.dim` was taken as documented by another method's `moco.dim` row: a new method's setting
    could go undocumented while the test passed."""
    assert undocumented(["moco.dim", "simsiam.dim"], ["moco.dim", "byol.dim"]) == ["simsiam.dim"]
    assert undocumented(["lr", "dim"], ["optim.lr", "moco.dim"]) == []  # a plain key: any section's spelling


def _row(doc: str, first: str) -> str:
    """The line of docs/protocol.md's table whose first cell is `first`."""
    rows = [line for line in (REPO / doc).read_text().splitlines() if line.startswith(f"| {first} |")]
    assert len(rows) == 1, f"{doc}: expected one row `| {first} |`, found {len(rows)}"
    return rows[0]


def test_every_registered_method_is_in_the_method_row_and_every_recipe_in_the_recipes_row():
    """docs/contributing.md: a method's defaults and their sources go in docs/protocol.md; its name in the `method`
    row, its optimizer recipe (`Method.optim`) in the `method recipes` row, whichever file registered it."""
    from study.train.methods import METHODS

    named = set(re.findall(r"`([^`]+)`", _row(DOCS[0], "`method`").split(" | ", 3)[3]))
    recipes = set(re.findall(r"`([^`]+)`", _row(DOCS[0], "method recipes")))
    assert [m for m in METHODS if m not in named] == [], f"{DOCS[0]}: methods missing from the `method` row's notes"
    assert [m for m in METHODS if METHODS.get(m).optim and m not in recipes] == [], \
        f"{DOCS[0]}: methods with an `optim` recipe missing from the `method recipes` row"


def test_every_registered_backbone_is_in_the_backbone_row():
    """docs/contributing.md: a backbone's name goes in docs/protocol.md's `backbone` row, whichever file registered
    it."""
    from study.train.backbones import BACKBONES

    named = set(re.findall(r"`([^`]+)`", _row(DOCS[0], "`backbone`").split(" | ", 1)[1]))
    assert [b for b in BACKBONES.names() if b not in named] == [], \
        f"{DOCS[0]}: backbones missing from the `backbone` row"


def test_every_evaluation_protocol_is_in_the_protocol_row_and_no_other():
    """docs/contributing.md: a protocol's name goes in docs/protocol-evaluation.md's `protocol` row (its default and
    its notes), and a name there is a protocol of the table (a dotted token is a setting: `linear.standardize`)."""
    from study.evaluate.protocols import PROTOCOLS

    row = _row(DOCS[1], "`protocol`").split(" | ", 1)[1]
    named = {t for t in re.findall(r"`([^`]+)`", row) if "." not in t}
    assert sorted(named) == sorted(PROTOCOLS), f"{DOCS[1]}: the `protocol` row names {sorted(named)}"


def test_every_method_and_backbone_the_rows_name_is_registered():
    """The other way round: a name the `method` or `backbone` row gives (its default and its notes) that no longer
    registers (renamed, removed) would send a grid to a refused value; a dotted token (`pretrained.encoder_file`)
    is a setting, not a name."""
    from study.train.backbones import BACKBONES
    from study.train.methods import METHODS

    unknown = []
    for first, registry in (("`method`", METHODS), ("`backbone`", BACKBONES)):
        cells = _row(DOCS[0], first).split(" | ")
        names = {t for cell in (cells[1], cells[3]) for t in re.findall(r"`([^`.]+)`", cell)}
        assert len(names) >= 3, f"{first} row: found only {sorted(names)}"  # the parser reads the row
        unknown += [f"{first}: {n}" for n in sorted(names) if n not in registry]
    assert unknown == [], f"{DOCS[0]}: names no registry holds"


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


# the keys whose value (or values) what is known of Cole et al.'s protocol states: the method (SimCLR main),
# ResNet-50, the pretraining sizes, the (unconfirmed) 1000 epochs, linear probes, the validation split as test set,
# the taxonomy levels and the species-level classifier mapped up; everything else is a recipe's or ours
PAPER_STATED = {"method", "backbone", "size", "epochs", "protocol", "train_manifest", "test_manifest", "levels",
                "per_level"}


def paper_sourced_rows() -> list[tuple[str, str, str]]:
    """(doc, first cell, source cell) of each protocol-table row whose source names Cole et al. (`paper`, not a
    recipe's own paper such as "SimCLR paper", nor "ours (the paper mentions ...)")."""
    rows = []
    for doc in DOCS:
        for line in (REPO / doc).read_text().splitlines():
            cells = line.split(" | ")
            if line.startswith("| ") and len(cells) > 3 and re.match(r"paper\b", cells[2]):
                rows.append((doc, cells[0].lstrip("| "), cells[2]))
    return rows


def test_only_settings_the_paper_states_are_sourced_to_it():
    """A row sourced to the paper claims its value for Cole et al.: the paper leaves sampling, recipes and most
    evaluation settings unstated, so such a row must be one of PAPER_STATED (e.g. `labeled_sizes` is ours)."""
    rows = paper_sourced_rows()
    claimed = {key for _, first, _ in rows for key in re.findall(r"`([^`]+)`", first)}
    assert {"method", "epochs", "levels"} <= claimed  # the parser finds the rows it checks
    assert sorted(claimed - PAPER_STATED) == []


def test_the_labeled_subsets_drawing_is_labelled_ours():
    """The paper does not say how its labeled subsets were drawn: the class-balanced, nested rule is ours."""
    row = _row(DOCS[1], "`train_manifest` / `test_manifest`")
    source, notes = row.split(" | ")[2], row.split(" | ")[3]
    assert "ours" in source and "class-balanced, nested: ours" in notes
