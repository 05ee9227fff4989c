"""The embedded default: the paper's four studies in miniature on Fashion-MNIST and MNIST digits, on one CPU machine."""
from pathlib import Path

GRID = Path("grids/quickstart.yaml")  # the defaults of `study quickstart --grid` and `--profile`: the repository root's
PROFILE = Path("grids/profiles/local.yaml")
