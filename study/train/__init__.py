"""Pretraining (SimCLR, MoCo v2, BYOL, supervised, random-init) and fine-tuning from manifests.

    from study.train import PretrainConfig, pretrain
    out = pretrain(PretrainConfig.from_dict({...}), run_dir)   # {"metrics": [...], "protocol": {...}}
"""
from study.train.config import PretrainConfig
from study.train.loop import RunOutput, StopRequested, pretrain

__all__ = ["PretrainConfig", "pretrain", "RunOutput", "StopRequested"]
