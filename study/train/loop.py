"""`pretrain(cfg, run_dir)`: the training loop shared by pretraining, fine-tuning and supervised training.

It always resumes from `run_dir/checkpoint.pt` when that exists, checkpoints every N steps or minutes, at
SIGUSR2/SIGTERM (see checkpoint.SignalFlag) and at the end, and writes `run_dir/encoder.pt`.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from study.atomic import remove_temporaries
from study.durations import eta
from study.errors import StudyError
from study.train import distributed
from study.train.allocator import retain_freed_memory
from study.train.backbones import build_backbone, load_weights_into
from study.train.checkpoint import SignalFlag, rng_state, save_checkpoint
from study.train.config import PretrainConfig
from study.train.curve import FILE as CURVE_FILE, TrainingCurve
from study.train.data import (
    ResumableBatchSampler,
    ViewDataset,
    batch_generator,
    close_batches,
    default_workers,
    make_loader,
    next_batch,
    steps_per_epoch,
)
from study.train.device import peak_gpu_memory_gb, reset_gpu_peak, resolve_device
from study.train.images import ImageReader
from study.train.methods import METHODS
from study.train.optim import Schedule, build_optimizer, peak_lr, schedule_problems, schedule_steps, set_lr
from study.train.protocol import run_protocol, write_encoder
from study.train.run_files import CHECKPOINT, ENCODER
from study.train.resume import Sessions, one_or_each, restore, resume_warnings, run_fingerprint
from study.version import library_versions

RunOutput = dict  # {"metrics": [MetricRow, ...], "protocol": {...}}
LOSS_STEPS = 1000  # the loss metric's window: the last epoch's steps, at most this many
# the signal Slurm sends ahead of a time limit (submitit's --signal): its handler on rank 0 requeues the job, so a
# rank that sees it makes every rank forward it, not a SIGTERM (dropped after the checkpoint)
REQUEUE_SIGNAL = getattr(signal, "SIGUSR2", None)


class StopRequested(Exception):
    """Raised by `pretrain(..., stop_at=k)` after the checkpoint at step k is written (tests, time slices)."""

    def __init__(self, step: int):
        super().__init__(f"stopped at step {step} as asked; the checkpoint holds the run")
        self.step = step


def training_rows(cfg: PretrainConfig, manifest):
    """The rows a run trains on: manifest.subset(size) or manifest.labeled(size); every row when size is None."""
    n = cfg.size if cfg.size is not None else len(manifest.table)
    try:
        rows = manifest.subset(n) if cfg.subset == "pretrain" else manifest.labeled(n)
    except StudyError as e:
        raise StudyError(f"pretrain.size: {e}") from None
    if cfg.size is not None and len(rows) < cfg.size:
        raise StudyError(
            f"pretrain.size: {cfg.size} images asked for, manifest {manifest.name} has {len(rows)} in its "
            f"{cfg.subset} subset (sizes: "
            f"{getattr(manifest, 'sizes' if cfg.subset == 'pretrain' else 'labeled_sizes', '?')})"
        )
    if len(rows) == 0:
        raise StudyError(f"manifest {manifest.name}: the {cfg.subset} subset is empty")
    return rows


def _load_manifest(name: str):
    from study.manifests import load_manifest

    return load_manifest(name)


def _log(cfg: PretrainConfig, msg: str) -> None:
    """A progress line on stderr, tagged with what the run is: [pretrain], or, on a labeled subset (an evaluation's
    run), [finetune] from an encoder, [scratch] from random init."""
    tag = "pretrain" if cfg.subset != "labeled" else "finetune" if cfg.init_encoder else "scratch"
    print(f"[{tag}] {msg}", file=sys.stderr, flush=True)


def pretrain(cfg: PretrainConfig | dict, run_dir: str | Path, *, stop_at: int | None = None) -> RunOutput:
    """Train `cfg.method` on the manifest's images; resume from `run_dir/checkpoint.pt` if present. `cfg`: a
    PretrainConfig, or a mapping of its fields (read by `PretrainConfig.from_dict`, which names a bad key).

    Returns {"metrics": [{"metric": "loss", ...}, (+ "train_top1" for supervised)], "protocol": {...}} (both
    metrics: over the last epoch's steps, the loss over at most `LOSS_STEPS` of them) and
    writes `run_dir/encoder.pt`. `stop_at=k` checkpoints at step k and raises StopRequested (for tests).
    """
    if not isinstance(cfg, PretrainConfig):
        cfg = PretrainConfig.from_dict(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    retain_freed_memory()
    world = distributed.setup("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
    try:
        return _pretrain(cfg, run_dir, world, t0, stop_at, _load_manifest(cfg.manifest))
    finally:
        distributed.cleanup(world)


def _pretrain(cfg, run_dir: Path, world, t0: float, stop_at, manifest) -> RunOutput:
    device = resolve_device(cfg.device, world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    reset_gpu_peak(device)  # the peak its step lines and protocol tell is this run's, not an earlier one's here
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    channels_last = cfg.channels_last and device.type == "cuda"
    sync_bn = cfg.sync_bn and world.size > 1 and device.type == "cuda"  # SyncBatchNorm runs on GPUs only
    rows = training_rows(cfg, manifest)
    n = len(rows)

    method = _build_method(cfg, manifest.num_classes)
    aug_cfg = cfg.augment_config() if method.trains else None

    if method.trains and cfg.batch_size > n:
        raise StudyError(f"pretrain.batch_size {cfg.batch_size} is larger than the {n} training images (manifest "
                         f"{cfg.manifest}, size {cfg.size if cfg.size is not None else 'all'}): not one step would "
                         "run; lower batch_size or pretrain on more images")
    if method.trains and cfg.batch_size % world.size:  # before the model is moved and a checkpoint read
        where = "evaluate.finetune" if cfg.subset == "labeled" else "pretrain"
        raise StudyError(f"{where}.batch_size {cfg.batch_size} does not split over the {world.size} processes of "
                         f"this run: make batch_size a multiple of {world.size}")
    spe, total, warmup = schedule_steps(cfg, n) if method.trains else (steps_per_epoch(n, cfg.batch_size), 0, 0)
    if method.trains:
        _check_schedule(cfg, n, world)
    sched = Schedule(n, cfg.batch_size, spe, total, warmup, peak_lr(cfg.optim, cfg.batch_size),
                     cfg.optim.final_lr_fraction)
    base_protocol = run_protocol(cfg, manifest, world, device, use_bf16, channels_last, sync_bn, sched, aug_cfg, method)

    ckpt_path = run_dir / CHECKPOINT
    if world.is_main:  # the run folder's one writer (one instance of a job runs: the job lock here, Slurm's one job
        # there; an NFS workdir's caveat, study.launch.locks): what a killed write left goes
        for name in (CHECKPOINT, ENCODER, CURVE_FILE):
            remove_temporaries(run_dir / name)
    fingerprint = run_fingerprint(cfg, manifest, world, device, use_bf16, channels_last)
    if not method.trains:  # `random`: the untrained encoder is the product
        write_encoder(run_dir, method.encoder, world, base_protocol)
        return {"metrics": [], "protocol": dict(base_protocol, wall_time_s=time.time() - t0, images_per_s=None)}

    from study.train.augment import build_augment

    aug = build_augment(aug_cfg)
    if aug.num_views < method.num_views:
        raise StudyError(f"pretrain.augment: preset gives {aug.num_views} view(s), method {cfg.method} needs "
                         f"{method.num_views}")
    if sync_bn:
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    method.to(device)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(method, cfg.optim, lr=0.0)

    environment = {**library_versions(), "device_kind": base_protocol["device_kind"]}
    past = restore(ckpt_path, fingerprint, method, optimizer, total, environment)
    if world.is_main and past.from_checkpoint and past.step < total:
        _log_resume(cfg, run_dir, past, total, device)
    session = _Session(cfg, run_dir, world, device, use_bf16, channels_last, method, optimizer, aug, sched,
                       fingerprint, past, t0)
    if session.step < total:
        session.train(ViewDataset(ImageReader(manifest), rows, aug, cfg.seed), stop_at)
    elif world.is_main:
        _log(cfg, f"{run_dir}: already trained ({session.step}/{total} steps)")

    write_encoder(run_dir, method.encoder, world, base_protocol)  # the record's fingerprint: the rest is run-specific
    return {"metrics": session.metrics(), "protocol": session.protocol(base_protocol)}


class _Session:
    """This session of a run that trains: steps from the checkpoint's (`past.step`) to the schedule's total, with a
    checkpoint every N steps or minutes, at SIGUSR2/SIGTERM, at `stop_at` and at the end; progress lines and the
    training curve on the main rank. `step`, `past.recent` and `past.acc_window` advance as it trains."""

    def __init__(self, cfg: PretrainConfig, run_dir: Path, world, device: torch.device, use_bf16: bool,
                 channels_last: bool, method, optimizer, aug, sched: Schedule, fingerprint: dict, past: Sessions,
                 t0: float):
        self.cfg, self.world, self.device = cfg, world, device
        self.use_bf16, self.channels_last = use_bf16, channels_last
        self.method, self.optimizer, self.aug, self.sched = method, optimizer, aug, sched
        self.fingerprint, self.past, self.t0 = fingerprint, past, t0
        self.ckpt_path = run_dir / CHECKPOINT
        self.step = past.step
        self.steps = 0  # this session's
        self.train_s = past.train_s  # training-loop time up to the latest checkpoint, over all sessions
        self.t_loop = time.time()
        self.curve = TrainingCurve(run_dir)
        if world.is_main and self.step < sched.total:
            self.curve.restart(self.step)  # the rows of steps a killed session logged after this checkpoint go

    def train(self, dataset, stop_at: int | None) -> None:
        """Train to the schedule's end; StopRequested after the checkpoint at step `stop_at` (tests)."""
        self.t_loop = time.time()
        cfg, sched, world, device = self.cfg, self.sched, self.world, self.device
        model = distributed.data_parallel(self.method, device) if world.size > 1 else self.method
        sampler = ResumableBatchSampler(sched.images, sched.batch, cfg.seed, self.step, world.rank, world.size)
        workers = default_workers() if cfg.num_workers is None else cfg.num_workers
        loader = make_loader(dataset, sampler, workers, pin_memory=device.type == "cuda", seed=cfg.seed)
        flag = SignalFlag().install()
        last_save, pending = time.time(), []  # (step, loss, correct, seen) not yet recorded nor checked for NaN
        window = max(1, min(cfg.log_every_steps, sched.total))
        batches = None
        try:
            batches = iter(loader)
            model.train()
            while self.step < sched.total:
                views, labels = next_batch(batches)
                gen = batch_generator(cfg.seed, self.step, device, world.rank)
                loss, stats = train_step(model, self.optimizer, self.aug, views, labels, gen, sched.lr(self.step),
                                         device, self.use_bf16, self.channels_last)
                self.step += 1
                self.steps += 1
                self.method.after_step(self.step, sched.total)
                pending.append((self.step, loss.detach(), stats.get("correct"), stats.get("seen")))

                step = self.step
                due_steps = cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0
                due_time = cfg.checkpoint_every_minutes and time.time() - last_save >= 60 * cfg.checkpoint_every_minutes
                due_time, signalled = _agree_on_stop(flag, bool(due_time), world, device)
                stop_now = stop_at is not None and step >= stop_at
                must_save = bool(due_steps or due_time or signalled or stop_now or step == sched.total)
                if must_save or device.type == "cpu" or step % window == 0:
                    _record_steps(pending, self.past.recent, self.past.acc_window, max(LOSS_STEPS, window),
                                  max(sched.steps_per_epoch, 1, window), world, self.ckpt_path, cfg.manifest)
                    pending = []
                if world.is_main and (step % cfg.log_every_steps == 0 or step == sched.total):
                    self._progress(window)
                if must_save:
                    _refuse_nonfinite_weights(self.method, step, self.ckpt_path, cfg.manifest, device)
                    self.save()
                    last_save = time.time()
                    if signalled:
                        if world.is_main:  # the log says why it ends here, or why a checkpoint came off schedule
                            _log(cfg, f"checkpoint written at step {step}/{sched.total} on {flag.said()}")
                        flag.forward()
                    if stop_now and step < sched.total:
                        raise StopRequested(step)
        finally:
            flag.restore()
            close_batches(batches)
            del loader

    def _progress(self, window: int) -> None:
        """The progress line and the curve's row: the loss over the last `window` steps, this session's rate."""
        sched, past, elapsed = self.sched, self.past, time.time() - self.t_loop
        rate = self.steps * sched.batch / max(1e-9, elapsed)
        loss, lr = float(np.mean(past.recent[-window:])), self.optimizer.param_groups[0]["lr"]
        peak = peak_gpu_memory_gb(self.device)
        memory = f" {peak:.1f} GB GPU peak" if peak is not None else ""
        _log(self.cfg, f"step {self.step}/{sched.total} loss {loss:.4f} lr {lr:.4g} {rate:.1f} img/s{memory}"
             f"{eta(sched.total - self.step, self.steps, elapsed)}")
        self.curve.append(self.step, self.step / max(sched.steps_per_epoch, 1), loss, lr, rate,
                          _top1(past.acc_window[-window:]), (past.train_s + elapsed) / 3600)

    def save(self) -> None:
        """Checkpoint at the current step (main rank), every rank waiting for it."""
        if self.world.is_main:
            self.train_s = self.past.train_s + (time.time() - self.t_loop)  # the checkpoint's training time
            save_checkpoint(self.ckpt_path, self.state())
        if self.world.size > 1:
            torch.distributed.barrier()

    def state(self) -> dict:
        """The checkpoint's content at the current step: everything `resume.restore` restores, and the schedule's
        state."""
        past, sched, step = self.past, self.sched, self.step
        spe = sched.steps_per_epoch
        return {
            "fingerprint": self.fingerprint,
            "step": step,
            "epoch": step // spe if spe else 0,
            "batch_in_epoch": step % spe if spe else 0,
            "total_steps": sched.total,
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"peak_lr": sched.peak_lr, "warmup_steps": sched.warmup, "total_steps": sched.total,
                          "lr": sched.lr(step)},
            "rng": rng_state(),
            "wall_time_s": past.wall_s + (time.time() - self.t0),
            "train_time_s": self.train_s,
            "recent_losses": list(past.recent),
            "train_acc_window": [list(x) for x in past.acc_window],
            "resumed_from": past.resumed_from,
            "cpu_threads": past.threads,
            "code_versions": past.versions,
            "environments": past.environments,
        }

    def metrics(self) -> list[dict]:
        """The run's loss (and train_top1 where the method counts it) over its last epoch (the loss over at most
        LOSS_STEPS steps), not over the log's window."""
        past, out = self.past, []
        if past.recent:
            out.append(_row("loss", float(np.mean(past.recent[-max(1, min(self.sched.steps_per_epoch, LOSS_STEPS)):]))))
        if past.acc_window:
            out.append(_row("train_top1", _top1(past.acc_window[-max(1, self.sched.steps_per_epoch):])))
        return out

    def protocol(self, base: dict) -> dict:
        """`base` with the run's timing and sessions: wall time over every session, training rate over the
        training-loop time (the run ends with a checkpoint at its last step, which counted it)."""
        past, step = self.past, self.step
        envs = past.environments
        environment = {k: one_or_each([e.get(k) for e in envs]) for k in (envs[-1] if envs else {})}
        return dict(
            base,
            **environment,  # libraries and device kind: a list where the sessions' differed
            wall_time_s=past.wall_s + (time.time() - self.t0) if self.steps else past.wall_s,
            earlier_sessions_seconds=past.wall_s,  # of wall_time_s: the sessions before this one (from the checkpoint)
            images_per_s=(step * self.sched.batch / self.train_s) if step and self.train_s > 0 else None,
            resumed_from_steps=past.resumed_from,
            cpu_threads=one_or_each(past.threads),  # a list: the sessions' counts differed
            gpu_peak_memory_gb=peak_gpu_memory_gb(self.device),  # this session's, main rank
            code_version=one_or_each(past.versions),  # a list: each session's, they differed
        )


