"""A training protocol's run on a labeled subset (`finetune`: from an encoder; `scratch`: from random init; each
protocol's default recipe is its entry of study.evaluate.recipes.RECIPES), through the training loop
(`study.train.pretrain`, method `supervised`, subset `labeled`), so that a preempted job resumes exactly. The
network's own classifier is then scored on the test manifest (`run_finetune`: the entry of both in
study.evaluate.run.TRAINERS)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from study.configfields import is_int
from study.errors import StudyError
from study.evaluate.features import forward_rows
from study.evaluate.protocols import protocol as protocol_of
from study.evaluate.ranking import TopClasses
from study.evaluate.recipes import recipe
from study.train.augment import AugmentConfig
from study.train.backbones import read_encoder
from study.train.config import unread_settings


def unread(protocol: str, key: str, section: dict) -> str | None:
    """Why `finetune.<key>` changes no run of an evaluation whose section (its job's `evaluate`, as a grid makes it)
    is `section` (None where the run reads it), as `study.grids.checks.config.check_params` says it: the architecture
    is the encoder's (a protocol that starts from one: finetune), or the section's own `backbone` and `width` where it
    has them (one from random init, scratch: a grid fills them from the pretraining jobs); the run's method is
    supervised, a linear classifier on the backbone without projection head, temperature or another method's section;
    and the section's `epochs` replace `finetune.epochs` and `finetune.steps` (`pretrain_dict`), as `finetune.steps`
    replaces `finetune.epochs` (PretrainConfig.steps)."""
    from study.train.methods import method_settings

    if key in ("backbone", "width"):
        if protocol_of(protocol).encoders:
            return f"a fine-tune trains its encoder's own {key}, never this one"
        if section.get(key) is not None:  # `pretrain_dict`: the section's own, else `finetune`'s (a null: not one)
            return (f"a scratch baseline trains the evaluation's {key} (params' or defaults.evaluate's, else its "
                    "pretraining jobs')")
    elif key in unread_settings("supervised") or key in method_settings():
        return "the run trains method supervised (a linear classifier on the backbone), which never reads it"
    elif key in ("epochs", "steps") and section.get("epochs") is not None:
        return "the evaluation's epochs (params.epochs or defaults.evaluate.epochs) replace it"
    elif key == "epochs" and isinstance(section.get("finetune"), dict) and section["finetune"].get("steps") is not None:
        return "its finetune.steps, a step budget, replaces it"
    return None


def encoder_spec(path: Path) -> dict:
    """The spec ({"name", "width"}) of the encoder file at `path` (StudyError naming it when unreadable)."""
    return read_encoder(path)[0]


def pretrain_dict(cfg, n: int | None, rows: int, encoder: Path | None) -> dict:
    """The PretrainConfig fields of one fine-tuning run on `train_manifest.labeled(n)`. It trains at the image size
    and normalisation it is scored with (the eval transform's), unless `finetune` sets them itself; it starts from
    the protocol's recipe (study.evaluate.recipes)."""
    base = recipe(cfg.protocol)
    d = {**base, **(cfg.finetune or {})}
    if isinstance((cfg.finetune or {}).get("optim"), dict):
        d["optim"] = {**base["optim"], **cfg.finetune["optim"]}
    if cfg.epochs is not None:
        d["epochs"], d["steps"] = cfg.epochs, None
    if is_int(d["batch_size"]):  # else PretrainConfig names the bad value
        d["batch_size"] = min(d["batch_size"], rows)  # the sampler needs batch <= images
    if encoder is not None:
        spec = encoder_spec(encoder)
        d["backbone"], d["width"] = spec["name"], spec.get("width", 64)
    else:
        d["backbone"] = cfg.backbone or d.get("backbone", "resnet50")
        d["width"] = cfg.width or d.get("width", 64)
    scored = cfg.augment_config()
    d.setdefault("image_size", scored.image_size)
    if d.get("augment") is None or isinstance(d["augment"], dict):  # else PretrainConfig names the bad value
        train_aug = dict(d.get("augment") or {})
        for key in ("mean", "std"):  # only where they differ from the default: default recipes stay as they are
            if key not in train_aug and tuple(getattr(scored, key)) != tuple(getattr(AugmentConfig, key)):
                train_aug[key] = list(getattr(scored, key))
        if train_aug:
            d["augment"] = train_aug
    d.setdefault("device", cfg.device)
    d.setdefault("num_workers", cfg.num_workers)
    d.setdefault("seed", cfg.seed)
    d.update(manifest=cfg.train_manifest, method="supervised", subset="labeled", size=n,
             init_encoder=str(encoder) if encoder is not None else None)
    return d


def run_finetune(cfg, run_dir: Path, encoder: Path | None, n: int | None, rows: int, test_manifest, aug,
                 device: torch.device, workers: int) -> tuple[torch.Tensor | None, dict]:
    """Train (or resume) in `run_dir/<protocol>-<n>/`, then each test image's best 5 classes by the fine-tuned
    classifier (N x 5, as ranking.ranked gives them: None where a score is not finite), read by `workers` loader
    processes, and the run's protocol."""
    from study.train import PretrainConfig, pretrain
    from study.train.backbones import build_backbone
    from study.train.checkpoint import load_checkpoint
    from study.train.run_files import CHECKPOINT

    sub = Path(run_dir) / f"{cfg.protocol}-{'all' if n is None else n}"
    pcfg = PretrainConfig.from_dict(pretrain_dict(cfg, n, rows, encoder), where="evaluate.finetune")
    out = pretrain(pcfg, sub)
    state = load_checkpoint(sub / CHECKPOINT, ("method",))["method"]
    model_encoder = build_backbone(pcfg.backbone, pcfg.width)
    model_encoder.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
    outputs = state["classifier.weight"].shape[0]
    if outputs != test_manifest.num_classes:
        raise StudyError(f"{sub}: the classifier has {outputs} outputs, test manifest {test_manifest.name} "
                         f"{test_manifest.num_classes} classes")
    classifier = nn.Linear(model_encoder.feature_dim, outputs)
    classifier.load_state_dict({"weight": state["classifier.weight"], "bias": state["classifier.bias"]})
    model = nn.Sequential(model_encoder, classifier).to(device)
    top = TopClasses(5)  # the test images' scores are never held whole (iNat21: 100k x 10,000, 4 GB)
    ranks, seconds, _ = forward_rows(model, test_manifest, test_manifest.all(), aug, cfg.batch_size, device,
                                  workers, label=f"{cfg.protocol} n={n} scoring", keep=top)
    return ranks if top.finite else None, {**out["protocol"], "scoring_seconds": seconds, "run_dir": str(sub)}
