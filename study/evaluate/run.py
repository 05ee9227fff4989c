"""`evaluate(cfg, run_dir, encoders, cache_dir) -> RunOutput` (docs/architecture.md, section 2).

Frozen-feature protocols (linear, knn, granularity, concat) extract each encoder's features once (cached), for the
largest labeled subset and the test manifest, and score every labeled size from them: with linear probes, or, one
that fits none (knn), with its entry of SCORERS. A training protocol (finetune, scratch) trains one run per labeled
size by its entry of TRAINERS (both: finetune.py's, through `study.train.pretrain`).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from study.counts import format_count
from study.errors import StudyError
from study.evaluate import finetune as finetune_mod
from study.evaluate import granularity, knn, linear, ranking
from study.evaluate.config import EvalConfig
from study.evaluate.protocols import protocol as protocol_of
from study.evaluate.features import FeatureCache, resolve_device
from study.evaluate.scored import ScoredSizes
from study.hashing import config_hash
from study.runtime_keys import EVALUATE_RUN_ONLY
from study.train.backbones import encoder_provenance

RunOutput = dict  # {"metrics": [MetricRow, ...], "protocol": {...}}


@dataclasses.dataclass
class _Job:
    """One evaluation job as `evaluate` checked it: `sizes` distinct, each at most the train manifest's images;
    `protocol` is its record's protocol, which the protocol's stage completes."""
    cfg: EvalConfig
    run_dir: Path
    cache_dir: Path
    encoders: list[Path]
    train_m: Any  # study.manifests.Manifest
    test_m: Any
    sizes: list[int]
    aug: Any  # study.train.augment's transform
    device: torch.device
    workers: int
    protocol: dict[str, Any]


def _row(metric: str, value: float, labeled_size: int | None, level: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "value": float(value), "labeled_size": labeled_size, "level": level}


def _scores_rows(blocks, y: torch.Tensor, n: int, num_classes: int, level: str | None = None) -> list[dict]:
    """top1 (and top5 where more than 5 classes) of the class scores `blocks` (see ranking.ranked) against y."""
    return _ranks_rows(ranking.ranked(blocks, 5)[0], y, n, num_classes, level)


def _ranks_rows(ranks, y: torch.Tensor, n: int, num_classes: int, level: str | None = None) -> list[dict]:
    """top1 (and top5 where more than 5 classes) of each row's 5 best classes `ranks` (None: NaN) against y."""
    rows = [_row("top1", ranking.hit_rate(ranks, y, 1), n, level)]
    if num_classes > 5:
        rows.append(_row("top5", ranking.hit_rate(ranks, y, 5), n, level))
    return rows