def _build_method(cfg: PretrainConfig, num_classes: int):
    """`cfg.method` around a new encoder, the same on every rank (seeded), with `cfg.init_encoder`'s weights where
    it names one (StudyError where that encoder is another architecture)."""
    random_seed_all(cfg.seed)
    encoder = build_backbone(cfg.backbone, cfg.width)
    if cfg.init_encoder:
        load_weights_into(encoder, cfg.init_encoder, "pretrain.init_encoder")
    return METHODS.get(cfg.method, "pretrain.method")(cfg, encoder, num_classes)


def _agree_on_stop(flag: SignalFlag, due_time: bool, world, device: torch.device) -> tuple[bool, bool]:
    """(due_time, signalled) for this step, the same on every rank (true on one rank: true on all), or the
    checkpoint's barrier would hang. Where another rank was signalled, this rank's flag gets the signal to forward
    after the checkpoint: REQUEUE_SIGNAL where any rank saw it (rank 0's handler, submitit's, requeues the job);
    a SIGTERM elsewhere needs nothing forwarded (checkpoint, carry on), so this rank's log says it came to another
    rank, not that this one got it."""
    seen = list(flag.pending)  # read once: a signal landing later is seen at the next step
    signalled = bool(seen)
    if world.size == 1:
        return due_time, signalled
    due_time, signalled, requeue = distributed.any_rank([due_time, signalled, REQUEUE_SIGNAL in seen], device)
    if requeue:
        flag.add(REQUEUE_SIGNAL)
    return due_time, signalled


