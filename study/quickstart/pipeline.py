"""The quickstart, step by step, through the same commands a cluster user types.

data (PNG trees) -> `study manifest build/pool/corrupt` -> `study plan` (every manifest checked) ->
`study submit --cluster local` -> `study report`. Each step is idempotent, so a rerun after a kill finishes what
is missing: finished jobs are skipped, interrupted ones resume from their checkpoints, and jobs that failed (with
those cancelled with them) run again (`--retry-failed`: a rerun after a fix of the cause would otherwise skip them,
say every job done and draw a report without them).
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from study.errors import StudyError
from study.quickstart import GRID, PROFILE, export, fashion_mnist
from study.quickstart.scale import (
    DIGITS_LABELED,
    DIGITS_SIZES,
    FMNIST_LABELED,
    FMNIST_SIZES,
    POOL_EACH,
    Scale,
    write_scaled_grid,
)

CORRUPTIONS = ("downsample:factor=2", "downsample:factor=4", "jpeg:quality=10", "salt_pepper:fraction=0.1")


@dataclass(frozen=True)
class Options:
    grid: Path  # grids/quickstart.yaml
    profile: Path  # grids/profiles/local.yaml
    data: Path  # PNG trees (and the rescaled grid of a smaller scale)
    manifests: Path
    workdir: Path  # job folders, results, ledgers
    report: Path  # the report folder
    scale: Scale
    fashion_mnist: str | None = None  # a folder of IDX files; None = the Debian package's
    workers: int | None = None  # local workers; None = one per core
    prepare_only: bool = False  # stop after `study plan`


def _log(msg: str) -> None:
    print(f"[quickstart] {msg}", file=sys.stderr, flush=True)


def _study(*argv: str, jobs_failed: str = "") -> None:
    """`study ARGV` in this process, logged as a shell line one can paste (each argument quoted where it must be). A
    step ended by Ctrl-C (a closed output pipe) ends the quickstart as it would (exit 130, 141); any other failure is
    a StudyError (exit 2), which adds `jobs_failed` where the step's exit code says a job failed (1).
    (A SIGTERM from `study cancel` ends a local submit with SystemExit(143), which passes through, said once.)"""
    from study.cli import BROKEN_PIPE, INTERRUPTED, main, said

    _log(f"$ study {shlex.join(argv)}")
    code = main(list(argv))
    if code == INTERRUPTED:  # the step said so: the quickstart ends without saying it twice
        interrupted = KeyboardInterrupt()
        said(interrupted)
        raise interrupted
    if code == BROKEN_PIPE:  # the reader went away (`study quickstart 2>&1 | head`): end as study.cli ends then
        raise BrokenPipeError
    if code:
        raise StudyError(f"`study {shlex.join(argv)}` failed with exit code {code}"
                         + (f": {jobs_failed}" if jobs_failed and code == 1 else ""))


def build_manifests(data: Path, scale: Scale, seed: int = 0) -> None:
    """The quickstart's manifests: Fashion-MNIST and MNIST digits (train/test), a pooled set, corrupted variants."""
    from study.grids.jobs import corrupted_manifest

    fm, dg = data / "fashion-mnist", data / "mnist"
    for name, root, split, sizes, labeled, extra in (
        ("qs_fmnist_train", fm, "train", FMNIST_SIZES, FMNIST_LABELED, ["--taxonomy", str(fm / "taxonomy.csv")]),
        ("qs_fmnist_test", fm, "test", None, None, ["--taxonomy", str(fm / "taxonomy.csv")]),
        ("qs_mnist_train", dg, "train", DIGITS_SIZES, DIGITS_LABELED, []),
        ("qs_mnist_test", dg, "test", None, None, []),
    ):
        argv = ["manifest", "build", "--dataset", "imagefolder", "--root", str(root / split), "--split", split,
                "--name", name, "--seed", str(seed), *extra]
        if sizes:
            argv += ["--sizes", scale.manifest_sizes(sizes), "--labeled-sizes", scale.manifest_sizes(labeled, True)]
        _study(*argv)
    each = scale.manifest_sizes((POOL_EACH,))
    _study("manifest", "pool", "qs_fmnist+mnist_train", "--from", f"qs_fmnist_train:{each}",
           "--from", f"qs_mnist_train:{each}")
    for spec in CORRUPTIONS:
        _study("manifest", "corrupt", corrupted_manifest("qs_fmnist_train", spec), "--base", "qs_fmnist_train",
               "--corruption", spec)


def _counts(tree: Path) -> tuple[int, int]:
    counts = json.loads((tree / export.COMPLETE).read_text())["counts"]
    return counts["train"], counts["test"]


def run(opts: Options) -> None:
    """Data, manifests and plan; then (unless `prepare_only`) every job here, and the report."""
    t0 = time.monotonic()
    for flag, path, default in (("--grid", opts.grid, GRID), ("--profile", opts.profile, PROFILE)):  # before the data
        if not path.is_file():  # the default is the package's own copy: only a broken install lacks it
            how = (f": this installation of study lacks the copy it ships (pyproject.toml's package-data); "
                   f"reinstall study, or give {flag}") if path == default else ""
            raise StudyError(f"{flag} {path}: no such file{how}")
    from study.grids import load_grid, load_profile

    load_grid(opts.grid)  # their errors (file:line) too come before the data
    load_profile(opts.profile)
    os.environ["STUDY_MANIFESTS"] = str(opts.manifests.resolve())  # the local workers inherit it
    _log(f"manifests in {os.environ['STUDY_MANIFESTS']}: to run the `study` commands below by hand, first "
         f"`export STUDY_MANIFESTS={shlex.quote(os.environ['STUDY_MANIFESTS'])}`")
    idx = fashion_mnist.locate(opts.fashion_mnist)
    fm = export.export_fashion_mnist(opts.data, idx, opts.scale.fmnist_train_per_class,
                                     opts.scale.fmnist_test_per_class)
    dg = export.export_digits(opts.data, opts.scale.digits_train_per_class, opts.scale.digits_test_per_class)
    build_manifests(opts.data, opts.scale)
    grid = write_scaled_grid(opts.grid, opts.scale, {"fmnist": _counts(fm), "mnist": _counts(dg)},
                             opts.data / f"{opts.grid.stem}-{opts.scale.name}.yaml")
    _study("plan", str(grid), "--profile", str(opts.profile))
    _log(f"data, manifests and plan ready in {time.monotonic() - t0:.0f} s")
    if opts.prepare_only:
        return
    t1 = time.monotonic()
    workers = ["--workers", str(opts.workers)] if opts.workers else []
    status = shlex.join(["study", "status", str(grid), "--profile", str(opts.profile), "--workdir", str(opts.workdir)])
    _study("submit", str(grid), "--cluster", "local", "--profile", str(opts.profile), "--workdir", str(opts.workdir),
           "--retry-failed", *workers, jobs_failed=f"each failed job's error and log: `{status}`; `study quickstart` "
                                                   "again, with the same options, reruns them")
    _log(f"every job done in {time.monotonic() - t1:.0f} s")
    _study("report", str(grid), "--workdir", str(opts.workdir), "--out", str(opts.report))
    _log(f"the whole quickstart took {time.monotonic() - t0:.0f} s; report: {opts.report / 'index.html'}")
