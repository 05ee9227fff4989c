"""study.counts: the one grammar of image counts (grids, profiles, manifest flags) and its short spelling."""
import pytest

from study.counts import format_count, parse_count, parse_labeled_size


@pytest.mark.parametrize("text, n", [(50000, 50000), ("50k", 50000), ("50K", 50000), ("1M", 1_000_000),
                                     ("1.5M", 1_500_000), ("2.5k", 2500), (" 125k ", 125000), ("2_500", 2500),
                                     ("0", 0)])
def test_parse_count(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize("bad", [True, -1, "-5", "ten", "1.2345k", "k", "", 1.5, None, "5 k m", "1.k"])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError, match="expected a count"):
        parse_count(bad)


def test_a_whole_float_is_refused_saying_how_to_write_it():
    """YAML reads `5e4` (or `50000.0`) as a float: the error says so and how to write the count."""
    with pytest.raises(ValueError, match=r"got 50000\.0 \(a float: write 50000 or 50k\)$"):
        parse_count(5e4)
    with pytest.raises(ValueError, match=r"got 1\.5$"):
        parse_count(1.5)
    with pytest.raises(ValueError, match=r"got 500\.0 \(a float: write 500\)$"):  # not `write 500 or 500`
        parse_count(500.0)
    with pytest.raises(ValueError, match=r"got -5\.0$"):  # no hint to write a count that is refused too
        parse_count(-5.0)


def test_a_labeled_size_is_all_in_lower_case_or_a_count_of_at_least_one():
    assert [parse_labeled_size(v) for v in ("all", "1k", 1)] == ["all", 1000, 1]
    for bad in ("All", "ALL", 0, "0"):
        with pytest.raises(ValueError, match=r"\(or all\)$"):
            parse_labeled_size(bad)


def test_minimum():
    assert parse_count("1", minimum=1) == 1
    with pytest.raises(ValueError, match=">= 1"):
        parse_count("0", minimum=1)


@pytest.mark.parametrize("n, text", [(1_000_000, "1M"), (1_500_000, "1.5M"), (1_250_000, "1.25M"),
                                     (1_234_000, "1234k"), (125_000, "125k"), (1234, "1234"), (7500, "7.5k"),
                                     (1500, "1.5k"), (1000, "1k"), (1230, "1230"), (1_235_000, "1235k"),
                                     (None, "-")])
def test_format_count_round_trips(n, text):
    assert format_count(n) == text
    if n is not None:
        assert parse_count(text) == n


@pytest.mark.parametrize("text, n", [("1.25M", 1_250_000), ("2.75k", 2750), ("0.125M", 125_000)])
def test_counts_with_more_than_one_decimal_are_read(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize("text, n", [("8.2M", 8_200_000), ("4.1M", 4_100_000), ("2.01k", 2010)])
def test_decimal_counts_are_rounded_not_truncated(text, n):
    """8.2 x 1e6 is 8199999.999999999 in floating point: the count is 8.2M, not one image fewer."""
    assert parse_count(text) == n


@pytest.mark.parametrize("text, n", [("12345678901234567891", 12345678901234567891), ("9007199254740993k",
                                                                                         9007199254740993000)])
def test_counts_beyond_a_floats_precision_are_read_exactly(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize("n, text", [(100_000_100, "100000.1k"), (123_456_700, "123456.7k"),
                                     (12_345_670_000, "12345.67M"), (10**21, "1000000000000000M")])
def test_format_count_of_large_counts_is_exact(n, text):
    """Beyond six significant digits the short spelling stays exact: `100000k` for 100,000,100 would build another
    subset from a printed command."""
    assert format_count(n) == text
    assert parse_count(text) == n