def evaluate(cfg: EvalConfig | dict, run_dir: str | Path, encoders: list[Path], cache_dir: str | Path) -> RunOutput:
    """Run one evaluation job; see the module docstring. `cfg`: an EvalConfig, or a mapping of its fields (read by
    `EvalConfig.from_dict`); `run_dir`: the job's folder (each labeled size's scores, fine-tuning checkpoints: a
    rerun there reads them back); `encoders`: a list of study encoder files (`encoder.pt`), one per encoder the
    protocol takes (two for concat, none for scratch); `cache_dir`: the feature cache, shared by evaluations.
    Metrics: top1/top5 (top5 where > 5 classes) per labeled size (and per level for granularity), knn_top1 for knn
    (or `also_knn`)."""
    from study.manifests import load_manifest
    from study.train.augment import build_augment
    from study.train.data import default_workers
    from study.train.tf32 import tf32_in_use
    from study.version import code_version, library_versions

    if not isinstance(cfg, EvalConfig):
        cfg = EvalConfig.from_dict(cfg)
    t0 = time.time()
    if isinstance(encoders, (str, os.PathLike)):  # a path's characters are no list of encoders
        raise StudyError(f"evaluate: encoders is a list of encoder files, got one path, {str(encoders)!r}: give "
                         f"[{str(encoders)!r}]")
    encoders = [Path(e) for e in encoders]
    kind = protocol_of(cfg.protocol)
    if kind.trains and cfg.protocol not in TRAINERS:  # a table row without its code
        raise NotImplementedError(f"evaluate: protocol {cfg.protocol!r} trains (study.evaluate.protocols) and has no "
                                  "trainer in study.evaluate.run.TRAINERS")
    if not kind.trains and not kind.fits_probes and cfg.protocol not in SCORERS:
        raise NotImplementedError(f"evaluate: protocol {cfg.protocol!r} fits no probe (study.evaluate.protocols) and "
                                  "has no scorer in study.evaluate.run.SCORERS")
    need = kind.encoders
    if len(encoders) != need:
        raise StudyError(f"evaluate: protocol {cfg.protocol!r} takes {need} encoder(s), got {len(encoders)}")
    device = resolve_device(cfg.device)
    train_m, test_m = load_manifest(cfg.train_manifest), load_manifest(cfg.test_manifest)
    for key, m, why in (("train_manifest", train_m, "nothing to train on"),
                        ("test_manifest", test_m, "nothing to score")):
        if m.num_images == 0:  # a hand-made or filtered manifest (`study manifest build` refuses an empty one)
            raise StudyError(f"evaluate.{key}: manifest {m.name} has no images: {why}")
    if train_m.class_names != test_m.class_names:
        raise StudyError(f"evaluate: manifests {train_m.name} and {test_m.name} have different classes "
                         f"({train_m.num_classes} vs {test_m.num_classes}); labels would not correspond")
    sizes = list(dict.fromkeys(train_m.num_images if n == "all" else int(n) for n in cfg.labeled_sizes))
    too_big = [n for n in sizes if n > train_m.num_images]
    if too_big:
        raise StudyError(f"evaluate.labeled_sizes: {too_big[0]} is larger than manifest {train_m.name} "
                         f"({train_m.num_images} images)")
    _refuse_test_images_among_labeled(train_m, test_m, max(sizes))
    aug_cfg = cfg.augment_config()
    aug = build_augment(aug_cfg)
    workers = default_workers() if cfg.num_workers is None else cfg.num_workers
    torch.manual_seed(cfg.seed)
    recipes, pretrain = zip(*map(encoder_provenance, encoders)) if encoders else ((), ())

    protocol: dict[str, Any] = {
        "stage": "evaluate",
        "protocol": cfg.protocol,
        "train_manifest": train_m.name,
        "train_manifest_content_hash": train_m.content_hash,
        "test_manifest": test_m.name,
        "test_manifest_content_hash": test_m.content_hash,
        "test_images": test_m.num_images,
        "eval_corruption": test_m.meta.get("corruption") or "none",
        "train_corruption": train_m.meta.get("corruption") or "none",  # the labeled images' (the paper: clean)
        "labeled_sizes": sizes,
        "num_classes": train_m.num_classes,
        "transform": aug.describe(),
        "batch_size": cfg.batch_size,
        "num_workers": workers,
        "devices": 1,
        "device_kind": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tf32": tf32_in_use(device),  # the extraction's float32 convolutions on a GPU
        "cpu_threads": torch.get_num_threads(),  # on a CPU, float sums (and so results) depend on it
        "seed": cfg.seed,
        "code_version": code_version(),
        **library_versions(),  # torch, torchvision, numpy, Pillow, the JPEG decoder
        "config": cfg.recorded_dict(),
        # the pretraining recipe of each encoder (its record's protocol fingerprint; None: a file that carries none):
        # kept in this record's fingerprint, so that evaluations of encoders of two recipes are never averaged
        "encoder_recipes": list(recipes),
        # what those fingerprints hash, read from each encoder file (concat: a list; None: a file written without
        # it): not fingerprinted, encoder_recipes pins it
        "pretrain": pretrain[0] if len(pretrain) == 1 else list(pretrain) or None,
    }
    job = _Job(cfg, Path(run_dir), Path(cache_dir), encoders, train_m, test_m, sizes, aug, device, workers, protocol)
    metrics = _trained(job) if kind.trains else _frozen(job)
    # this session, plus what the fine-tuning runs resumed here took in earlier ones (a preempted job's whole time)
    protocol["wall_time_s"] = time.time() - t0 + protocol.get("earlier_sessions_seconds", 0.0)
    return {"metrics": metrics, "protocol": protocol}


