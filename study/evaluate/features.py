"""Frozen features of an encoder over manifest rows, extracted once and cached on disk.

A cache file is keyed by (encoder file sha256, manifest content hash and root(s): the hash leaves out where the images
lie, and two folders of one layout, e.g. materialized corruptions, share it; transform settings, feature layer, and
what computed them: this format's version, the torch version, the device type) plus the rows: `labeled<n>` (the first n
rows of `manifest.labeled`, which are nested, so a file for n serves every n' <= n) or `all`. Files are written
atomically; a reader never sees half a file, and the temporary file of a killed writer is removed by a later reader
once it is an hour old. An extraction in progress saves the rows it has done every few minutes and when signalled
(study.evaluate.partial); a preempted one goes on from them.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from study.atomic import atomic_path, remove_folder_temporaries, write_failure
from study.durations import eta
from study.errors import StudyError
from study.evaluate.partial import PartialExtraction
from study.hashing import config_hash, file_sha256
from study.train.allocator import retain_freed_memory
from study.train.backbones import load_encoder
from study.train.checkpoint import SignalFlag
from study.train.data import ViewDataset, close_batches, collate_views, next_batch, worker_options
from study.train.images import ImageReader

FORMAT = "study-features-1"  # bump when the extraction's arithmetic changes: older caches are then not reused
STALE_TMP_S = 3600.0  # a feature file's temporary this old is a killed writer's (a file can take minutes to write)


@dataclass
class Features:
    """Features (float32 N x D, CPU) and labels (int64 N) of manifest rows, with how they were obtained."""

    x: torch.Tensor
    y: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """The evaluation's device (study.train.device.resolve_device, of `evaluate.device`), made the current one: pinned
    memory and kernels would otherwise also open a context on GPU 0 where a job sees several GPUs."""
    from study.train.device import resolve_device as resolve

    device = resolve(name, key="evaluate.device")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


class LayerFeatures(nn.Module):
    """The encoder's pooled output (`pooled`) or the global average pool of one of its stages (`layerN`)."""

    def __init__(self, encoder: nn.Module, layer: str):
        super().__init__()
        self.encoder, self.layer = encoder, layer
        self._out: torch.Tensor | None = None
        if layer != "pooled":
            stage = getattr(encoder, layer, None)
            if stage is None:
                name = getattr(encoder, "spec", {}).get("name", type(encoder).__name__)
                raise StudyError(f"evaluate.feature_layer: backbone {name!r} has no stage {layer!r} (a `layerN` is "
                                 f"a module of the encoder named so; `pooled` reads any backbone)")
            stage.register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output):
        self._out = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.encoder(x)
        if self.layer == "pooled":
            return pooled
        out, self._out = self._out, None
        return out.float().mean(dim=(2, 3))


