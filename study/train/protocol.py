"""What a run records about itself: its protocol (every effective value, `run_protocol`) and the encoder file that
carries the fingerprint of the recipe that made it (`write_encoder`)."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import torch

from study.atomic import write_bytes
from study.hashing import canonical_json
from study.results.record import protocol_fingerprint, recipe_protocol
from study.train import distributed
from study.train.backbones import encoder_payload
from study.train.config import TRAINING_PROTOCOL_KEYS, PretrainConfig
from study.train.optim import Schedule
from study.train.run_files import ENCODER
from study.train.tf32 import tf32_in_use
from study.version import code_version, library_versions


def run_protocol(cfg: PretrainConfig, manifest, world: distributed.World, device: torch.device, use_bf16: bool,
                 channels_last: bool, sync_bn: bool, sched: Schedule, aug_cfg, method) -> dict[str, Any]:
    """Every effective value of a run that its result records (the base its session's timings are added to): the
    config as resolved, the data, the devices, the schedule, the augmentation, the versions; the method's own
    (`Method.protocol`, its settings). A method that trains nothing records none of its training
    (TRAINING_PROTOCOL_KEYS)."""
    n, spe, total, warmup, peak = sched.images, sched.steps_per_epoch, sched.total, sched.warmup, sched.peak_lr
    per_device = cfg.batch_size // world.size
    device_kind = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    corruption = manifest.corruption
    p: dict[str, Any] = {
        "stage": "pretrain",
        "method": cfg.method,
        "backbone": cfg.backbone,
        "width": cfg.width,
        "feature_dim": method.encoder.feature_dim,
        "manifest": manifest.name,
        "manifest_content_hash": manifest.content_hash,
        "corruption": getattr(corruption, "slug", None) if corruption is not None else "none",
        "subset": cfg.subset,
        "size": cfg.size,
        "images": n,
        "num_classes": manifest.num_classes,
        "init_encoder": cfg.init_encoder,
        "seed": cfg.seed,
        "steps": total,
        "steps_per_epoch": spe,
        "epochs": (total / spe) if spe else 0.0,
        "per_device_batch": per_device,
        "devices": world.size,
        "device_kind": device_kind,
        "cpu_threads": torch.get_num_threads(),  # on a CPU, float sums (and so results) depend on it
        "effective_batch": per_device * world.size,
        "optimizer": cfg.optim.name,
        "base_lr": cfg.optim.lr,
        "lr_scaling": cfg.optim.lr_scaling,
        "effective_lr": peak,
        "warmup_steps": warmup,
        "final_lr_fraction": cfg.optim.final_lr_fraction,
        "weight_decay": cfg.optim.weight_decay,
        "momentum": cfg.optim.momentum,
        "exclude_bias_and_norm": cfg.optim.exclude_bias_and_norm,
        "temperature": cfg.effective_temperature(),
        "precision": "bf16" if use_bf16 else "fp32",
        "tf32": tf32_in_use(device),
        "channels_last": channels_last,
        "sync_bn": sync_bn,
        "augmentation": aug_cfg.to_dict() if aug_cfg is not None else None,  # every effective parameter
        "code_version": code_version(),  # this session's; the run's protocol lists each session's where they differ
        **library_versions(),  # torch, torchvision, numpy, Pillow, the JPEG decoder
        "config": cfg.to_dict(),
    }
    p.update(method.protocol())
    if cfg.method in cfg.method_settings:
        p[cfg.method] = dataclasses.asdict(cfg.method_settings[cfg.method])
    if cfg.optim.name == "lars":
        p["trust_coefficient"] = cfg.optim.trust_coefficient
    if not method.trains:  # no schedule, optimizer or augmentation ran (its config leaves them out too: to_dict)
        p = {k: v for k, v in p.items() if k not in TRAINING_PROTOCOL_KEYS}
    return p


def write_encoder(run_dir: Path, encoder, world, protocol: dict) -> None:
    """`run_dir/encoder.pt`, carrying the fingerprint of the run's protocol (`recipe`) and what it hashes, with the
    seed (`protocol`: no timings, paths, versions or device names, so that a rerun writes the same), so that an
    evaluation of it records the recipe that made it. The same weights and protocol give the same bytes, so the
    same sha256 (serialised in memory: torch writes the name of the file it is given into the archive)."""
    if not world.is_main:
        return
    kept = json.loads(canonical_json({**recipe_protocol(protocol), "seed": protocol["seed"]}))  # plain values
    buffer = io.BytesIO()
    torch.save(encoder_payload(encoder, protocol_fingerprint(protocol), kept), buffer)
    write_bytes(run_dir / ENCODER, buffer.getvalue())
