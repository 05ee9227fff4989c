"""Where the tests find real data that ships outside the repo: Debian's dataset-fashion-mnist, or the folder of IDX
files named by STUDY_FASHION_MNIST (e.g. a copy on a GPU machine without the Debian package)."""
import os
from pathlib import Path

FASHION_MNIST = Path(os.environ.get("STUDY_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
