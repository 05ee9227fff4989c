"""The Python entry points a notebook finds: each package's `__all__` names them, `dir()` (tab completion) and
`help()` list them before their first use (several are imported lazily), and each has a docstring."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("study.manifests", "study.train", "study.evaluate", "study.grids", "study.results", "study.report")
ENTRY_POINTS = {"study.manifests": ("BuildConfig", "build_manifest", "load_manifest"),
                "study.train": ("PretrainConfig", "pretrain"), "study.evaluate": ("EvalConfig", "evaluate"),
                "study.grids": ("plan_grid", "load_profile"), "study.results": ("collect", "read_table", "aggregate"),
                "study.report": ("build_report", "ReportSummary")}


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          cwd=REPO).stdout


def test_a_fresh_interpreter_lists_every_exported_name_and_help_shows_the_lazy_functions():
    """A fresh process: the lazy names were not in dir() (so not in tab completion, nor in help()'s FUNCTIONS)."""
    code = ("import importlib, pydoc\n"
            f"for name in {PACKAGES!r}:\n"
            "    m = importlib.import_module(name)\n"
            "    print(name, sorted(set(m.__all__) - set(dir(m))))\n"
            "import study.train\n"
            "print('help', 'pretrain(cfg' in pydoc.render_doc(study.train, renderer=pydoc.plaintext))\n")
    lines = _run(code).splitlines()
    assert lines == [f"{name} []" for name in PACKAGES] + ["help True"], lines


def test_each_entry_point_is_exported_with_a_docstring():
    import importlib

    for package, names in ENTRY_POINTS.items():
        m = importlib.import_module(package)
        assert m.__doc__ and set(names) <= set(m.__all__), package
        for name in names:
            doc = (getattr(m, name).__doc__ or "").strip()
            assert doc and not doc.startswith(f"{name}("), f"{package}.{name}"  # not a dataclass's own signature
    import study

    assert all(f"{package}" in study.__doc__ for package in PACKAGES)  # help(study) names where to start


def test_each_package_docstring_shows_a_call_of_an_entry_point():
    """README, "From Python": each package's docstring shows a call."""
    import importlib

    for package, names in ENTRY_POINTS.items():
        doc = importlib.import_module(package).__doc__
        assert any(f"{name}(" in doc for name in names), package