def forward_rows(model: nn.Module, manifest, rows, aug, batch_size: int, device: torch.device,
                 num_workers: int = 0, label: str = "", partial: PartialExtraction | None = None,
                 save_every_s: float | None = None, keep: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, float, int]:
    """model(eval transform of each row) for `rows` in order -> (float32 N x D on CPU, seconds, rows computed).
    The output is allocated once (N x D) and filled batch by batch: host memory holds the features once. With
    `keep` (not with `partial`), each batch's output goes through it first, on the device, and N x its width of its
    dtype is returned (e.g. a classifier's scores to their best classes: N x 5, not N x classes). Every
    forward has `batch_size` rows (a short last batch is padded): kernels chosen by batch shape would otherwise give
    a row other low bits where it ends an extraction than where another extraction, or a resumed one, batches it.

    With `partial`, the rows it saved earlier are read back, not computed, and the rows done are saved every
    `save_every_s` seconds and at SIGUSR2/SIGTERM (then handled as in training: SIGUSR2 goes on to the handler
    installed before, which requeues a Slurm job or ends a local one; SIGTERM is dropped)."""
    out, start = torch.zeros(0, 0), 0
    for block in partial.load(len(rows)) if partial is not None else ():
        if start == 0:
            out = torch.empty(len(rows), block.shape[1])
        out[start:start + len(block)] = block
        start += len(block)
    if start:
        print(f"[evaluate] {label} {manifest.name}: rows 0-{start} of {len(rows)} read back from {partial.folder}",
              file=sys.stderr, flush=True)
    t0 = time.monotonic()
    if start == len(rows):
        return out, 0.0, 0
    dataset = ViewDataset(ImageReader(manifest), rows, aug, seed=0)
    index_batches = [[(0, i) for i in range(s, min(s + batch_size, len(rows)))]
                     for s in range(start, len(rows), batch_size)]
    retain_freed_memory()
    # worker_options: a fine-tune trained here without workers ran OpenCV's pool (opencv_before_fork)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=index_batches, collate_fn=collate_views,
                                         pin_memory=device.type == "cuda", **worker_options(num_workers))
    generator = torch.Generator(device=device).manual_seed(0)  # the eval preset draws nothing random
    done = saved = start
    last_log = last_save = time.monotonic()
    flag = SignalFlag().install() if partial is not None else None
    model.eval()
    batches = iter(loader)
    try:
        with torch.no_grad():
            for _ in index_batches:
                views, _ = next_batch(batches)
                (x,) = aug.batch([views[0].to(device, non_blocking=True)], generator)
                f = model(padded(x, batch_size)).float()[:len(x)]
                if keep is not None:
                    f = keep(f)
                if done == 0:
                    out = torch.empty(len(rows), f.shape[1], dtype=f.dtype)
                out[done:done + f.shape[0]] = f.cpu()
                done += f.shape[0]
                now = time.monotonic()
                if now - last_log > 10 or done == len(rows):
                    last_log = now
                    print(f"[evaluate] {label} {manifest.name}: {done}/{len(rows)} images"
                          f"{eta(len(rows) - done, done - start, now - t0)}", file=sys.stderr, flush=True)
                signalled = flag is not None and bool(flag.pending)  # read once, as the training loop does
                due = save_every_s is not None and now - last_save >= save_every_s and done < len(rows)
                if partial is not None and (signalled or due):  # the last rows too when signalled: it may end here
                    partial.save(out[saved:done], saved, partial.seconds_before + time.monotonic() - t0)
                    saved, last_save = done, time.monotonic()
                if signalled:
                    print(f"[evaluate] {label} {manifest.name}: rows 0-{done} of {len(rows)} saved to "
                          f"{partial.folder} on {flag.said()}", file=sys.stderr, flush=True)
                    flag.forward()
    finally:
        if flag is not None:
            flag.restore()
        close_batches(batches)
    return out, time.monotonic() - t0, len(rows) - start


def padded(x: torch.Tensor, rows: int) -> torch.Tensor:
    """x with its last row repeated up to `rows` rows (x itself when it has as many)."""
    return x if len(x) >= rows else torch.cat([x, x[-1:].expand(rows - len(x), *x.shape[1:])])


