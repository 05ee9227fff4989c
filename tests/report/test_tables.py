"""study.report.tables: paper tables in Markdown and LaTeX, with the std over seeds where seeds were repeated."""
import os
import re
import shutil
import subprocess

import pandas as pd

from study.report.figures.common import wide
from study.report.tables import to_latex, to_markdown, write_tables


def test_a_cell_shows_its_std_only_where_seeds_were_repeated_and_a_missing_cell_stays_missing():
    data = pd.DataFrame({"line": ["simclr", "simclr", "supervised"], "labeled": ["1k", "10k", "1k"],
                         "mean": [0.5, 0.6, 0.7], "std": [0.02, float("nan"), 0.001]})
    table = wide(data, "line", "labeled", order=["1k", "10k"]).reset_index()
    assert list(table["1k"]) == [0.5, 0.7]  # the numbers themselves stay means (the CSV)
    md = to_markdown(table)
    assert "| simclr | 0.500 ± 0.020 | 0.600 |" in md  # one seed at 10k: no spread to show
    assert "| supervised | 0.700 ± 0.001 | — |" in md
    assert r"simclr & 0.500 $\pm$ 0.020 & 0.600 \\" in to_latex(table)
    single = wide(data.assign(std=float("nan")), "line", "labeled").reset_index()
    assert "±" not in to_markdown(single) and "spread" not in single.attrs


def test_a_cell_not_in_the_grid_is_blank_where_a_table_marks_absent_cells():
    data = pd.DataFrame({"line": ["simclr", "simclr", "supervised"], "labeled": ["1k", "10k", "1k"],
                         "mean": [0.5, float("nan"), 0.7], "std": float("nan")})
    table = wide(data, "line", "labeled", order=["1k", "10k"], blank_absent=True).reset_index()
    assert "| simclr | 0.500 | — |" in to_markdown(table)  # a row without a value: missing
    assert "| supervised | 0.700 |  |" in to_markdown(table)  # no row: not in the grid
    assert r"supervised & 0.700 &  \\" in to_latex(table)
    assert "| supervised | 0.700 | — |" in to_markdown(wide(data, "line", "labeled", order=["1k", "10k"]).reset_index())


def test_csv_tables_keep_full_precision(tmp_path):
    """The Markdown and LaTeX tables round to 3 decimals; the CSV (for further analysis) keeps every digit."""
    paths = write_tables(pd.DataFrame({"method": ["simclr"], "mean": [0.123456789012345]}), tmp_path, "t")
    assert pd.read_csv(paths["csv"])["mean"].iloc[0] == 0.123456789012345
    assert "0.123 " in paths["md"].read_text()
    paths = write_tables(pd.DataFrame({"epochs": [6.45], "mean": [4.78213]}), tmp_path, "u")
    assert paths["csv"].read_text() == "epochs,mean\n6.45,4.78213\n"  # each float's shortest exact text, no noise


def test_latex_escapes_underscores_and_markdown_escapes_pipes_in_cells():
    """Column and dataset names hold '_' (eval_dataset, inat_mini) and a concatenation's pair a '|': LaTeX gets '\\_'
    (a bare '_' is a subscript outside math mode: the paper does not compile), Markdown '\\|' (a bare '|' splits the
    cell in two and shifts the row)."""
    table = pd.DataFrame({"eval_dataset": ["inat_mini"], "pair": ["simclr a | simclr b"], "mean": [0.5]})
    tex = to_latex(table)
    assert r"eval\_dataset & pair & mean \\" in tex
    assert r"inat\_mini & simclr a \textbar{} simclr b & 0.500 \\" in tex
    assert "| inat_mini | simclr a \\| simclr b | 0.500 |" in to_markdown(table)


def test_a_missing_cell_stays_missing_whatever_note_of_seeds_rides_with_it():
    """A cell without a value prints the missing mark alone (which the HTML table marks as missing): a "(k/n)" riding
    with it (quality's "clean 1/2": the clean cell's note, where the corrupted cell has no value) is not appended."""
    data = pd.DataFrame({"line": ["simclr", "supervised"], "labeled": ["1k", "1k"], "mean": [float("nan"), 0.7],
                         "std": float("nan"), "partial_seeds": ["clean 1/2", "1/2"]})
    table = wide(data, "line", "labeled").reset_index()
    assert "| simclr | — |" in to_markdown(table)
    assert "| supervised | 0.700 (1/2) |" in to_markdown(table)
    assert r"simclr & -- \\" in to_latex(table)


def test_each_table_file_is_replaced_whole_not_rewritten_in_place(tmp_path):
    """write_tables renames a new file onto each name (study.atomic): a reader that opened the earlier table (here a
    hard link to it) keeps reading it whole, never a file truncated and half rewritten under it."""
    first = write_tables(pd.DataFrame({"mean": [0.1]}), tmp_path, "t")
    kept = {fmt: tmp_path / f"kept.{fmt}" for fmt in first}
    for fmt, path in first.items():
        os.link(path, kept[fmt])
    before = {fmt: path.read_text() for fmt, path in kept.items()}
    second = write_tables(pd.DataFrame({"mean": [0.2]}), tmp_path, "t")
    for fmt, path in second.items():
        assert kept[fmt].read_text() == before[fmt], fmt
        assert "0.2" in path.read_text() and not os.path.samefile(path, kept[fmt]), fmt


