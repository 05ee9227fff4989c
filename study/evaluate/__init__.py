"""Evaluation of pretrained encoders: linear probes, kNN, label granularity, concatenated features (frozen
features, extracted once and cached), fine-tuning and supervised training from scratch.

    from study.evaluate import EvalConfig, evaluate
    out = evaluate(EvalConfig.from_dict({...}), run_dir, encoders=[path_to_encoder_pt], cache_dir=features_dir)
"""
from study.evaluate.config import EvalConfig, KnnConfig, LinearConfig
from study.evaluate.run import RunOutput, evaluate

__all__ = ["EvalConfig", "LinearConfig", "KnnConfig", "evaluate", "RunOutput"]
