"""Report speed at the scale of a study: a generated grid of 4,360 jobs (four methods x four domains x five sizes x ten
seeds; linear probes with kNN, fine-tuning, scratch, granularity at seven levels), a result record for each of 97%
of its jobs written by `write_result` with a protocol of a real record's size (~10 KB), a training curve of 100 rows
per pretraining job, and a record of another grid beside them for every tenth job.

Prints the seconds of the bare `json.loads` of every result file (the reference: what any reader pays), of
`read_results`, `records_to_table`, `gather` with the plan, `study status` and the whole `build_report`, each
reader's ratio to the reference, and the peak memory of the process. `--quick` uses two seeds (872 jobs), `--seeds N`
N of them.

    .venv/bin/python benchmarks/report_bench.py [--quick | --seeds N]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

from plan_bench import DATASETS  # benchmarks/: the folder of the script run

SEEDS = 10
GRID = """\
name: bench
""" + DATASETS + """\
defaults:
  pretrain: {backbone: resnet50, epochs: 1000, batch_size: 4096}
  evaluate: {}
axes:
  method: [simclr, moco, byol, supervised]
  dataset: [imagenet, inat21, places365, glc20]
  size: [50k, 125k, 250k, 500k, 1M]
seeds: SEEDS
stages:
  pretrain: {resources: {gpus: node}}
  evaluate:
    - {protocol: linear, eval_datasets: same, labeled_sizes: [10k, 50k, 100k, 250k], params: {also_knn: true}}
    - {protocol: finetune, where: {method: [simclr, moco, byol]}, eval_datasets: same,
       labeled_sizes: [10k, 50k, 100k, 250k]}
    - {protocol: scratch, where: {method: supervised}, eval_datasets: same, labeled_sizes: [10k, 50k, 100k, 250k]}
    - {protocol: granularity, where: {dataset: inat21}, eval_datasets: same, labeled_sizes: [250k],
       levels: [kingdom, phylum, class, order, family, genus, species]}
