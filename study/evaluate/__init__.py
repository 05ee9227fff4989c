"""Evaluation of pretrained encoders: linear probes, kNN, label granularity, concatenated features (frozen
features, extracted once and cached), fine-tuning and supervised training from scratch.

    from study.evaluate import EvalConfig, evaluate
    out = evaluate(EvalConfig.from_dict({...}), run_dir, encoders=[path_to_encoder_pt], cache_dir=features_dir)

`evaluate` seeds torch's global generator from `cfg.seed` (fine-tuning and training from scratch, through
`study.train.pretrain`, Python's and NumPy's too).

The evaluation code is imported on first use of `evaluate` or `RunOutput`: the configs alone are what `study plan`
validates.
"""
from study.evaluate.config import EvalConfig, KnnConfig, LinearConfig
from study.lazy import lazy_names

__all__ = ["EvalConfig", "LinearConfig", "KnnConfig", "evaluate", "RunOutput"]

__getattr__, __dir__ = lazy_names(__name__, "study.evaluate.run", ("evaluate", "RunOutput"), __all__)
