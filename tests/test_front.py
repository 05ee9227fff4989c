"""The front: every `--workers` takes only a count >= 1, refused by argparse (exit 2) before any work."""
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