def _refuse_test_images_among_labeled(train_m, test_m, largest: int) -> None:
    """A StudyError when a test image is one of the labeled images (one root, one relative path): the evaluation
    would score images it trained on (e.g. an image folder without split folders gives every split the whole tree)."""
    root = train_m.meta.get("root")
    if not root or root != test_m.meta.get("root"):
        return
    labeled = set(train_m.labeled(largest)["path"].tolist())
    shared = [p for p in test_m.all()["path"].tolist() if p in labeled]
    if shared:
        from study.datasets.base import shared_files_remedy

        remedy = shared_files_remedy(train_m.meta.get("dataset")) or "build the test manifest from another split"
        raise StudyError(f"evaluate: {len(shared)} of the {test_m.num_images} test images of manifest {test_m.name} "
                         f"are labeled images of {train_m.name} (e.g. {root}/{shared[0]}): it would be scored on "
                         f"images it trained on; {remedy}")


def _trained(job: _Job) -> list[dict]:
    """One training run per labeled size by the protocol's entry of TRAINERS, each scored by its own classifier."""
    metrics, runs, test_m = [], {}, job.test_m
    train = TRAINERS[job.cfg.protocol]
    y_test = torch.tensor(test_m.all()["label"].to_numpy(dtype="int64", copy=True))
    for n in job.sizes:
        ranks, p = train(job.cfg, job.run_dir, job.encoders[0] if job.encoders else None,
                         None if n == job.train_m.num_images else n, n, test_m, job.aug, job.device, job.workers)
        metrics += _ranks_rows(ranks, y_test, n, test_m.num_classes)
        runs[str(n)] = p
    first = next(iter(runs.values()))
    epochs = {n: r["epochs"] for n, r in runs.items()}  # under a `steps` budget, each labeled size's own
    job.protocol.update({
        "encoders": [_encoder_record(e) for e in job.encoders],
        "feature_layer": "none (whole network fine-tuned; its own classifier scored)",
        "method": "supervised", "backbone": first["backbone"], "width": first["width"],
        "epochs": first["epochs"] if len(set(epochs.values())) == 1 else epochs,
        "steps": {n: r["steps"] for n, r in runs.items()},
        "effective_batch": {n: r["effective_batch"] for n, r in runs.items()},
        "per_device_batch": {n: r["per_device_batch"] for n, r in runs.items()}, "optimizer": first["optimizer"],
        "base_lr": first["base_lr"], "effective_lr": {n: r["effective_lr"] for n, r in runs.items()},
        "weight_decay": first["weight_decay"], "train_augmentation": first.get("augmentation"),
        "images_per_s": {n: r["images_per_s"] for n, r in runs.items()},
        "earlier_sessions_seconds": sum(r.get("earlier_sessions_seconds", 0.0) for r in runs.values()),
        "runs": runs,
    })
    return metrics


# The training protocols (PROTOCOL_TABLE's `trains=True`), each with what trains and scores one labeled size: (cfg,
# run_dir, the encoder file or None, the labeled subset's size or None for every row, its rows, the test manifest, the
# eval transform, device, loader workers) -> (each test image's best 5 classes, N x 5, or None where a score is not
# finite; the run's record: `pretrain`'s protocol, which the job's record reads, see `_trained`). Each trains in its
# own `run_dir/<protocol>-<n>` (finetune.run_finetune); its default recipe is its entry of
# study.evaluate.recipes.RECIPES. `evaluate` refuses such a protocol without one before any work.
TRAINERS = {"finetune": finetune_mod.run_finetune, "scratch": finetune_mod.run_finetune}


def _encoder_record(path: Path, sha256: str | None = None) -> dict:
    from study.hashing import file_sha256

    return {"path": str(path), "sha256": sha256 or file_sha256(path), "backbone": finetune_mod.encoder_spec(path)}


