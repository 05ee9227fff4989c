"""Values as the grid loader reads them: time limits (our spellings and Slurm's --time grammar, unquoted in YAML as
well), exponents without a dot, merge keys."""
import re

import pytest

from study.grids.values import parse_mem_gb, parse_minutes
from study.grids.yamlio import load_yaml


@pytest.mark.parametrize("text, minutes", [
    (90, 90), ("90", 90), ("30m", 30), ("72h", 4320), ("2d", 2880), ("90s", 2),
    ("30:00", 30), ("0:30", 1), ("12:00:00", 720), ("1:00:30", 61), ("1:30:00", 90),  # Slurm: M:S and H:M:S
    ("1-12", 2160), ("1-12:30", 2190), ("1-12:00:00", 2160),  # D-H, D-H:M, D-H:M:S
    ("1.1d", 1584), ("90min", 90), ("2.5 min", 3)])  # 1.1d: 1584.0000000000002 minutes in floats, not 1585
def test_time_limits_follow_slurm(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("bad", [True, 0, -5, float("inf"), float("nan"), "0:00", "0h", "0m", "12h30", "1:2:3:4",
                                 "soon", ""])
def test_bad_time_limits_are_refused(bad):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_minutes(bad)


@pytest.mark.parametrize("text, gb", [(64, 64.0), ("64", 64.0), ("64G", 64.0), ("500M", 500 / 1024), ("1T", 1024.0),
                                      ("1024K", 1 / 1024)])
def test_memory_sizes(text, gb):
    assert parse_mem_gb(text) == pytest.approx(gb)


@pytest.mark.parametrize("bad, why", [("500K", "under 1M"), (0.0005, "under 1M"), (0, "expected memory"),
                                      ("0G", "expected memory"), (float("inf"), "expected memory"),
                                      ("lots", "expected memory"), (True, "expected memory")])
def test_bad_memory_sizes_are_refused(bad, why):
    """Under 1 MB sbatch would read `--mem=0`: all of a node's memory."""
    with pytest.raises(ValueError, match=why):
        parse_mem_gb(bad)


def test_unquoted_clock_times_in_yaml_are_not_base_60_integers(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("a: 30:00\nb: 12:00:00\nc: 90\nd: 1.5\ne: 1-12:00:00\nf: 1:5\ng: 0:30.5\n")
    got = dict(load_yaml(p))  # YAML 1.1: f the integer 65 (a one-digit part), g the float 30.5 (a leading 0)
    assert got == {"a": "30:00", "b": "12:00:00", "c": 90, "d": 1.5, "e": "1-12:00:00", "f": "1:5", "g": "0:30.5"}
    assert [parse_minutes(got[k]) for k in "abef"] == [30, 720, 2160, 2]


def test_an_exponent_without_a_dot_is_a_float(tmp_path):
    from study.grids.yamlio import load_yaml

    p = tmp_path / "v.yaml"
    p.write_text("lr: 1e-3\nwd: 5E-4\nsteps: 1e4\ntime: 12:00:00\nname: e5\n")
    assert dict(load_yaml(p)) == {"lr": 0.001, "wd": 0.0005, "steps": 10000.0, "time": "12:00:00", "name": "e5"}


def test_an_exponent_without_its_sign_after_a_dot_is_a_float(tmp_path):
    """YAML 1.1 wants `e+5` after a dot (`2.5e5` and `1.0e7` stayed strings, so `probe_rate: 2.5e5` was refused)."""
    from study.grids.yamlio import load_yaml

    p = tmp_path / "v.yaml"
    p.write_text("a: 2.5e5\nb: 1.0e7\nc: .5e3\nd: -1.e2\ne: 1.2.3e4\nf: 1e\ng: .inf\n")
    assert dict(load_yaml(p)) == {"a": 250000.0, "b": 1e7, "c": 500.0, "d": -100.0, "e": "1.2.3e4", "f": "1e",
                                  "g": float("inf")}


def test_a_key_written_beside_a_merge_overrides_the_merged_one_and_a_real_duplicate_is_refused(tmp_path):
    from study.errors import StudyError
    from study.grids.yamlio import load_yaml

    p = tmp_path / "m.yaml"
    p.write_text("base: &b {epochs: 1, lr: 0.1}\nft: {<<: *b, epochs: 5}\n")
    assert dict(load_yaml(p)["ft"]) == {"epochs": 5, "lr": 0.1}
    p.write_text("base: &b {epochs: 1}\nft: {<<: *b, epochs: 5, epochs: 6}\n")
    with pytest.raises(StudyError, match="m.yaml:2: duplicate key 'epochs'"):
        load_yaml(p)


@pytest.mark.parametrize("text, minutes", [("1-12:00:30", 2161), ("0-00:00:30", 1), ("2-00:10:59", 2891)])
def test_the_seconds_of_a_day_clock_time_limit_round_up(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text, gb", [("64GB", 64.0), ("500MB", 500 / 1024), ("1tb", 1024.0), ("64 Gb", 64.0)])
def test_memory_with_a_b_suffix(text, gb):
    assert parse_mem_gb(text) == pytest.approx(gb)


@pytest.mark.parametrize("text", [0.4, "0.4m", "10s", 1e-9, "0.00001s"])  # the last two: 0 at 6 decimals
def test_a_time_limit_under_a_minute_is_one_minute(text):
    """Never 0 minutes (sbatch would take `--time=0` for no limit at all)."""
    assert parse_minutes(text) == 1


@pytest.mark.parametrize("value, minutes", [(90.7, 91), (1.6, 2), (59.9, 60), (90.5, 91), (2.5, 3), ("2.5m", 3),
                                            ("150s", 3), ("2:30", 3), ("0.1h", 6), ("1.5h", 90)])
def test_a_fractional_number_of_minutes_rounds_up(value, minutes):
    """A time limit of 90.7 (or 90.5) minutes is not 90: Slurm would stop the job before the time the grid gives it.
    Every spelling of 150 seconds is 3 minutes, as the clock's `2:30` is; 0.1 hour is 6 minutes, not 7."""
    assert parse_minutes(value) == minutes


def test_every_key_and_item_has_its_line_and_what_has_none_the_line_of_its_mapping_or_list(tmp_path):
    """The lines errors name: a key's, a list item's (a flow list's first item on a line after its `[` too), and for
    a key or an index not there (a missing key) the mapping's or the list's own line."""
    p = tmp_path / "l.yaml"
    p.write_text("name: x\nstages:\n  pretrain: {a: 1}\n  evaluate: [\n    one,\n    two]\n")
    got = load_yaml(p)
    stages, items = got["stages"], got["stages"]["evaluate"]
    assert (got.line, got.line_of("stages"), stages.line, stages.line_of("evaluate")) == (1, 2, 3, 4)
    assert (stages.line_of("absent"), stages["pretrain"].line_of("absent")) == (3, 3)
    assert (items.line, items.line_of(0), items.line_of(1), items.line_of(2)) == (4, 5, 6, 4)


def test_a_path_that_cannot_be_read_is_named_with_why(tmp_path):
    from study.errors import StudyError

    with pytest.raises(StudyError, match=f"^{re.escape(str(tmp_path))}: cannot read \\(.+\\)$"):
        load_yaml(tmp_path)  # a folder
