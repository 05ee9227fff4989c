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
from study.lazy import lazy_names
from study.train.config import PretrainConfig

__all__ = ["PretrainConfig", "pretrain", "RunOutput", "StopRequested"]

__getattr__, __dir__ = lazy_names(__name__, "study.train.loop", ("pretrain", "RunOutput", "StopRequested"), __all__)