def _frozen(job: _Job) -> list[dict]:
    """Each encoder's features extracted once (FeatureCache), then every labeled size scored from them."""
    cfg, encoders = job.cfg, job.encoders
    levels = _levels(cfg, job.train_m, job.test_m) if cfg.protocol == "granularity" else []  # before any extraction
    level_maps = _level_maps(levels, job.train_m, job.test_m)  # the same at every labeled size: built once
    cache = FeatureCache(job.cache_dir, job.aug, cfg.feature_layer, cfg.batch_size, job.device, job.workers,
                         cfg.checkpoint_every_minutes)
    train_feats, test_feats, extraction = _extract(job, cache)
    extract_s = sum(e.get("seconds", 0.0) for e in extraction)
    earlier_s = sum(e.get("earlier_sessions_seconds", 0.0) for e in extraction)  # of extractions a requeue resumed
    extracted = sum(e["rows"] - e["resumed_rows"] for e in extraction if not e["cached"])
    scored = _scored_sizes(job, cache)
    t_probe = time.monotonic()
    metrics, probes, read_back_s = _score_sizes(job, scored, train_feats, test_feats, level_maps)
    probe_s = time.monotonic() - t_probe + read_back_s
    earlier_s += read_back_s
    reads = cfg.recorded_dict()  # the settings the protocol reads (the table's `unused` left out)
    job.protocol.update({
        "encoders": [_encoder_record(e, cache.encoder_sha(e)) for e in encoders],
        "feature_layer": "pooled penultimate (backbone output)" if cfg.feature_layer == "pooled"
        else f"global average pool of {cfg.feature_layer}",
        "feature_dim": int(sum(f.x.shape[1] for f in train_feats)),
        "linear": {**cfg.linear.recorded_dict(),
                   **({"standardized_with": linear.STANDARDIZED_WITH} if cfg.linear.standardize else {})}
        if "linear" in reads else None,
        "knn": dataclasses.asdict(cfg.knn) if "knn" in reads else None,
        "chosen_weight_decay": {n: _chosen_weight_decay(p) for n, p in probes.items()},
        "probes": probes,
        "levels": levels or None,
        "granularity_mode": ("per_level" if cfg.per_level else "finest level mapped up") if levels else None,
        "extraction": extraction,
        "extraction_seconds": extract_s,
        **({"earlier_sessions_seconds": earlier_s} if earlier_s else {}),
        "images_per_s": (extracted / extract_s) if extracted and extract_s > 0 else None,
        "probe_seconds": probe_s,
    })
    return metrics


def _extract(job: _Job, cache: FeatureCache) -> tuple[list, list, list[dict]]:
    """(train features, test features, what each extraction recorded): per encoder, the largest labeled subset of
    the train manifest and the whole test manifest."""
    largest = max(job.sizes)
    train_feats, test_feats, extraction = [], [], []
    for enc in job.encoders:
        for m, n, out in ((job.train_m, largest, train_feats), (job.test_m, None, test_feats)):
            f = cache.get(enc, m, n)
            out.append(f)
            extraction.append({"encoder": str(enc), "manifest": m.name,
                               "subset": f"labeled({n})" if n is not None else "all", **f.info})  # info: "rows" (n)
    return train_feats, test_feats, extraction


def _scored_sizes(job: _Job, cache: FeatureCache) -> ScoredSizes:
    """The job's run_dir/scored, keyed by what a size's scores depend on."""
    # what a size's scores depend on: not the run-only settings (a rerun with other workers reads them back, as its
    # job id is the same), nor the other sizes (each fit sees only its own rows and seed)
    shaping = {k: v for k, v in job.cfg.recorded_dict().items() if k not in (*EVALUATE_RUN_ONLY, "labeled_sizes")}
    return ScoredSizes(job.run_dir / "scored", config_hash({
        "config": shaping, "features": [cache.key(e, m) for e in job.encoders for m in (job.train_m, job.test_m)],
        "cpu_threads": torch.get_num_threads() if job.device.type == "cpu" else None}, 16))  # float sums depend on it


