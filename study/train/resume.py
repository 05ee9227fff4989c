"""Resuming a run: what its checkpoint must match (`run_fingerprint`, compared as `comparable` has it) and the
run's sessions as the checkpoint holds them (`Sessions`: steps, times, recent losses, each session's code version,
threads and environment), restored by `restore`."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from study.hashing import file_sha256
from study.train import distributed
from study.train.checkpoint import check_fingerprint, load_checkpoint, set_rng_state
from study.train.config import PretrainConfig, unread_settings
from study.train.methods import METHODS, method_settings
from study.train.optim import LARS
from study.version import code_version

RESUME_KEYS = ("fingerprint", "method", "optimizer", "rng", "step", "wall_time_s", "train_time_s", "recent_losses",
               "train_acc_window", "resumed_from")  # what `restore` reads; the rest is optional or informative
UNKNOWN_VERSION = "unknown (a checkpoint that did not record it)"  # the earlier sessions' code version, where so


def run_fingerprint(cfg: PretrainConfig, manifest, world: distributed.World, device: torch.device, use_bf16: bool,
                    channels_last: bool) -> dict:
    """What a checkpoint must match to be resumed: the config, the data, and what the runtime keys resolved to that
    changes the arithmetic or the random streams (number and kind of devices, precision, memory format), and the
    content of the encoder it started from (a regenerated encoder at the same path is another start)."""
    out = {"config": cfg.fingerprint_dict(), "manifest_content_hash": manifest.content_hash, "devices": world.size,
           "device_type": device.type, "precision": "bf16" if use_bf16 else "fp32", "channels_last": channels_last}
    if cfg.init_encoder:
        out["init_encoder_sha256"] = file_sha256(cfg.init_encoder)
    if cfg.optim.name == "lars":  # what its momentum buffer holds: one of the torch-style buffer (g) is refused
        out["lars_momentum"] = LARS.MOMENTUM
    return out


def comparable(fingerprint: dict) -> dict:
    """The fingerprint as a resume compares it: its config without the keys whose resolved values it holds beside
    them (`precision`, `channels_last`; `init_encoder`, a path, whose content is `init_encoder_sha256`: a moved or
    copied run folder resumes) or that change nothing here (`sync_bn` on one device or on CPUs; the settings the
    method never reads, UNREAD_SETTINGS, and the temperature of a method without one; the method's default
    temperature where none is given; other methods' settings).
    Computed from the fingerprint alone (not the code that wrote it), so an older checkpoint compares the same way."""
    config = dict(fingerprint.get("config", {}))
    for key in ("precision", "channels_last", "init_encoder"):
        config.pop(key, None)
    if not (fingerprint.get("devices", 1) > 1 and fingerprint.get("device_type") == "cuda"):
        config.pop("sync_bn", None)
    method = config.get("method")
    for key in unread_settings(method):
        config.pop(key, None)
    if isinstance(method, str) and method in METHODS:
        default = METHODS.get(method).default_temperature
        if default is None:
            config.pop("temperature", None)
        elif config.get("temperature") is None:
            config["temperature"] = default
        for name in method_settings():
            if name != method:
                config.pop(name, None)
    return {**fingerprint, "config": config}


@dataclasses.dataclass
class Sessions:
    """A run's sessions as its checkpoint has them, this one appended to the per-session lists where it trains
    (a fresh run: step 0, nothing before, this session alone)."""
    from_checkpoint: bool = False  # resumed: a checkpoint was loaded
    step: int = 0  # steps trained so far
    wall_s: float = 0.0  # wall time of the earlier sessions
    train_s: float = 0.0  # training-loop time of the earlier sessions
    # the latest steps' losses: loop.LOSS_STEPS, or the log's window where it is longer (the curve's loss)
    recent: list = dataclasses.field(default_factory=list)
    # (correct, seen) per step: the last epoch's, or the log window's where it is longer (the curve's train_top1)
    acc_window: list = dataclasses.field(default_factory=list)
    resumed_from: list = dataclasses.field(default_factory=list)  # the step each later session resumed at
    threads: list = dataclasses.field(default_factory=lambda: [torch.get_num_threads()])  # CPU sums depend on them
    versions: list = dataclasses.field(default_factory=lambda: [code_version()])  # each session's code version
    # each session's library versions and device kind (none known of the sessions of a checkpoint that lacks them)
    environments: list = dataclasses.field(default_factory=list)


def restore(ckpt_path: Path, fingerprint: dict, method, optimizer, total: int, environment: dict) -> Sessions:
    """Load `ckpt_path` into `method`, `optimizer` and the RNGs when it exists (its fingerprint must match, see
    `comparable`), and return the run's sessions, this one's `environment` (libraries, device kind) among them. A
    finished run asked again trains nothing: its sessions stay those that trained it."""
    this = Sessions(environments=[environment])
    if not ckpt_path.exists():
        return this
    ck = load_checkpoint(ckpt_path, RESUME_KEYS)
    check_fingerprint(comparable(ck["fingerprint"]), comparable(fingerprint), ckpt_path,
                      {"config": PretrainConfig.default_fingerprint()})
    method.load_state_dict(ck["method"])
    optimizer.load_state_dict(ck["optimizer"])
    set_rng_state(ck["rng"])
    past = Sessions(from_checkpoint=True, step=int(ck["step"]), wall_s=float(ck["wall_time_s"]),
                     train_s=float(ck["train_time_s"]), recent=list(ck["recent_losses"]),
                     acc_window=[tuple(x) for x in ck["train_acc_window"]], resumed_from=list(ck["resumed_from"]),
                     threads=list(ck.get("cpu_threads", [])),  # absent from a checkpoint that does not record it
                     versions=list(ck.get("code_versions", [UNKNOWN_VERSION])),
                     environments=list(ck.get("environments", [])))
    if past.step >= total:
        past.threads = past.threads or this.threads
        past.environments = past.environments or this.environments
    else:
        past.resumed_from.append(past.step)
        past.threads += this.threads
        past.versions += this.versions
        past.environments += this.environments
    return past


def resume_warnings(past: Sessions, device: torch.device) -> list[str]:
    """Warnings for a resumed run's log where this session's code version, library versions or device kind (those of
    the session before it) is not the one the run began with, or on a CPU where its sessions' thread counts differ
    (also where this one's is the first's again): the weights then differ from an uninterrupted run's."""
    out = []
    versions, threads = past.versions, past.threads
    if versions[-2] != versions[-1]:
        out.append(f"WARNING: this session runs code version {versions[-1]}, the checkpoint was written by "
                   f"{versions[-2]}: the rest of the run trains with other code, so its weights may differ from "
                   f"a run without the change (the record lists every session's version)")
    envs = past.environments
    changed = [k for k in envs[-1] if envs[-2].get(k) != envs[-1][k]] if len(envs) > 1 else []
    if changed:
        out.append("WARNING: this session runs " + ", ".join(f"{k} {envs[-1][k]} (the checkpoint's session: "
                   f"{envs[-2].get(k)})" for k in changed) + ": the rest of the run computes with them, so its "
                   "weights may differ from a run without the change (the record lists each session's)")
    if device.type == "cpu" and len(set(threads)) > 1:  # also back to the first count: [1, 2, 1]
        said = (f"the run began with {threads[0]}" if threads[0] != threads[-1] else
                f"as the run began, but its sessions had {', '.join(map(str, threads))}")
        out.append(f"WARNING: this session has {threads[-1]} torch threads, {said}: on a CPU the float sums, and so "
                   f"the weights, will differ in the last bits from a run without the change (the count follows the "
                   f"job's CPUs: a stage's resources.cpus on Slurm, --workers here)")
    return out


def one_or_each(values: list):
    """The one value of every session, or the list of each session's where they differ."""
    return values[0] if len(set(values)) == 1 else values