class FeatureCache:
    """`get(encoder_path, manifest, n)` -> Features of `manifest.labeled(n)` (n = None: every row, table order)."""

    def __init__(self, cache_dir: Path, aug, feature_layer: str, batch_size: int, device: torch.device,
                 num_workers: int = 0, save_every_minutes: float | None = None):
        self.dir = Path(cache_dir)
        self.save_every_minutes = save_every_minutes
        self.aug, self.layer, self.batch_size = aug, feature_layer, batch_size
        self.device, self.num_workers = device, num_workers
        # batch_size: a row's last bits follow the batch shape (padded() keeps it fixed within one extraction), so
        # an evaluation of another extraction batch never reads, or goes on with, this one's rows
        self.transform_key = config_hash({"transform": aug.describe(), "feature_layer": feature_layer,
                                          "format": FORMAT, "torch": str(torch.__version__),
                                          "device_type": device.type, "batch_size": batch_size}, 16)
        self._sha: dict[Path, str] = {}

    def encoder_sha(self, path: Path) -> str:
        path = Path(path)
        if path not in self._sha:
            if not path.is_file():
                raise StudyError(f"{path}: encoder file not found")
            self._sha[path] = file_sha256(path)
        return self._sha[path]

    def _folder(self, encoder: Path, manifest) -> Path:
        where = config_hash({"root": manifest.meta.get("root"), "roots": manifest.meta.get("roots")}, 8)
        return (self.dir / self.encoder_sha(encoder)[:24]
                / f"{manifest.content_hash[:24]}-{where}-{self.transform_key}")

    def key(self, encoder: Path, manifest) -> str:
        """What `manifest`'s features by `encoder` depend on (encoder file, manifest content, image root(s),
        transform, feature layer, format, torch version, device type, extraction batch size), as a name."""
        return str(self._folder(encoder, manifest).relative_to(self.dir))

    def get(self, encoder: Path, manifest, n: int | None) -> Features:
        rows = manifest.all() if n is None else manifest.labeled(n)
        labels = torch.tensor(rows["label"].to_numpy(dtype=np.int64, copy=True))
        folder = self._folder(encoder, manifest)
        remove_folder_temporaries(folder, STALE_TMP_S)  # of writers killed mid-write (files of gigabytes)
        for path, have in self._candidates(folder, n):
            feats = self._read(path, labels)
            if feats is not None:
                self._remove_idle_chunks(folder, have)
                return Features(feats, labels, {"cached": True, "file": str(path), "rows": len(rows)})
        path = folder / ("all.pt" if n is None else f"labeled{len(rows)}.pt")
        partial = PartialExtraction(path, FORMAT)
        remove_folder_temporaries(partial.folder, STALE_TMP_S)
        model = LayerFeatures(load_encoder(encoder), self.layer).to(self.device)
        feats, seconds, computed = forward_rows(
            model, manifest, rows, self.aug, self.batch_size, self.device, self.num_workers,
            label=f"features of {Path(encoder).parent.name}/{Path(encoder).name} on", partial=partial,
            save_every_s=None if self.save_every_minutes is None else 60 * self.save_every_minutes)
        bad = sum(int((~torch.isfinite(part).all(dim=1)).sum()) for part in feats.split(1 << 16))  # bounded temp
        if bad:
            partial.remove()
            raise StudyError(f"{encoder}: the features of {bad} of {len(rows)} images of manifest {manifest.name} "
                             f"are not finite (NaN or inf): the encoder diverged or is damaged; nothing was cached")
        payload = {"format": FORMAT, "features": feats, "labels": labels, "rows": len(rows),
                   "encoder_sha256": self.encoder_sha(encoder), "manifest": manifest.name,
                   "manifest_content_hash": manifest.content_hash, "transform": self.aug.describe(),
                   "feature_layer": self.layer, "torch": str(torch.__version__), "device_type": self.device.type}
        try:
            with atomic_path(path) as tmp:
                torch.save(payload, tmp)
        except (OSError, RuntimeError) as e:  # a full disk reaches torch.save as a RuntimeError of its zip writer
            print(f"[evaluate] WARNING: could not cache the features in {path} ({write_failure(path, e)}); this "
                  f"evaluation goes on with them, a rerun extracts them again", file=sys.stderr, flush=True)
            path = None
        else:
            partial.remove()
        rate = computed / seconds if seconds > 0 else None
        return Features(feats, labels, {"cached": False, "file": str(path) if path else None, "rows": len(rows),
                                        "resumed_rows": len(rows) - computed, "seconds": seconds,
                                        "earlier_sessions_seconds": partial.seconds_before, "images_per_s": rate})

    @staticmethod
    def _remove_idle_chunks(folder: Path, have: int) -> None:
        """Remove, once idle, the chunks of each extraction the cached file of `have` rows (-1: `all.pt`) serves: its
        own, and those of a smaller size (`labeled<k>.partial`, k <= have) whose writer was killed while another
        wrote this file; no run reads them again, since this file is found first."""
        partials = ([folder / "all.partial"] if have < 0 else
                    [p for p, k in FeatureCache._labeled_files(folder, ".partial") if k <= have])
        for p in partials:
            PartialExtraction(p.with_suffix(".pt"), FORMAT).remove_if_idle(STALE_TMP_S)

    @staticmethod
    def _labeled_files(folder: Path, suffix: str) -> list[tuple[Path, int]]:
        """(path, k) of each `labeled<k><suffix>` in `folder` (a cached file, or an extraction's chunk folder)."""
        named = ((p, p.name[len("labeled"):-len(suffix)]) for p in folder.glob(f"labeled*{suffix}"))
        return [(p, int(k)) for p, k in named if k.isascii() and k.isdigit()]

    @staticmethod
    def _candidates(folder: Path, n: int | None) -> list[tuple[Path, int]]:
        if n is None:
            return [(folder / "all.pt", -1)] if (folder / "all.pt").is_file() else []
        found = [(p, have) for p, have in FeatureCache._labeled_files(folder, ".pt") if have >= n]
        return sorted(found, key=lambda t: t[1])  # the smallest file that covers n

    @staticmethod
    def _read(path: Path, labels: torch.Tensor) -> torch.Tensor | None:
        """The file's first len(labels) feature rows, None where the file cannot serve them. The file is mapped, not
        read whole: a smaller size copies its rows out and reads only those (10k rows of iNat21's 2.7M-row file:
        82 MB, not 22 GB); the whole file's rows stay mapped, read from disk as they are used."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # unreadable (e.g. truncated by a full disk): extract again
            return None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            return None
        feats, cached_labels = payload["features"], payload["labels"]
        n = len(labels)
        if len(cached_labels) < n or not torch.equal(cached_labels[:n], labels):
            return None
        return feats if n == len(feats) else feats[:n].clone()

