"""A wheel of study, as a cluster admin installs it into a shared environment: it holds the grids and profiles the
package reads (study/shipped_grids, pyproject.toml's package-data), declares the `study` command, and its copy runs
from a folder with no repository around it. Built here with setuptools, no download (as `pip wheel
--no-build-isolation`)."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")  # a copy: the build writes build/ and study.egg-info beside pyproject.toml
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "grids", src / "grids")
    shutil.copytree(REPO / "study", src / "study", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    code = f"from setuptools import build_meta as b; print(b.build_wheel({str(out)!r}))"
    built = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    return out / built.stdout.split()[-1]


def test_the_wheel_holds_every_grid_and_profile_and_declares_the_study_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    shipped = {f"study/shipped_grids/{p.relative_to(REPO / 'grids').as_posix()}" for p in (REPO / "grids").rglob("*")
               if p.suffix in (".yaml", ".md")}
    assert {"study/shipped_grids/quickstart.yaml", "study/shipped_grids/profiles/local.yaml",
            "study/shipped_grids/README.md"} <= shipped
    assert shipped <= names, sorted(shipped - names)
    assert "study = study.cli:main" in entry_points.splitlines()


def test_the_wheels_copy_plans_its_own_quickstart_grid_from_a_folder_without_the_repository(wheel, tmp_path):
    site, project = tmp_path / "site", tmp_path / "project"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    project.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), STUDY_MANIFESTS=str(project / "manifests"))
    code = ("import study; from study.quickstart import GRID, PROFILE; from study.cli import build_parser; "
            "a = build_parser().parse_args(['quickstart']); print(study.__file__, a.grid, a.profile)")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    init, grid, profile = map(Path, out)
    assert init.is_relative_to(site)  # the wheel's copy, not this checkout's package
    assert grid == site / "study" / "shipped_grids" / "quickstart.yaml" and grid.is_file()
    assert profile == site / "study" / "shipped_grids" / "profiles" / "local.yaml" and profile.is_file()
    plan = subprocess.run([sys.executable, "-m", "study", "plan", str(grid), "--profile", str(profile), "--no-check"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "grid quickstart:" in plan.stdout and "56 jobs" in plan.stdout
