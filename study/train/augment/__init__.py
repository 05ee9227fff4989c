"""Data augmentation for pretraining and evaluation: SimCLR, BYOL, supervised and eval presets.

    from study.train.augment import AugmentConfig, build_augment
    aug = build_augment(AugmentConfig.from_dict({"preset": "simclr", "image_size": 224}))
    views = aug.sample(pil_image, numpy_rng)        # per sample, loader workers: tuple of uint8 3 x S x S
    floats = aug.batch(collated_views, generator)   # per batch, training device: list of float32 B x 3 x S x S
    aug.describe()                                  # every effective parameter, for the result's protocol
"""
from study.train.augment.config import PRESETS, AugmentConfig, blur_kernel_size
from study.train.augment.pipeline import Augment, build_augment

__all__ = ["AugmentConfig", "Augment", "build_augment", "blur_kernel_size", "PRESETS"]
