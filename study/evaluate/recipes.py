"""The training protocols' default recipes (`trains=True` in study.evaluate.protocols), one entry of `RECIPES`
each: the PretrainConfig fields its runs start from, a grid's `finetune` section going on top and the supervised
method's `optim` recipe filling what they leave out (study.evaluate.finetune.pretrain_dict). Imports nothing heavy:
`study plan` prices a training job by its recipe's epochs and batch (study.grids.cost)."""
from __future__ import annotations

# ours, after SimCLR's fine-tuning recipe (Nesterov-free SGD momentum 0.9, lr 0.05 x batch/256, no warmup, no
# weight decay); 60 epochs is SimCLR's setting for its 1% labeled subset.
FINETUNE = {
    "batch_size": 256,
    "epochs": 60,
    "optim": {"name": "sgd", "lr": 0.05, "lr_scaling": "linear", "warmup_epochs": 0, "weight_decay": 0.0,
              "exclude_bias_and_norm": True},
    "checkpoint_every_minutes": 10.0,
}
# ours: training from random init takes a from-scratch recipe, not a fine-tuning one (no weight decay would favour
# fine-tuning in the comparison): the supervised method's (SGD 0.1 x batch/256, weight decay 1e-4, 5 warmup epochs)
# for 90 epochs, the standard ResNet-50 schedule length
SCRATCH = {**FINETUNE, "epochs": 90, "optim": {"lr_scaling": "linear"}}

RECIPES = {"finetune": FINETUNE, "scratch": SCRATCH}


def recipe(protocol: str) -> dict:
    """The default recipe of training protocol `protocol`; NotImplementedError for one without an entry (a table row
    added without it would otherwise train, and be priced, by another protocol's recipe)."""
    if protocol not in RECIPES:
        raise NotImplementedError(f"protocol {protocol!r} trains (study.evaluate.protocols) and has no default recipe "
                                  "in study.evaluate.recipes.RECIPES")
    return RECIPES[protocol]
