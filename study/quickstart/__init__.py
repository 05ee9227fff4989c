"""The embedded default: the paper's four studies in miniature on Fashion-MNIST and MNIST digits, on one CPU machine."""
from study.paths import shipped_grids

# the defaults of `study quickstart --grid` and `--profile`: the copies that come with the package (a checkout's
# grids/ itself; an installed wheel's own), whatever the current folder
GRID = shipped_grids() / "quickstart.yaml"
PROFILE = shipped_grids() / "profiles" / "local.yaml"
