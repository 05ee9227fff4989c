"""`study quickstart`: the paper's four studies in miniature, on this machine."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from study.quickstart.pipeline import SCALES, run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="prepare the miniature study: Fashion-MNIST and MNIST digits, manifests, plan")
    p.add_argument("--grid", default="grids/quickstart.yaml")
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--data", default="data/quickstart", help="where the PNG trees are written")
    p.add_argument("--manifests", default="data/quickstart/manifests", help="where its manifests are frozen")
    p.add_argument("--fashion-mnist", default=None, help="a folder holding the four Fashion-MNIST IDX .gz files")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    os.environ["STUDY_MANIFESTS"] = args.manifests
    run(Path(args.grid), Path(args.data), SCALES[args.scale], args.fashion_mnist)
    return 0
