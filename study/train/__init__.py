"""Pretraining (SimCLR, MoCo v2, BYOL, supervised, random-init) and fine-tuning from manifests.

    from study.train import PretrainConfig, pretrain
    out = pretrain(PretrainConfig.from_dict({...}), run_dir)   # {"metrics": [...], "protocol": {...}}
    out = pretrain({...}, run_dir)                              # the same: a dict is read by from_dict

`pretrain` prints its progress lines to stderr (`log_every_steps`), which `contextlib.redirect_stderr` captures.

`pretrain` seeds the process's global generators (Python's `random`, NumPy's, torch's) from `cfg.seed`, as training
libraries' seed-everything helpers do: a notebook's own random draws after it repeat from run to run.

The training loop is imported on first use of `pretrain`, `RunOutput` or `StopRequested`: the config alone is what
`study plan` validates.
"""
from study.train.config import PretrainConfig

__all__ = ["PretrainConfig", "pretrain", "RunOutput", "StopRequested"]


def __getattr__(name: str):
    if name in ("pretrain", "RunOutput", "StopRequested"):
        from study.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too: `dir()`, `help()` and a notebook's tab completion list them before their first use."""
    return sorted({*globals(), *__all__})
