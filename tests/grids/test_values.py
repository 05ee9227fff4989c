"""Time limits: our spellings and Slurm's --time grammar, unquoted in YAML as well."""
import pytest

from study.grids.values import parse_minutes
from study.grids.yamlio import load_yaml


@pytest.mark.parametrize("text, minutes", [
    (90, 90), ("90", 90), ("30m", 30), ("72h", 4320), ("2d", 2880), ("90s", 2),
    ("30:00", 30), ("0:30", 1), ("12:00:00", 720), ("1:00:30", 61),  # Slurm: M:S and H:M:S
    ("1-12", 2160), ("1-12:30", 2190), ("1-12:00:00", 2160)])  # D-H, D-H:M, D-H:M:S
def test_time_limits_follow_slurm(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("bad", [True, 0, "0:00", "12h30", "1:2:3:4", "soon", ""])
def test_bad_time_limits_are_refused(bad):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_minutes(bad)


def test_unquoted_clock_times_in_yaml_are_not_base_60_integers(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("a: 30:00\nb: 12:00:00\nc: 90\nd: 1.5\ne: 1-12:00:00\n")
    got = dict(load_yaml(p))
    assert got == {"a": "30:00", "b": "12:00:00", "c": 90, "d": 1.5, "e": "1-12:00:00"}
    assert [parse_minutes(got[k]) for k in "abe"] == [30, 720, 2160]


def test_an_exponent_without_a_dot_is_a_float(tmp_path):
    from study.grids.yamlio import load_yaml

    p = tmp_path / "v.yaml"
    p.write_text("lr: 1e-3\nwd: 5E-4\nsteps: 1e4\ntime: 12:00:00\nname: e5\n")
    assert dict(load_yaml(p)) == {"lr": 0.001, "wd": 0.0005, "steps": 10000.0, "time": "12:00:00", "name": "e5"}
