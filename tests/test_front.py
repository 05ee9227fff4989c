"""The front: `python -m study` is the command, and every `--workers` takes only a count >= 1, refused by argparse
(exit 2) before any work."""
import pytest

from study.cli import main


@pytest.mark.parametrize("argv", [
    ["manifest", "verify", "x", "--files", "--workers", "0"],
    ["manifest", "materialize", "x", "--out", "o", "--workers", "-3"],
    ["submit", "g.yaml", "--cluster", "local", "--workers", "two"],
    ["quickstart", "--workers", "0"],
])
def test_every_workers_flag_takes_a_count_of_one_or_more(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument --workers: expected an integer >= 1, got {argv[-1]!r}" in capsys.readouterr().err


def test_python_dash_m_study_runs_the_command():
    """Where the `study` console script is not on PATH (no activated venv), `python -m study` is the same command."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "study", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage: study" in out.stdout and "submit" in out.stdout, out.stderr
    bad = subprocess.run([sys.executable, "-m", "study", "plan", "no-such-grid.yaml"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "study: error: " in bad.stderr
