"""`study quickstart`: the paper's four studies in miniature, on this machine."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from study.quickstart.pipeline import SCALES, run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="run the whole study in miniature on Fashion-MNIST and MNIST digits")
    p.add_argument("--grid", default="grids/quickstart.yaml")
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--data", default="data/quickstart", help="where the PNG trees are written")
    p.add_argument("--workdir", default="runs/quickstart")
    p.add_argument("--out", default="reports/quickstart")
    p.add_argument("--fashion-mnist", default=None, help="a folder holding the four Fashion-MNIST IDX .gz files")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per free core)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("STUDY_MANIFESTS", str(Path(args.workdir) / "manifests"))
    run(Path(args.grid), Path(args.data), Path(args.workdir), Path(args.out), SCALES[args.scale], args.fashion_mnist,
        args.workers)
    return 0
