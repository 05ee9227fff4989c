"""Planning speed: a generated grid of 10,000 jobs (5,000 pretraining x 1 linear probe each) plans in <= 2 s.

Prints the time of `plan_grid` (load, expand, ids, dependencies, resources, cost estimate), of `Plan.check` without
manifests (every distinct config through PretrainConfig.from_dict; torch imported beforehand), and the ratio of
each to the 2 s target (< 1 is within it). `--quick` is accepted for `make benchmarks` and changes nothing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0
DATASETS = """\
datasets:
  imagenet: {train: imagenet_train, test: imagenet_val}
  inat21: {train: inat21_train, test: inat21_val}
  places365: {train: places365_train, test: places365_val}
  glc20: {train: glc20_train, test: glc20_test}
"""  # the paper's four domains, as a generated grid names their manifests (also report_bench's)
GRID = """\
name: bench
""" + DATASETS + """\
defaults:
  pretrain: {backbone: resnet50, epochs: 100, batch_size: 1024, optim: {name: lars, lr: 0.3}}
  evaluate: {}
axes:
  method: [simclr, moco, byol, supervised, random]
  dataset: [imagenet, inat21, places365, glc20]
  size: [50k, 125k, 250k, 500k, 1M]
  corruption: [none, "downsample:factor=2", "downsample:factor=4", "jpeg:quality=10", "salt_pepper:fraction=0.1"]
seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
stages:
  pretrain: {resources: {gpus: node}}
  evaluate:
    - {protocol: linear, labeled_sizes: [10k, 50k, 100k]}
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted for `make benchmarks`; changes nothing")
    ap.parse_args(argv)
    from study.grids import plan_grid

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.yaml"
        path.write_text(GRID)
        plan_grid(path)  # warm imports (yaml, study.corruptions)
        t0 = time.perf_counter()
        plan = plan_grid(path)
        t_plan = time.perf_counter() - t0
        import study.train.methods  # noqa: F401  (torch, with the method registry: imported once by any check,
        # not counted)

        t0 = time.perf_counter()
        plan.check(manifests=False)
        t_check = time.perf_counter() - t0
    n = len(plan.jobs)
    assert n == 10_000, n
    print(f"jobs: {n} ({plan.counts['pretrain']} pretrain, {plan.counts['evaluate']} evaluate)")
    print(f"plan_grid: {t_plan:.3f} s  ratio_to_target: {t_plan / TARGET_S:.3f}")
    print(f"plan_grid + check (no manifests): {t_plan + t_check:.3f} s  ratio_to_target: "
          f"{(t_plan + t_check) / TARGET_S:.3f}")


if __name__ == "__main__":
    sys.exit(main())
