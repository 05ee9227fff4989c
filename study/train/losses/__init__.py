"""The methods' losses as plain functions (supervised uses torch's cross-entropy)."""
from study.train.losses.byol_loss import byol_loss, byol_symmetric_loss
from study.train.losses.infonce import infonce
from study.train.losses.nt_xent import nt_xent

__all__ = ["nt_xent", "infonce", "byol_loss", "byol_symmetric_loss"]
