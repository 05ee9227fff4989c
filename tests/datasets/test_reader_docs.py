"""docs/contributing.md: a reader's layout goes in manifests/README.md's table, and its module docstring has every
detail (the table's words: "each reader's module docstring in study/datasets/"), whichever file registered it."""
import re
import sys
from pathlib import Path

import pytest

from study.datasets import DATASETS

README = Path(__file__).resolve().parents[2] / "manifests" / "README.md"


def layout_rows(text: str) -> set[str]:
    """The `--dataset` names of the Layouts table: each row's first cell's first quoted word."""
    section = text.split("## Layouts", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| `([^`]+)`[^|]*\|", section, re.M)}


def test_layout_rows_reads_the_first_cell_of_the_layouts_table_only():
    text = ("## Naming\n| `naming_row` | x |\n## Layouts\n| `--dataset` | `--root` holds |\n|---|---|\n"
            "| `a` | `b/` |\n| `c` (your own data) | `d` |\n## Listing\n| `listing_row` | x |\n")
    assert layout_rows(text) == {"--dataset", "a", "c"}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_reader_documents_its_layout(name):
    reader = DATASETS.get(name)
    module = sys.modules[reader.__module__]
    assert (module.__doc__ or "").strip(), f"{module.__file__}: reader {name!r} has no module docstring (its layout)"
    rows = layout_rows(README.read_text())
    assert name in rows, \
        f"manifests/README.md: reader {name!r} ({reader.__module__}) has no row in the Layouts table"
