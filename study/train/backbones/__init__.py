"""Encoders behind a registry: `build_backbone(name, width)` -> nn.Module returning pooled features, with
`.feature_dim` and `.spec` (the dict that rebuilds it); `load_encoder(path)` reads a run's `encoder.pt`
(`read_encoder(path)`: its spec and weights)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from study.errors import StudyError
from study.registry import Registry, import_modules
from study.train.checkpoint import load_error

BACKBONES: Registry = Registry("backbone")

import_modules(__name__, __path__)  # each module registers its backbones (resnet.py: the ResNets)


def build_backbone(name: str, width: int = 64) -> nn.Module:
    """A fresh, randomly initialised encoder (the global torch RNG decides its weights). ValueError for a registered
    function whose module gives no positive int `feature_dim` (the heads, probes and records read it)."""
    model = BACKBONES.get(name)(width=width)
    dim = getattr(model, "feature_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ValueError(f"backbone {name!r}: its module {type(model).__name__} gives feature_dim {dim!r}; set it to "
                         f"the width of the pooled features its forward returns, (batch, feature_dim)")
    model.spec = {"name": name, "width": int(width)}
    return model


def encoder_payload(encoder: nn.Module, recipe: str | None = None, protocol: dict | None = None) -> dict:
    """What `encoder.pt` holds: the spec to rebuild it, its weights (on CPU), `recipe`: the protocol fingerprint of
    the pretraining that made it (study.results.record.protocol_fingerprint; None when unknown), and `protocol`: what
    that fingerprint hashes, with the seed (left out when not given)."""
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    return {"backbone": dict(encoder.spec), "state_dict": state, "recipe": recipe,
            **({"protocol": protocol} if protocol is not None else {})}


def load_weights_into(encoder: nn.Module, path: str | Path, key: str) -> None:
    """Give `encoder` (a new one of the run's backbone and width) the weights of the encoder file at `path`, which
    the config's `key` names; StudyError naming that key where the file holds another architecture."""
    given = load_encoder(path)
    if given.spec != encoder.spec:
        raise StudyError(f"{key}: {path} holds {given.spec}, the run asks for {encoder.spec}")
    encoder.load_state_dict(given.state_dict())


def weights_sha256(module: nn.Module) -> str:
    """sha256 of a module's state dict: each entry's name, dtype, shape and bytes, in name order. The same weights
    give the same hash whatever file holds them (an encoder file's own sha256 also covers what it records)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _mapped_payload(path: str | Path) -> dict:
    """What an encoder file holds besides its weights, which are memory-mapped, not read; {} for a file that is none
    (read_encoder names it)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return {}
    return payload if isinstance(payload, dict) else {}


def encoder_provenance(path: str | Path) -> tuple[str | None, dict | None]:
    """(recipe, protocol) an encoder file carries (`encoder_payload`; None for what a file was written without, by
    older code or not by `pretrain`). The weights are not read: an evaluation reads the file whole once already, for
    its sha256."""
    payload = _mapped_payload(path)
    recipe, protocol = payload.get("recipe"), payload.get("protocol")
    return (recipe if isinstance(recipe, str) else None), (protocol if isinstance(protocol, dict) else None)


def encoder_spec(path: str | Path) -> dict | None:
    """The backbone spec (`{"name", "width"}`) an encoder file records, its weights not read; None for a file that is
    none."""
    spec = _mapped_payload(path).get("backbone")
    try:
        return {"name": spec["name"], "width": int(spec.get("width", 64))}
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def read_encoder(path: str | Path) -> tuple[dict, dict]:
    """(spec, state_dict) of the encoder file at `path`; StudyError naming it when missing, corrupt or foreign."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        spec, state = dict(payload["backbone"]), payload["state_dict"]
        if not isinstance(spec.get("name"), str) or not isinstance(state, dict):
            raise ValueError("its 'backbone' names no architecture, or its 'state_dict' is no dict")
        return spec, state
    except FileNotFoundError:
        raise StudyError(f"{path}: encoder file not found" + ("" if Path(path).is_absolute() else
                                                               f" (a relative path: read in {Path.cwd()})")) from None
    except Exception as e:  # corrupt or foreign file
        raise StudyError(f"{path}: not a study encoder file ({load_error(e)})") from None


def load_encoder(path: str | Path) -> nn.Module:
    """The encoder saved at `path` (a run's `encoder.pt`), on CPU, in eval mode."""
    path = Path(path)
    spec, state = read_encoder(path)
    model = build_backbone(spec["name"], spec.get("width", 64))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise StudyError(f"{path}: weights do not fit backbone {spec}: {e}") from None
    return model.eval()