def _log_resume(cfg: PretrainConfig, run_dir: Path, past: Sessions, total: int, device: torch.device) -> None:
    """The resume line, and its warnings (`resume_warnings`)."""
    _log(cfg, f"resuming {run_dir} at step {past.step}/{total}")
    for line in resume_warnings(past, device):
        _log(cfg, line)


def _check_schedule(cfg: PretrainConfig, images: int, world) -> None:
    """optim.schedule_problems of this run: its error a StudyError, its warnings logged (a fine-tuning or scratch
    run, which trains on a labeled subset, is named as the evaluation's `finetune` section)."""
    error, warnings = schedule_problems(cfg, images)
    where = "evaluate.finetune" if cfg.subset == "labeled" else "pretrain"
    if error:
        raise StudyError(f"{where}.{error}")
    for warning in warnings if world.is_main else []:
        _log(cfg, f"WARNING: {where}.{warning}")


def train_step(model, optimizer, aug, views, labels, generator, lr: float, device: torch.device, use_bf16: bool,
               channels_last: bool):
    """One optimizer step on a collated batch of uint8 views: copy to the device, `aug.batch` there, forward
    under bf16 autocast (when asked), backward, step. Returns (loss tensor, stats); the caller then calls
    `method.after_step`."""
    views = [v.to(device, non_blocking=True) for v in views]
    labels = labels.to(device, non_blocking=True)
    views = aug.batch(views, generator)
    if channels_last:
        views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    set_lr(optimizer, lr)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        loss, stats = model(views, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, stats


def _row(metric: str, value: float) -> dict:
    return {"metric": metric, "value": value, "labeled_size": None, "level": None}


def _top1(acc: list[tuple[float, float]]) -> float | None:
    """Training top-1 over the steps of `acc` ((correct, seen) per step); None without a step (no labels)."""
    if not acc:
        return None
    correct, seen = map(sum, zip(*acc))
    return correct / max(1.0, seen)


def _record_steps(pending: list, recent: list, acc_window: list, loss_steps: int, acc_steps: int, world,
                  ckpt_path: Path, manifest_name: str) -> None:
    """Move the pending steps' losses (mean over ranks) into `recent`, the last `loss_steps` kept, and their
    (correct, seen) counts (sum over ranks) into `acc_window`, the last `acc_steps` kept: every rank, and so the
    checkpoint, holds the global values.
    A non-finite loss on any rank stops the run on every rank (the last checkpoint is left as is)."""
    if not pending:
        return
    device = pending[0][1].device
    zero = torch.zeros((), device=device)
    t = torch.stack([torch.stack([loss.float(), zero if c is None else c.float(), zero + (s or 0)])
                     for _, loss, c, s in pending]).double()
    if world.size > 1:
        distributed.all_reduce_sum(t)
        t[:, 0] /= world.size
    for (step, _, c, _), (v, correct, seen) in zip(pending, t.cpu().tolist()):
        if not math.isfinite(v):
            raise StudyError(f"loss is {v} at step {step} (manifest {manifest_name}); training stopped, "
                             f"{_kept(ckpt_path)}")
        recent.append(v)
        if c is not None:
            acc_window.append((correct, seen))
    del recent[:-loss_steps]
    del acc_window[:-acc_steps]


def _kept(ckpt_path: Path) -> str:
    return f"the last good checkpoint {ckpt_path} is kept" if ckpt_path.exists() else "no checkpoint was written yet"


def _refuse_nonfinite_weights(method, step: int, ckpt_path: Path, manifest_name: str, device) -> None:
    """StudyError naming the tensors when a weight or buffer of `method` (encoder, heads, EMA target, queue) is not
    finite after `step` on any rank: an update can overflow on a step whose loss was finite, and such a state must
    never become the checkpoint or the encoder. One device sync (and one tiny all-reduce across ranks)."""
    floats = {k: t for k, t in method.state_dict().items() if t.is_floating_point()}
    finite = bool(torch.stack([torch.isfinite(t).all() for t in floats.values()]).all())
    (somewhere_bad,) = distributed.any_rank([not finite], device)
    if not somewhere_bad:
        return
    bad = [k for k, t in floats.items() if not bool(torch.isfinite(t).all())] or ["(on another rank)"]
    raise StudyError(f"weights are not finite after step {step} (manifest {manifest_name}): "
                     f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; training stopped, {_kept(ckpt_path)}")


def random_seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
