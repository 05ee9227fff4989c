"""Helpers: write a grid from text, run `study plan` through the grids CLI as the front does."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from study.errors import StudyError
from study.grids.cli import register

HERE = Path(__file__).parent
REPO = HERE.parent.parent

BASE_PRETRAIN = {"backbone": "resnet18", "epochs": 1, "batch_size": 8}


def line_of(path, needle: str) -> int:
    """The number of the first line of the file at `path` that holds `needle`."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def base_text(pretrain: dict | None = None) -> str:
    """The head of a test grid: name, datasets alpha and beta, and `defaults.pretrain` (BASE_PRETRAIN updated by
    `pretrain`)."""
    settings = ", ".join(f"{k}: {v}" for k, v in {**BASE_PRETRAIN, **(pretrain or {})}.items())
    return ("name: t\ndatasets:\n  alpha: {train: alpha_train, test: alpha_val}\n"
            "  beta: {train: beta_train, test: beta_val}\n"
            f"defaults:\n  pretrain: {{{settings}}}\n")


BASE = base_text()


@pytest.fixture
def write_grid(tmp_path):
    def write(body: str, name: str = "g.yaml", base: bool = True, pretrain: dict | None = None) -> Path:
        p = tmp_path / name
        p.write_text((base_text(pretrain) if base else "") + textwrap.dedent(body))
        return p

    return write


def run_plan_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `study plan ...`, StudyError -> exit 2 as study.cli does."""
    parser = argparse.ArgumentParser(prog="study")
    register(parser.add_subparsers())
    args = parser.parse_args(["plan", *argv])
    try:
        code = int(args.func(args) or 0)
    except StudyError as e:
        print(f"study: error: {e}", file=__import__("sys").stderr)
        code = e.exit_code
    out = capsys.readouterr()
    return code, out.out, out.err