def test_a_missing_mean_shows_no_spread_and_a_row_added_after_wide_shows_its_mean_alone():
    """A cell without a mean prints the missing mark alone, even where its std has a value; a row that the spread,
    seeds and absent marks do not cover (added after `wide`) prints its mean alone rather than failing."""
    data = pd.DataFrame({"line": ["simclr", "supervised"], "labeled": ["1k", "1k"], "mean": [float("nan"), 0.7],
                         "std": [0.02, 0.01], "partial_seeds": [None, "1/2"]})
    table = wide(data, "line", "labeled", blank_absent=True).reset_index()
    assert "| simclr | — |" in to_markdown(table) and r"simclr & -- \\" in to_latex(table)
    table.loc[len(table)] = ["moco", 0.9]  # keeps attrs, whose frames have one row fewer
    assert "| supervised | 0.700 ± 0.010 (1/2) |" in to_markdown(table) and "| moco | 0.900 |" in to_markdown(table)


def test_number_columns_are_right_aligned_and_headers_and_captions_are_escaped():
    table = pd.DataFrame({"a|b_c": ["simclr"], "mean": [0.5]})
    md = to_markdown(table)
    assert md.splitlines()[:2] == ["| a\\|b_c | mean |", "|---|---:|"] and md.endswith("| simclr | 0.500 |\n")
    tex = to_latex(table, caption="top_1 at 10%")
    assert tex.splitlines()[:2] == [r"% top\_1 at 10\%", r"\begin{tabular}{lr}"]


def test_whole_count_columns_print_as_integers_and_a_missing_count_or_text_stays_missing(tmp_path):
    """A count column that is float only because a value is missing prints '40', its missing value '—' (not '<NA>');
    a count column with a fraction keeps its decimals, one of text is left as it is; a missing text is '—' too."""
    df = pd.DataFrame({"size": [40.0, float("nan")], "count": [2.5, 3.0], "labeled_size": ["1k", "10k"],
                       "method": ["simclr", None], "mean": [0.5, 0.25]})
    paths = write_tables(df, tmp_path, "t")
    md = paths["md"].read_text()
    assert "| 40 | 2.500 | 1k | simclr | 0.500 |" in md
    assert "| — | 3.000 | 10k | — | 0.250 |" in md
    assert r"-- & 3.000 & 10k & -- & 0.250 \\" in paths["tex"].read_text()
    assert paths["csv"].read_text().splitlines()[1:] == ["40,2.5,1k,simclr,0.5", ",3.0,10k,,0.25"]


def test_a_seed_count_column_with_a_missing_value_prints_whole_counts_as_integers(tmp_path):
    """`count` (seeds per cell) is a count like `size`: 3 seeds print '3', not '3.000'."""
    df = pd.DataFrame({"line": ["simclr", "moco"], "count": [3.0, float("nan")], "mean": [0.5, 0.25]})
    paths = write_tables(df, tmp_path, "t")
    assert "| simclr | 3 | 0.500 |" in paths["md"].read_text() and "| moco | — | 0.250 |" in paths["md"].read_text()
    assert paths["csv"].read_text().splitlines()[1:] == ["simclr,3,0.5", "moco,,0.25"]


def test_latex_ends_the_tabular_and_maps_each_character_pdflatex_would_not_set():
    """A dash, backslash, '·', '→' or 'Δ' in a cell or header prints as LaTeX text, and the tabular is closed."""
    table = pd.DataFrame({"Δ top-1": ["simclr · resnet18"], "note": ["a → b — c\\d"], "mean": [0.5]})
    tex = to_latex(table)
    assert r"$\Delta$ top-1 & note & mean \\" in tex
    assert r"simclr $\cdot$ resnet18 & a $\to$ b -- c\textbackslash{}d & 0.500 \\" in tex
    assert tex.endswith("\\midrule\n" + r"simclr $\cdot$ resnet18 & a $\to$ b -- c\textbackslash{}d & 0.500 \\"
                        + "\n\\bottomrule\n\\end{tabular}\n")


def test_every_whole_count_column_with_a_missing_value_prints_as_integers_and_the_caption_heads_the_latex(tmp_path):
    """Each count column (not only the first) converts; the LaTeX file's first line is its caption."""
    df = pd.DataFrame({"size": [40.0, float("nan")], "count": [3.0, float("nan")], "seed": [1.0, float("nan")],
                       "mean": [0.5, 0.25]})
    paths = write_tables(df, tmp_path, "t", caption="every cell")
    md = paths["md"].read_text()
    assert "| 40 | 3 | 1 | 0.500 |" in md and "| — | — | — | 0.250 |" in md
    assert paths["csv"].read_text().splitlines()[1:] == ["40,3,1,0.5", ",,,0.25"]
    assert paths["tex"].read_text().splitlines()[0] == "% every cell"