"""
LEVELS = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]


def _pretrain_protocol(job) -> dict:
    """A pretraining protocol shaped like a real one (its config, optimizer, augmentation, versions)."""
    sec = job.config["pretrain"]
    augment = {f"{k}_{i}": 0.1 * i for k in ("crop", "jitter", "blur", "solarize") for i in range(8)}
    return {"stage": "pretrain", "method": sec["method"], "size": sec.get("size"), "manifest": sec["manifest"],
            "manifest_content_hash": hashlib.sha256(sec["manifest"].encode()).hexdigest(), "seed": sec.get("seed"),
            "epochs": 1000, "steps": 12207, "effective_batch": 4096, "base_lr": 0.3, "effective_lr": 4.8,
            "optimizer": {"name": "lars", "lr": 0.3, "momentum": 0.9, "weight_decay": 1e-6, "trust": 0.001},
            "augmentation": augment, "config": {**sec, "optim": {"name": "lars", "lr": 0.3}, "augment": augment,
                                                "moco": {"queue": 65536}, "byol": {"tau": 0.996}},
            "torch_version": "2.4.0", "code_version": "0.1.0+git.abc1234", "device_kind": "NVIDIA H100",
            "wall_time_s": 86400.0, "images_per_s": 2500.0, "cpu_threads": 16}


def _record(job, jobs_by_id: dict, n: int) -> dict:
    """A result record of `job` with realistic metrics rows and protocol."""
    axes = job.config["axes"]
    value = 0.5 + 0.01 * (n % 7)
    if job.stage == "pretrain":
        protocol, metrics = _pretrain_protocol(job), [{"metric": "loss", "value": 3.0 + 0.01 * (n % 5)}]
    else:
        ev = job.config["evaluate"]
        sizes = ev.get("labeled_sizes") or [250_000]
        pretrain = [_pretrain_protocol(jobs_by_id[d]) for d in job.depends_on]
        protocol = {"stage": "evaluate", "protocol": ev["protocol"], "train_manifest": ev["train_manifest"],
                    "test_manifest": ev["test_manifest"], "labeled_sizes": sizes, "seed": axes.get("seed"),
                    "config": dict(ev), "encoder_recipes": [None] * len(pretrain),
                    "pretrain": pretrain[0] if len(pretrain) == 1 else pretrain or None,
                    "probes": [{"labeled_size": s, "weight_decays": [1e-6 * 10**i for i in range(6)],
                                "val_top1": [0.4 + 0.01 * i for i in range(6)]} for s in sizes],
                    "levels": LEVELS if ev["protocol"] == "granularity" else None, "wall_time_s": 3600.0}
        metrics = []
        for s in sizes:
            for i, level in enumerate(LEVELS if ev["protocol"] == "granularity" else [None]):
                metrics += [{"metric": "top1", "value": value - 0.05 * i, "labeled_size": s, "level": level},
                            {"metric": "top5", "value": value + 0.2, "labeled_size": s, "level": level}]
            if ev.get("also_knn"):
                metrics.append({"metric": "knn_top1", "value": value - 0.1, "labeled_size": s, "level": None})
    return {"job_id": job.id, "stage": job.stage, "grid": "bench", "axes": axes, "depends_on": list(job.depends_on),
            "metrics": metrics, "protocol": protocol, "code_version": "0.1.0+git.abc1234", "wall_time_s": 3600.0,
            "finished_at": f"2025-03-01T{n % 24:02d}:{n % 60:02d}:00+00:00"}


def _timed(what):
    t0 = time.perf_counter()
    out = what()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two seeds (872 jobs)")
    ap.add_argument("--seeds", type=int, default=SEEDS, help="seeds of the grid (ten: 4,360 jobs)")
    args = ap.parse_args(argv)
    seeds = 2 if args.quick else args.seeds
    with tempfile.TemporaryDirectory() as d:
        os.environ["STUDY_MANIFESTS"] = str(Path(d) / "manifests")  # none: no result is on a rebuilt manifest
        from study.grids import plan_grid
        from study.launch.status import print_status
        from study.report.build import build_report
        from study.results import gather, read_results, records_to_table, write_result

        grid = Path(d) / "bench.yaml"
        grid.write_text(GRID.replace("SEEDS", str(list(range(seeds)))))
        plan, workdir = plan_grid(grid), Path(d) / "runs"
        jobs_by_id = {j.id: j for j in plan.jobs}
        curve = "step,epoch,loss,lr,images_per_s,train_top1,hours\n" + "".join(
            f"{i * 100},{i * 10},{4 - i * 0.03:.5f},0.3,2500.0,,{i * 0.1:.3f}\n" for i in range(1, 101))
        t0 = time.perf_counter()
        for n, job in enumerate(plan.jobs):
            if n % 33 == 0:  # not run yet
                continue
            write_result(workdir, _record(job, jobs_by_id, n))
            if n % 10 == 0:  # another grid's result in the same workdir
                write_result(workdir, {**_record(job, jobs_by_id, n), "job_id": f"other{n:06d}", "grid": "other"})
            if job.stage == "pretrain":
                (workdir / "jobs" / job.id).mkdir(parents=True)
                (workdir / "jobs" / job.id / "train_log.csv").write_text(curve)
        files = sorted((workdir / "results").glob("*.json"))
        print(f"jobs: {len(plan.jobs)}; result files: {len(files)} "
              f"({sum(f.stat().st_size for f in files) / 2**20:.0f} MiB), written in {time.perf_counter() - t0:.1f} s")

        _, t_json = _timed(lambda: [json.loads(f.read_text()) for f in files])
        records, t_read = _timed(lambda: read_results(workdir))
        table, t_table = _timed(lambda: records_to_table(records))
        _, t_gather = _timed(lambda: gather(workdir, plan))
        _, t_status = _timed(lambda: print_status(plan, workdir, out=io.StringIO()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, t_report = _timed(lambda: build_report(workdir, Path(d) / "report", plan=plan))
    print(f"table: {len(table)} rows x {table.shape[1]} columns")
    print(f"json.loads of every file (reference): {t_json:.2f} s")
    for name, t in (("read_results", t_read), ("records_to_table (every record)", t_table),
                    ("gather (the plan's)", t_gather), ("study status", t_status), ("build_report", t_report)):
        print(f"{name}: {t:.2f} s  ratio_to_reference: {t / t_json:.1f}")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
