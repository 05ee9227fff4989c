"""`study encoder import`: an encoder trained elsewhere (a torchvision, MoCo, solo-learn, VISSL or DINO checkpoint of
a registered backbone) as a study encoder file, which a grid's `pretrained` method evaluates with the paper's
protocols (`defaults.pretrain.pretrained.encoder_file`).

The checkpoint is read with `torch.load(weights_only=True)` (no code of its runs; argparse's Namespace, which
DINO's checkpoints hold, read as data; any other object beside the weights, solo-learn's OmegaConf hyperparameters,
as an empty placeholder, where torch (>= 2.5) names them; a zip-format file's records checked against their CRC-32
first, where torch.save wrote them: a corrupt one is refused, not read as other weights). Its state dict is the
object itself, or the one `key` names (`state_dict`, `model`, `teacher`: a dotted path into nested dicts; without `key`,
the first of STATE_KEYS that holds tensors). Its encoder's keys are those under `prefix` (without it: the one prefix
the backbone's first weight, its stem (a ResNet's `conv1.weight`), is found under, e.g. `module.encoder_q.`),
stripped. Every weight and buffer of the backbone must be there, in its shape; the checkpoint's other keys under the
prefix (a classifier `fc.*`, a projection head) are left out, and named, but not those under the backbone's own
modules (`layer1.2.*` of a ResNet-34 read as a ResNet-18: a deeper network's, refused).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from study.atomic import write_bytes
from study.configfields import positive_int
from study.errors import StudyError, os_reason
from study.hashing import file_sha256
from study.train.backbones import BACKBONES, build_backbone, encoder_payload
from study.train.checkpoint import load_error

# where checkpoints keep their weights (a dotted key: in nested dicts, as VISSL's trunk)
STATE_KEYS = ("state_dict", "model", "teacher", "student", "online_network",
              "classy_state_dict.base_model.model.trunk")
OPTIONAL = ("num_batches_tracked",)  # BatchNorm counters: torchvision's older checkpoints lack them
_BLOCK = re.compile(r"layer\d+\.\d+\.$")  # the end of a residual block's prefix


def import_encoder(src: str | Path, out: str | Path, backbone: str, width: int = 64, key: str | None = None,
                   prefix: str | None = None) -> dict[str, Any]:
    """Write `out`, a study encoder file of `backbone` (at `width`) holding the weights of the checkpoint `src`;
    returns what it records of them: `source` (its path), its `sha256`, `key`, `prefix`, the keys `left_out` (and
    `placeholders`: the classes read as placeholders, where it holds some).
    StudyError naming `src` for an unreadable checkpoint, no state dict, no or several encoders, a missing weight or
    a shape that does not fit; naming `out` where it is the checkpoint itself or cannot be written; nothing is written
    then."""
    src, out = Path(src), Path(out)
    if out.resolve() == src.resolve():  # the write would replace the checkpoint: its heads and other keys lost
        raise StudyError(f"{out} is the checkpoint {src} itself: write the study encoder file to another path (the "
                         "checkpoint would be replaced)")
    BACKBONES.get(backbone, "--backbone")
    positive_int(width, "--width")
    payload, unread = _read(src)
    state, key = _state_dict(payload, key, src)
    encoder = build_backbone(backbone, width)
    expected = encoder.state_dict()
    prefix = _prefix(state, prefix, backbone, next(iter(expected), "conv1.weight"), src)
    given = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing = [k for k in expected if k not in given and not k.endswith(OPTIONAL)]
    if missing:
        raise StudyError(f"{src}: {len(missing)} weight(s) of {backbone} (width {width}) not under prefix "
                         f"{prefix!r}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (another "
                         f"architecture? `--backbone`, `--width` and `--prefix` say which weights to read)")
    for k, v in expected.items():
        if k in given and tuple(given[k].shape) != tuple(v.shape):
            raise StudyError(f"{src}: {prefix}{k} has shape {tuple(given[k].shape)}, {backbone} (width {width}) "
                             f"needs {tuple(v.shape)}: another architecture or width")
    left_out = sorted(k for k in given if k not in expected)
    # a key under one of the backbone's own modules that it lacks (`layer1.2.*` of a ResNet-34 read as a ResNet-18)
    # is a deeper network's, not a head: reading the rest would score a network cut short
    modules = {k.split(".")[0] for k in expected}
    deeper = [k for k in left_out if k.split(".")[0] in modules]
    if deeper:
        raise StudyError(f"{src}: {len(deeper)} weight(s) under prefix {prefix!r} in {backbone}'s own modules that "
                         f"it does not have: {', '.join(deeper[:5])}{' ...' if len(deeper) > 5 else ''} (a deeper "
                         f"network's? `--backbone` names the architecture the checkpoint was trained as)")
    encoder.load_state_dict({k: given.get(k, v) for k, v in expected.items()})
    provenance = {"source": str(src.resolve()), "sha256": file_sha256(src), "key": key, "prefix": prefix,
                  "left_out": left_out, **({"placeholders": unread} if unread else {})}
    buffer = io.BytesIO()
    torch.save(encoder_payload(encoder, None, {"imported": provenance}), buffer)
    try:
        write_bytes(out, buffer.getvalue())
    except OSError as e:  # else named by the temporary file it was written to first
        raise StudyError(f"{out}: cannot write the encoder file ({os_reason(e)})") from None
    return provenance


# objects of no code that training scripts save beside their weights, read as data: argparse's Namespace (DINO's
# `args`, a Lightning checkpoint's hyperparameters where its script passed one)
SAFE_OBJECTS = (argparse.Namespace,)


class _Placeholder:
    """An object of another class that a checkpoint holds beside its weights (solo-learn's hyperparameters, an
    OmegaConf DictConfig, and its nodes), read as an empty OrderedDict that keeps what the file sets on it as inert
    data: no code of that class runs, nor need it be installed."""

    def __new__(cls, *args, **kwargs):
        return collections.OrderedDict()


@contextlib.contextmanager
def _safe_objects(placeholders: list[str] | tuple[str, ...] = ()) -> Iterator[None]:
    """SAFE_OBJECTS, and the classes named in `placeholders` as _Placeholder, loadable by
    `torch.load(weights_only=True)` within, only: torch's own context manager (torch >= 2.5), else (2.4, never given
    placeholders) its process-wide list, extended for the load and restored after."""
    serialization = torch.serialization
    if hasattr(serialization, "safe_globals"):
        with serialization.safe_globals([*SAFE_OBJECTS, *((_Placeholder, name) for name in placeholders)]):
            yield
        return
    before = list(serialization.get_safe_globals())  # a copy: 2.4 hands out its live list, which the add extends
    serialization.add_safe_globals(list(SAFE_OBJECTS))
    try:
        yield
    finally:
        serialization.clear_safe_globals()
        serialization.add_safe_globals(before)


def _read(src: Path) -> tuple[Any, list[str]]:
    """(the checkpoint at `src`, the classes it holds that were read as placeholders); StudyError naming `src` where
    it is missing, corrupt, cut short, or holds an object that cannot be read as a placeholder."""
    try:
        _check_records(src)
        placeholders = _foreign_classes(src)
        with _safe_objects(placeholders):
            return torch.load(src, map_location="cpu", weights_only=True), placeholders
    except FileNotFoundError:
        raise StudyError(f"{src}: checkpoint not found") from None
    except OSError as e:  # a folder, no permission: not a matter of what the file holds
        raise StudyError(f"{src}: cannot read the checkpoint ({os_reason(e)})") from None
    except StudyError:
        raise
    except Exception as e:
        text = str(e)
        # an object weights_only refuses (torch's own kinds, os's and sys's, any with torch 2.4), not bytes it cannot
        # parse (a file of text: "Unsupported operand")
        refused = any(w in text for w in ("Weights only load failed", "WeightsUnpickler")) and "operand" not in text
        if isinstance(e, pickle.UnpicklingError) and refused:
            raise StudyError(f"{src}: cannot read its weights ({load_error(e)}); where it holds other objects, save "
                             "its state dict alone first, in Python, for a file you trust: ckpt = torch.load(path, "
                             "weights_only=False); torch.save(ckpt['state_dict'], 'weights.pt') (DINO's: "
                             "ckpt['teacher'])") from None
        raise StudyError(f"{src}: cannot read its weights ({load_error(e)}): cut short or corrupt (copy it again), or "
                         "not a file torch.save wrote") from None


def _check_records(src: Path) -> None:
    """StudyError naming `src` and its first record whose bytes do not match the CRC-32 its zip directory holds
    (torch.save's format since torch 1.6): torch.load does not check them, and read a tensor with a flipped byte as
    other weights. A record whose directory holds 0 is not checked: torch.save wrote none (its
    `torch.utils.serialization.config.save.compute_crc32 = False`, a faster save; or a record of no bytes).
    A file of another format, or one cut short (no directory), is left to torch.load."""
    try:
        if not zipfile.is_zipfile(src):
            return
        with zipfile.ZipFile(src) as archive:
            bad = next((r.filename for r in archive.infolist() if r.CRC and not _matches_crc(archive, r)), None)
    except (zipfile.BadZipFile, OSError):  # torch.load says why
        return
    if bad is not None:
        raise StudyError(f"{src}: corrupt: its record {bad} does not match its checksum (CRC-32): copy the checkpoint "
                         "again")


def _matches_crc(archive: zipfile.ZipFile, record: zipfile.ZipInfo) -> bool:
    """Whether `record`'s bytes match its CRC-32 (zipfile checks it as the record is read to its end)."""
    try:
        with archive.open(record) as f:
            while f.read(1 << 24):
                pass
    except zipfile.BadZipFile:
        return False
    return True


def _foreign_classes(src: Path) -> list[str]:
    """The classes the checkpoint at `src` names that `torch.load(weights_only=True)` refuses, SAFE_OBJECTS aside,
    to read as placeholders: not torch's own (a tensor of another kind is to be refused by name, not read as a
    placeholder); [] where torch (< 2.5) cannot tell, or for a file not of torch.save's zip format."""
    serialization = torch.serialization
    if not hasattr(serialization, "get_unsafe_globals_in_checkpoint") or not hasattr(serialization, "safe_globals"):
        return []
    try:
        with _safe_objects():
            names = serialization.get_unsafe_globals_in_checkpoint(src)
    except Exception:  # not a zip, a TorchScript archive: torch.load says why
        return []
    return sorted(n for n in names if not n.startswith("torch."))


def _is_state(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _walk(payload: Any, key: str) -> tuple[Any, str | None]:
    """(the object the dotted `key` names in nested dicts `payload`, None), or (the last object reached, the part of
    `key` it lacks)."""
    obj = payload
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return obj, part
        obj = obj[part]
    return obj, None


def _state_dict(payload: Any, key: str | None, src: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """(the state dict `key` names in `payload`, that key); without `key`: the payload itself, else the first of
    STATE_KEYS holding one."""
    if key is not None:
        obj, lacking = _walk(payload, key)
        if lacking is not None:
            keys = ", ".join(sorted(map(str, obj))[:10]) if isinstance(obj, dict) else ""
            raise StudyError(f"{src}: no {key!r} (at {lacking!r}; keys there: {keys or 'none'})")
        if not _is_state(obj):
            raise StudyError(f"{src}: {key!r} holds no state dict (a mapping of names to tensors)")
        return obj, key
    if _is_state(payload):
        return payload, None
    for k in STATE_KEYS:
        obj, lacking = _walk(payload, k)
        if lacking is None and _is_state(obj):
            return obj, k
    keys = sorted(map(str, payload)) if isinstance(payload, dict) else []
    raise StudyError(f"{src}: found no state dict, at the top or under {', '.join(STATE_KEYS)} (keys: "
                     f"{', '.join(keys[:10]) or 'none'}): name it with --key")


def _prefix(state: dict[str, torch.Tensor], prefix: str | None, backbone: str, stem: str, src: Path) -> str:
    """`prefix`, checked to hold some key (a module's name without its final dot gets one); without it, the one
    prefix of the keys ending in `stem`, the backbone's first weight (a ResNet's `conv1.weight`)."""
    if prefix is not None:
        if prefix and not prefix.endswith(".") and any(k.startswith(prefix + ".") for k in state):
            prefix += "."  # `module.encoder_q` for `module.encoder_q.`: the module's name, not a part of its keys'
        if not any(k.startswith(prefix) for k in state):
            raise StudyError(f"{src}: no key starts with --prefix {prefix!r} (e.g. {', '.join(list(state)[:3])})")
        return prefix
    found = sorted(k[:-len(stem)] for k in state if k == stem or k.endswith("." + stem))
    found = [p for p in found if not _BLOCK.search(p)]  # a block's own conv1 (layer1.0.conv1) is not the stem
    if len(found) != 1:
        said = f"{len(found)}: {', '.join(repr(p) for p in found)}" if found else "none"
        raise StudyError(f"{src}: expected one encoder whose stem is `<prefix>{stem}` ({backbone}), found "
                         f"{said}: name the one to read with --prefix")
    return found[0]