def test_latex_sets_angle_brackets_as_text_and_keeps_a_multi_line_caption_in_its_comment():
    """OT1, LaTeX's default font encoding, prints a bare '<' as '¡' and '>' as '¿' ("a¡b" in the paper); a caption's
    line break would end its '%' comment and set the rest of the caption above the table as text."""
    tex = to_latex(pd.DataFrame({"note": ["a<b>c"], "mean": [0.5]}), caption="first line\nsecond \\bad{} line")
    assert r"a\textless{}b\textgreater{}c & 0.500 \\" in tex and "<" not in tex and ">" not in tex
    assert tex.splitlines()[:2] == [r"% first line second \textbackslash{}bad\{\} line", r"\begin{tabular}{lr}"]


def test_integer_columns_are_right_aligned_in_markdown_latex_and_html_as_float_ones_are():
    """Counts (size, labeled_size, jobs, seeds) are numbers: right-aligned beside the fractions, not as text."""
    from study.report.html import table_html

    table = pd.DataFrame({"method": ["simclr"], "labeled_size": [400], "size": pd.array([40], dtype="Int64"),
                          "finished": [True], "mean": [0.5]})
    assert to_markdown(table).splitlines()[1] == "|---|---:|---:|---|---:|"
    assert r"\begin{tabular}{lrrlr}" in to_latex(table)
    assert table_html(table).count('class="num"') == 3


def test_latex_prints_a_negative_number_with_a_minus_sign_and_a_missing_cell_as_before():
    """'-0.180' in text mode is a hyphen, shorter than the minus of the paper's other numbers; '--' (missing) and a
    hyphen inside a name stay as they are."""
    table = pd.DataFrame({"corruption": ["down-sample", "jpeg"], "simclr": [-0.18, float("nan")], "gain": [0.07, -2.0]})
    tex = to_latex(table)
    assert r"down-sample & $-$0.180 & 0.070 \\" in tex and r"jpeg & -- & $-$2.000 \\" in tex
    # a value that rounds to zero is 0.000, not "-0.000" (in every format)
    assert r"x & 0.000 \\" in to_latex(pd.DataFrame({"name": ["x"], "gain": [-0.0001]}))
    assert "| x | 0.000 |" in to_markdown(pd.DataFrame({"name": ["x"], "gain": [-0.0001]}))


def test_a_column_of_prose_wraps_in_a_paragraph_column_and_rows_end_in_tabularnewline():
    """The findings' text and evidence (hundreds of characters a cell) in an `l` column made one line some 3000pt
    wide; a column of long prose is a ragged-right `p` column, whose rows end in \\tabularnewline (\\raggedright
    redefines \\\\); a long cell without a space (job ids) stays in an `l` column, where it cannot overrun the
    next."""
    prose = "Beyond a point more pretraining images barely help: 500k and 1M images differ by under 2 points"
    table = pd.DataFrame({"name": ["quantity_saturation", "x"], "finding": [prose, ""], "verdict": ["holds", "holds"],
                          "job_ids": [",".join(["0123456789ab"] * 6), "a"]})
    tex = to_latex(table)
    assert re.search(r"\\begin\{tabular\}\{lp\{[0-9.]+\\linewidth\}ll\}", tex)
    assert f"quantity\\_saturation & \\raggedright {prose} & holds & " in tex
    assert r"x &  & holds & a \tabularnewline" in tex  # a blank cell gets no \raggedright
    assert tex.count(r"\tabularnewline") == 3 and not any(line.endswith(r"\\") for line in tex.splitlines())
    short = to_latex(pd.DataFrame({"name": ["x"], "evidence": ["short words"]}))
    assert r"\begin{tabular}{ll}" in short and short.splitlines()[3] == r"name & evidence \\"


def test_latex_leads_a_cell_or_header_beginning_with_a_bracket_or_star_with_braces(tmp_path):
    """A cell that begins with '[' after a row's `\\` (a header's after `\\toprule`) would be read as the optional
    argument of the command before it, an error ("Missing number"); one that begins with '*', as `\\*`'s star,
    dropped: each is led by `{}`, and the table compiles (with pdflatex, where it is installed)."""
    table = pd.DataFrame({"[m]": ["[ours] simclr", "*starred", "plain [x]"], "mean": [0.5, 0.25, float("nan")]})
    tex = to_latex(table)
    assert "\\toprule\n{}[m] & mean \\\\\n\\midrule\n{}[ours] simclr & 0.500 \\\\\n{}*starred & 0.250 \\\\\n" in tex
    assert "\nplain [x] & -- \\\\\n" in tex  # a bracket inside a cell is left as it is
    if shutil.which("pdflatex") is None:
        return
    (tmp_path / "t.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex
                                    + "\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "t.pdf", "-"], cwd=tmp_path, capture_output=True, text=True).stdout
        assert "*starred" in text and "[ours] simclr" in text and "[m]" in text
