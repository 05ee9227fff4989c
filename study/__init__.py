"""study: rerun and extend Cole et al. (CVPR 2022), "When Does Contrastive Visual Representation Learning Work?"."""

__version__ = "0.1.0"
