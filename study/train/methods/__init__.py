"""Pretraining methods behind a registry, one file each. A method is an nn.Module holding the encoder and
whatever else it trains or tracks (heads, target network, queue: all in its state_dict, so checkpoints hold them).

Interface used by the loop:
    METHODS.get(name)(cfg: PretrainConfig, encoder: nn.Module, num_classes: int) -> Method
    method(views: list[Tensor], labels: Tensor) -> (loss: Tensor, stats: dict)
        # stats: {}, or {"correct": 0-d Tensor, "seen": int} where the method counts train_top1 (supervised)
    method.after_step(step: int, total_steps: int)   # after each optimizer step (EMA updates)
    method.encoder, method.trains (False for `random`, `pretrained`), method.num_views
    method.protocol() -> dict   # entries of the run's protocol (SimCLR's head dims)
    Method.schedule_warning(cfg, steps) -> str | None   # settings a run's length does not fit
    Method.config_error(cfg) -> str | None   # what a config of the method lacks (`pretrained`: its encoder file)
    Method.file_settings   # its settings that name a file each job reads -> what it is (`encoder`: a study
                           # encoder file, of the job's backbone and width); `study plan` checks them
Used by the config: the class's `augment_preset` (study.train.augment's preset when the grid names none),
`default_temperature` (the contrastive loss's; None for a method without one), `min_batch_size` (the smallest
`batch_size` whose loss can train), `optim` (the method's own recipe:
`pretrain.optim` values used where the config sets none, over OptimConfig's defaults, which are SimCLR's; not at all
where the config names another optimizer) and
`settings` (a frozen dataclass of the method's own settings, set as `pretrain.<name>` in a grid and read as
`cfg.method_settings[<name>]`; its optional `validate(where)` raises StudyError naming the key; a method with
settings may not be named as a PretrainConfig field, and a run records its own method's settings only).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from study.errors import StudyError
from study.registry import Registry, import_modules

METHODS: Registry = Registry("method")


class Method(nn.Module):
    trains = True
    num_views = 2
    augment_preset = "simclr"
    default_temperature: float | None = None
    min_batch_size = 1
    optim: dict = {}  # read only: the method's optimizer recipe where it is not SimCLR's (OptimConfig's defaults)
    settings: type | None = None
    file_settings: dict[str, str] = {}  # read only: fields of `settings` naming a file each job reads -> its kind

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step (`step` = steps done so far)."""

    def protocol(self) -> dict:
        """What the run's protocol records of this method beyond its config's values (its own architecture)."""
        return {}

    @classmethod
    def config_error(cls, cfg) -> str | None:
        """What a PretrainConfig of this method lacks or holds that its run cannot take, starting with the key at
        fault (`pretrained.encoder_file: ...`), which the config's validation raises under its section; None where
        it can run."""
        return None

    @classmethod
    def schedule_warning(cls, cfg, steps: int) -> str | None:
        """A warning about a run of `cfg` (a PretrainConfig) of `steps` steps that this method's settings do not fit
        (e.g. a queue it never fills, or one smaller than a batch), starting with the key at fault
        (`moco.queue_size`); None where they fit. `study plan` says it, and the run logs it."""
        return None


def mlp(in_dim: int, dims: tuple[int, ...] | list[int], bn: bool = True, output_bn: bool = False) -> nn.Sequential:
    """Hidden layers Linear-(BN)-ReLU for dims[:-1], then a Linear to dims[-1]; with `output_bn` (SimCLR v2) that
    Linear has no bias and is followed by a BN that scales but does not shift (SimCLR v2's `center=False`)."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in dims[:-1]:
        layers += [nn.Linear(d, h, bias=not bn)] + ([nn.BatchNorm1d(h)] if bn else []) + [nn.ReLU(inplace=True)]
        d = h
    layers.append(nn.Linear(d, dims[-1], bias=not output_bn))
    if output_bn:
        out = nn.BatchNorm1d(dims[-1])
        out.bias = None  # scale only: a shift before NT-Xent's normalisation is what v2 leaves out
        layers.append(out)
    return nn.Sequential(*layers)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float, copy_buffers: bool = True) -> None:
    """target <- tau * target + (1 - tau) * online, for parameters; buffers (BN statistics) are copied where
    `copy_buffers` (BYOL's target), else the target keeps its own (MoCo's key encoder)."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(tau).add_(o.detach(), alpha=1 - tau)
    if copy_buffers:
        for t, o in zip(target.buffers(), online.buffers()):
            t.copy_(o)


def method_settings() -> dict[str, type]:
    """Registered name -> settings dataclass, for every method that has settings of its own. StudyError naming the
    method's class and module for such a method named as a PretrainConfig field (`pretrain.<name>` would be both), or
    settings not a frozen dataclass with a default for every field."""
    from study.train.config import PretrainConfig

    out = {name: METHODS.get(name).settings for name in METHODS if METHODS.get(name).settings is not None}
    for name, settings in out.items():  # validated once when read, then trusted: no later change
        cls = METHODS.get(name)
        where = f"method {name!r} ({cls.__module__}.{cls.__qualname__})"
        if not (dataclasses.is_dataclass(settings) and settings.__dataclass_params__.frozen):
            raise StudyError(f"{where}: its settings {settings.__name__} must be a frozen dataclass "
                             "(@dataclass(frozen=True))")
        required = [f.name for f in dataclasses.fields(settings)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if required:  # every config builds every method's settings: a grid that does not set them reads defaults
            raise StudyError(f"{where}: its settings {settings.__name__} give no default for {', '.join(required)} "
                             f"(a grid need not set pretrain.{name}: every field needs one)")
    clash = sorted(set(out) & {f.name for f in dataclasses.fields(PretrainConfig)})
    if clash:
        raise StudyError(f"method(s) {', '.join(clash)} "
                         f"({', '.join(METHODS.get(n).__module__ for n in clash)}) have settings under a name "
                         f"PretrainConfig uses for a setting of its own: rename the method")
    return out


import_modules(__name__, __path__)  # each method module registers itself