def _score_sizes(job: _Job, scored: ScoredSizes, train_feats: list, test_feats: list,
                 level_maps: dict) -> tuple[list[dict], dict[str, dict], float]:
    """(metric rows, what each size's probes recorded, seconds of the sizes read back): each size scored, or read
    back from `scored` where an earlier session of this job scored it."""
    cfg, device = job.cfg, job.device
    metrics, probes, read_back_s = [], {}, 0.0
    code_version = job.protocol["code_version"]
    for position, n in enumerate(job.sizes, 1):
        t_size = time.monotonic()
        where = f"[evaluate] {cfg.protocol} at {format_count(n)} labeled images ({position}/{len(job.sizes)})"
        saved = scored.load(n)
        if saved is not None:  # scored before this job was stopped
            metrics += saved["metrics"]
            probes[str(n)] = saved["info"]
            read_back_s += saved["seconds"]
            print(f"{where}: read back from {scored.folder} (scored in an earlier session)", file=sys.stderr,
                  flush=True)
            if saved.get("code_version") != code_version:
                print(f"[evaluate] WARNING: that size was scored by code version {saved.get('code_version')}, this "
                      f"session runs {code_version} (the record names this one); delete {scored.folder} to score "
                      f"every size again", file=sys.stderr, flush=True)
            continue
        rows, info = _score_size(cfg, n, train_feats, test_feats, level_maps, job.train_m.num_classes, device)
        metrics += rows
        probes[str(n)] = info
        scored.save(n, rows, info, time.monotonic() - t_size)
        last = rows[-1]["level"] if rows else None  # granularity: its last level's top-1, named
        top1 = [f"{r['metric']} {r['value']:.4f}" + (f" ({r['level']})" if r["level"] else "") for r in rows
                if r["metric"] in ("top1", "knn_top1") and r["level"] in (None, last)]
        print(f"{where}: {', '.join(top1) or 'scored'} in {time.monotonic() - t_size:.1f} s", file=sys.stderr,
              flush=True)
    return metrics, probes, read_back_s


def _score_size(cfg: EvalConfig, n: int, train_feats: list, test_feats: list, level_maps: dict, num_classes: int,
                device: torch.device) -> tuple[list[dict], dict[str, Any]]:
    """The metric rows of labeled size `n` (the first `n` rows of each encoder's `train_feats`, scored on
    `test_feats`) and what its scorer or probes recorded: a protocol that fits probes fits them (and scores kNN with
    `also_knn`), another is scored by its entry of SCORERS."""
    y, y_test = train_feats[0].y[:n], test_feats[0].y
    raw = [(tr.x[:n], te.x) for tr, te in zip(train_feats, test_feats)]
    info: dict[str, Any] = {"images": int(len(y)), "feature_dim": int(sum(a.shape[1] for a, _ in raw))}
    if not protocol_of(cfg.protocol).fits_probes:
        return SCORERS[cfg.protocol](cfg, n, raw, y, y_test, num_classes, device, info), info
    rows = _knn_rows(cfg, n, raw, y, y_test, num_classes, device, info) if cfg.also_knn else []
    # raw features: the probe z-scores each column with its own fit's rows (of a concatenation, each
    # encoder's columns alike), see study.evaluate.linear
    x, xt = (_side_by_side(raw, i).to(device) for i in (0, 1))
    if cfg.protocol == "granularity":
        rows += _granularity(cfg, x, y.to(device), xt, y_test, n, level_maps, num_classes, info)
    else:
        probe, pinfo = linear.train_probe(x, y.to(device), num_classes, cfg.linear, cfg.seed)
        rows += _scores_rows(probe.blocks(xt), y_test, n, num_classes)
        info.update(pinfo)
    return rows, info


def _knn_rows(cfg: EvalConfig, n: int, raw: list, y: torch.Tensor, y_test: torch.Tensor, num_classes: int,
              device: torch.device, info: dict[str, Any]) -> list[dict]:
    """kNN's `knn_top1` of labeled size `n`: cosine similarity; of a concatenation, the mean of the encoders'
    cosines. Its copies of the features are freed on return, before a probe makes its own (at iNat21's scale a copy
    is 22 GB)."""
    kx, kxt = (_side_by_side(raw, i, unit=True).to(device) for i in (0, 1))
    (ranks,) = ranking.ranked(knn.score_blocks(kx, y, kxt, num_classes, cfg.knn.k, cfg.knn.temperature), 1)
    info["knn_k"] = min(cfg.knn.k, len(y))  # the neighbours that voted (k capped at the labeled images)
    return [_row("knn_top1", ranking.hit_rate(ranks, y_test, 1), n)]


# The frozen-feature protocols that fit no probe (PROTOCOL_TABLE's `fits_probes=False`), each with what scores one
# labeled size: (cfg, n, [(train rows, test rows) per encoder], labels, test labels, classes, device, the size's
# record to add to) -> metric rows. `evaluate` refuses such a protocol without one before any work.
SCORERS = {"knn": _knn_rows}


