"""`study quickstart`: the paper's four studies in miniature, on this machine."""
from __future__ import annotations

import argparse
from pathlib import Path

from study.cli import OneWorkdir, count_arg
from study.quickstart import GRID, PROFILE
from study.quickstart.scale import SCALES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart", help="the miniature study on Fashion-MNIST and MNIST digits: data, manifests, jobs, report",
        description="Write Fashion-MNIST (Debian's dataset-fashion-mnist, or --fashion-mnist DIR) and MNIST digits "
                    "as PNG trees, freeze their manifests, plan grids/quickstart.yaml, run every job here "
                    "(`study submit --cluster local`) and draw the report (`study report`). Rerunning it finishes "
                    "what is missing and reruns the jobs that failed.")
    p.add_argument("--grid", type=Path, default=GRID, metavar="FILE",
                   help="the grid to run (default: grids/quickstart.yaml as shipped with study, %(default)s)")
    p.add_argument("--profile", type=Path, default=PROFILE, metavar="FILE",
                   help="the profile `study plan` and `study submit` get (resources and the cost model; default: "
                        "grids/profiles/local.yaml as shipped, %(default)s)")
    p.add_argument("--scale", choices=sorted(SCALES), default="full",
                   help="full (default): the README's run; tiny: the same grid on a few hundred images (the tests')")
    p.add_argument("--data", type=Path, default=None, metavar="DIR", help="where the PNG trees are written (default: "
                   "data/quickstart, or data/quickstart-SCALE)")
    p.add_argument("--manifests", type=Path, default=None, metavar="DIR",
                   help="where its manifests are frozen (default: manifests/ in the --data folder)")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR", action=OneWorkdir,
                   help="job folders, results, ledgers (default: runs/quickstart, or runs/quickstart-SCALE)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder (default: reports/quickstart, "
                   "or reports/quickstart-SCALE)")
    p.add_argument("--fashion-mnist", default=None, metavar="DIR",
                   help="a folder holding the four Fashion-MNIST IDX files (.gz or uncompressed)")
    p.add_argument("--workers", type=count_arg, default=None, metavar="N", help="local worker processes (default: one "
                   "per core, or per GPU)")
    p.add_argument("--prepare-only", action="store_true", help="stop after the plan: data and manifests only")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from study.quickstart.pipeline import Options, run  # torch and matplotlib: not for every `study` command

    scale = SCALES[args.scale]
    name = "quickstart" if scale.is_full else f"quickstart-{scale.name}"
    data = args.data or Path("data") / name
    run(Options(grid=args.grid, profile=args.profile, data=data, manifests=args.manifests or data / "manifests",
                workdir=args.workdir or Path("runs") / name, report=args.out or Path("reports") / name, scale=scale,
                fashion_mnist=args.fashion_mnist, workers=args.workers, prepare_only=args.prepare_only))
    return 0