def _side_by_side(pairs: list[tuple[torch.Tensor, torch.Tensor]], i: int, unit: bool = False) -> torch.Tensor:
    """The `i`-th tensor of each encoder's (train, test) pair, columns side by side, each encoder's rows scaled to
    unit length with `unit` (written into the one result: no other copy); of one encoder, that tensor itself (no
    copy, never scaled: kNN's cosine does not need it)."""
    if len(pairs) == 1:
        return pairs[0][i]
    parts = [p[i] for p in pairs]
    out = torch.empty(len(parts[0]), sum(p.shape[1] for p in parts), dtype=parts[0].dtype,
                      device=parts[0].device)  # as torch.cat: on the features' device
    col = 0
    for part in parts:
        block = out[:, col:col + part.shape[1]].copy_(part)
        if unit:
            block.div_(part.norm(dim=1, keepdim=True).clamp_min(knn.EPS))
        col += part.shape[1]
    return out


def _chosen_weight_decay(probe_info: dict):
    """The weight decay chosen at one labeled size; per level ({level: wd}) for per-level granularity; None for kNN."""
    if "weight_decay" in probe_info:
        return probe_info["weight_decay"]
    per_level = {lv: i["weight_decay"] for lv, i in probe_info.get("levels", {}).items() if "weight_decay" in i}
    return per_level or None


def _levels(cfg, train_m, test_m) -> list[str]:
    levels = list(cfg.levels or test_m.levels)
    if not levels:
        raise StudyError(f"evaluate.levels: manifest {test_m.name} has no taxonomy levels; give levels or build "
                         "the manifest with --taxonomy")
    for m in (train_m, test_m):
        missing = [lv for lv in levels if lv not in m.table.columns]
        if missing:
            raise StudyError(f"evaluate.levels: manifest {m.name} has no taxonomy column(s) {missing} "
                             f"(it has: {m.levels or 'none'})")
    return levels


def _level_maps(levels: list[str], train_m, test_m) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """level -> (class -> value index, the level's values), in `levels` order (granularity.level_map)."""
    tables = [train_m.table, test_m.table]
    taxonomy = [lv for lv in test_m.levels if all(lv in t.columns for t in tables)]
    return {level: granularity.level_map(tables, granularity.level_path(taxonomy, level), train_m.num_classes,
                                         "evaluate.levels") for level in levels}


def _granularity(cfg, x, y, xt, y_test, n, level_maps, num_classes, info) -> list[dict]:
    rows, info["levels"] = [], {}
    if cfg.per_level:
        for level, (mapping, values) in level_maps.items():
            if len(values) == num_classes and bool((mapping >= 0).all()):
                # one value per class (the finest level): the paper's classifier itself, on the labels as numbered,
                # not on the values' (sorted paths') order, whose fit differs in floating point
                mapping = torch.arange(num_classes)
            probe, pinfo = linear.train_probe(x, mapping.to(y.device)[y], len(values), cfg.linear, cfg.seed)
            info["levels"][level] = {**pinfo, "values": len(values)}  # as the mapped-up mode records it
            rows += _scores_rows(probe.blocks(xt), mapping[y_test], n, len(values), level)
        return rows
    # the paper's protocol: one classifier at the finest level, its ranking mapped up; a level's top-5 ranks the
    # level's own scores (granularity.level_scores), all levels' in one pass over the test rows
    probe, pinfo = linear.train_probe(x, y, num_classes, cfg.linear, cfg.seed)
    info.update(pinfo)
    top5 = [lv for lv, (_, values) in level_maps.items() if len(values) > 5]
    views = [None] + [functools.partial(granularity.level_scores, mapping=level_maps[lv][0].to(xt.device),
                                        num_values=len(level_maps[lv][1])) for lv in top5]
    classes, *by_level = ranking.ranked(probe.blocks(xt), 5, views)
    level_ranks = dict(zip(top5, by_level))
    for level, (mapping, values) in level_maps.items():
        rows.append(_row("top1", granularity.mapped_top1(classes, y_test, mapping), n, level))
        if level in level_ranks:
            rows.append(_row("top5", ranking.hit_rate(level_ranks[level], mapping[y_test], 5), n, level))
        info["levels"][level] = {"values": len(values)}
    return rows
