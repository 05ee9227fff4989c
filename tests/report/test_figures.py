"""Each figure's plotted data, read back from the matplotlib objects, and its table equal the known values."""
from __future__ import annotations

import math

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from report_records import (ALL_RECORDS, LEVELS, STD, domain_records, eval_axes, granularity_records, luminance,
                            quality_records, quantity_records, records, table_of)

from study.errors import StudyError
from study.report.figures import (FIGURES, NoData, domain_concat, domain_matrix, domain_pooling, granularity, quality,
                                  quantity)
from study.report.figures.common import (NOT_TRAINED_HERE, cells, chance_note, fmt_size, method_colours,
                                         planned_sizes, seeds_note)
from study.report.html import table_html
from study.report.tables import display_rows


def _bars(ax):
    return {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers if isinstance(c, BarContainer)}


def _containers(fig):
    return {(ax.get_title(), c.get_label()): c for ax in fig.axes for c in ax.containers}


def test_quantity_lines_errorbars_and_scratch_reference():
    fig, data = quantity.draw(table_of(quantity_records()))
    got = _containers(fig)
    expect = {("a · linear probe", "50k"): [0.30, 0.35], ("a · linear probe", "1M"): [0.40, 0.45],
              ("a · fine-tuning", "50k"): [0.40, 0.45], ("a · fine-tuning", "1M"): [0.50, 0.55],
              ("a · linear probe", quantity.SCRATCH): [0.10, 0.20],
              ("a · fine-tuning", quantity.SCRATCH): [0.10, 0.20]}
    assert set(expect) <= set(got)
    for key, ys in expect.items():
        line = got[key].lines[0]
        assert list(line.get_xdata()) == [1000.0, 10000.0]
        assert list(line.get_ydata()) == pytest.approx(ys)
    assert fig.axes[0].get_xscale() == "log"
    assert data["std"].dropna().to_numpy() == pytest.approx(STD)
    assert (data["count"] == 2).all()
    table = quantity.paper_table(data)
    row = table[(table["protocol"] == "finetune") & (table["line"] == "1M")].iloc[0]
    assert (row["1k"], row["10k"]) == pytest.approx((0.50, 0.55))


def test_quantity_panels_of_one_evaluation_dataset_share_their_top1_scale():
    """Linear probe beside fine-tuning on one y scale (as the paper's Fig. 2 compares them); another evaluation
    dataset's row keeps its own."""
    recs = quantity_records() + records(eval_axes(method="simclr", dataset="b", eval_dataset="b", size=50_000),
                                        {(1000, None): 0.9, (10000, None): 0.95})
    fig, _ = quantity.draw(table_of(recs))
    (a_lin, a_ft), (b_lin, _) = [ax for ax in fig.axes[:2]], [ax for ax in fig.axes[2:4]]
    assert a_lin.get_shared_y_axes().joined(a_lin, a_ft) and a_lin.get_ylim() == a_ft.get_ylim()
    assert not a_lin.get_shared_y_axes().joined(a_lin, b_lin)


def test_quantity_names_on_the_x_axis_a_labeled_size_only_the_scratch_line_has():
    recs = quantity_records() + records({"method": "random", "protocol": "scratch", "eval_dataset": "a",
                                         "corruption": "none"}, {(100_000, None): 0.3})
    fig, _ = quantity.draw(table_of(recs))
    for ax in fig.axes[:2]:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1k", "10k", "100k"]


def test_quantity_caption_names_the_scratch_line_only_where_there_is_one():
    recs = quantity_records()
    _, both = quantity.draw(table_of(recs))
    _, alone = quantity.draw(table_of([r for r in recs if r["axes"].get("protocol") != "scratch"]))
    said = "dotted black: supervised from scratch on the same labeled subsets"
    assert said in both.attrs["caption"] and said not in alone.attrs["caption"]


def test_quantity_draws_each_lines_error_bars_as_the_std_over_seeds():
    fig, _ = quantity.draw(table_of(quantity_records()))
    for (title, label), c in _containers(fig).items():
        assert c.has_yerr, (title, label)
        (bars,) = c.lines[2]
        assert [seg[1][1] - seg[0][1] for seg in bars.get_segments()] == pytest.approx([2 * STD] * 2)


def test_quantity_draws_the_scratch_line_in_a_panel_of_no_pretrained_result():
    """Evaluation dataset b has linear probes only: its fine-tuning panel still draws the from-scratch reference."""
    recs = quantity_records() + records(eval_axes(dataset="b", eval_dataset="b"), {(1000, None): 0.5}) + records(
        {"method": "random", "protocol": "scratch", "eval_dataset": "b", "corruption": "none"}, {(1000, None): 0.2})
    fig, data = quantity.draw(table_of(recs))
    got = _containers(fig)
    assert list(got[("b · fine-tuning", quantity.SCRATCH)].lines[0].get_ydata()) == pytest.approx([0.2])
    scratch = data[(data["eval_dataset"] == "b") & (data["protocol"] == "finetune")]
    assert len(scratch) == 1 and scratch["dataset"].tolist() == ["b"]  # trained on the panel's dataset


def test_quantity_styles_a_pretraining_size_alike_in_every_panel_and_a_method_by_line_style():
    """Two datasets x two methods x two sizes: the legend names method and size (the panel names the dataset), 4
    entries, not 8; a size has one colour and marker on every panel, a method one line style."""
    recs = []
    for ds in ("a", "b"):
        for method, base in (("simclr", 0.3), ("supervised", 0.4)):
            for size, bump in ((50_000, 0.0), (1_000_000, 0.1)):
                recs += records(eval_axes(method=method, dataset=ds, eval_dataset=ds, size=size),
                                {(1000, None): base + bump, (10000, None): base + bump + 0.05})
    fig, _ = quantity.draw(table_of(recs))
    lines = {(title, label): c.lines[0] for (title, label), c in _containers(fig).items()}
    labels = {label for _, label in lines}
    assert labels == {"simclr 50k", "simclr 1M", "supervised 50k", "supervised 1M"}
    assert len(fig.legends[0].get_texts()) == 4
    for label in labels:  # the same look on both datasets' panels
        a, b = lines[("a · linear probe", label)], lines[("b · linear probe", label)]
        assert (a.get_color(), a.get_marker(), a.get_linestyle()) == (b.get_color(), b.get_marker(), b.get_linestyle())
    look = {label: line for (title, label), line in lines.items() if title == "a · linear probe"}
    assert look["simclr 1M"].get_color() == look["supervised 1M"].get_color() != look["simclr 50k"].get_color()
    assert look["simclr 1M"].get_linestyle() == look["simclr 50k"].get_linestyle() != \
        look["supervised 1M"].get_linestyle()


def test_the_methods_not_trained_here_are_the_registered_ones_that_train_nothing():
    """The report, which imports no torch, names them (common.NOT_TRAINED_HERE): a new method that trains nothing
    goes there too, or its pretraining set and size would read as evidence of what pretraining data does."""
    from study.train.methods import METHODS

    assert set(NOT_TRAINED_HERE) == {name for name in METHODS if not METHODS.get(name).trains}


def test_quantity_draws_simclr_solid_and_a_random_init_encoder_after_it():
    """Methods take line styles in the paper's order (common.METHOD_ORDER), not by name: `random` sorts before
    `simclr` alphabetically, yet SimCLR keeps the solid line and comes first in the legend."""
    recs = []
    for method, base in (("random", 0.1), ("simclr", 0.3)):
        recs += records(eval_axes(method=method, dataset="a", eval_dataset="a", size=50_000),
                        {(1000, None): base, (10000, None): base + 0.05})
    fig, data = quantity.draw(table_of(recs))
    look = {label: c.lines[0] for (title, label), c in _containers(fig).items() if title == "a · linear probe"}
    assert look["simclr"].get_linestyle() == "-" != look["random"].get_linestyle()
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["simclr", "random"]
    # one size: colour and marker tell the methods apart too (one colour for all of them read as one series)
    assert look["simclr"].get_color() != look["random"].get_color()
    assert look["simclr"].get_marker() != look["random"].get_marker()
    assert ("(colour, marker and line style: its method, at its one size); random: the frozen features of an "
            "untrained") in data.attrs["caption"]
    _, alone = quantity.draw(table_of([r for r in recs if r["axes"]["method"] == "simclr"]))
    assert "random:" not in alone.attrs["caption"]


@pytest.mark.parametrize("other", ["random", "pretrained"])
def test_quantity_labels_an_encoder_not_trained_here_without_a_pretraining_size(other):
    """Its size is a grid value, not images it saw (random: none; pretrained: another tool's): with SimCLR at two
    sizes it is "random", not "random 50k"."""
    recs = []
    for method, size in (("simclr", 50_000), ("simclr", 1_000_000), (other, 50_000)):
        recs += records(eval_axes(method=method, dataset="a", eval_dataset="a", size=size), {(1000, None): 0.2})
    fig, data = quantity.draw(table_of(recs))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["simclr 50k", "simclr 1M", other]
    assert ("a given encoder (`pretrained.encoder_file`), not trained on" in data.attrs["caption"]) == (
        other == "pretrained")
    # at two sizes (two jobs, two lines): each keeps its size, or the two would share a label and a table row
    recs += records(eval_axes(method=other, dataset="a", eval_dataset="a", size=1_000_000), {(1000, None): 0.1})
    fig, data = quantity.draw(table_of(recs))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["simclr 50k", "simclr 1M", f"{other} 50k",
                                                                  f"{other} 1M"]
    # colour tells sizes apart: an encoder that saw none of them is grey, not the colour of simclr at its size
    look = {label: c.lines[0] for (_, label), c in _containers(fig).items()}
    assert look[f"{other} 50k"].get_color() == look[f"{other} 1M"].get_color() == "0.55"
    assert look["simclr 50k"].get_color() != "0.55" != look["simclr 1M"].get_color()
    assert f"{other}: grey, {quantity.UNTRAINED_TEXT[other]}; " in data.attrs["caption"]
    assert data.attrs["caption"].count(f"{other}:") == 1  # said once (it was: grey, then what it is)


def test_quantity_says_what_an_untrained_encoder_is_once_for_all_its_backbones():
    """A backbone axis splits "random" into "random · resnet18" and "random · resnet50": the caption says what random
    is once, for both (it said "an encoder not trained on the grid's images" of each, or nothing at one size)."""
    for sizes in ((50_000,), (50_000, 1_000_000)):
        recs = []
        for backbone in ("resnet18", "resnet50"):
            for method in ("simclr", "random"):
                for size in sizes:
                    recs += records(eval_axes(method=method, backbone=backbone, dataset="a", eval_dataset="a",
                                              size=size), {(1000, None): 0.2})
        caption = quantity.draw(table_of(recs))[1].attrs["caption"]
        grey = "grey, " if len(sizes) > 1 else ""  # one size: colour tells the methods apart
        assert f"; random: {grey}{quantity.UNTRAINED_TEXT['random']}; " in caption, caption
        assert "random · resnet" not in caption and caption.count("random:") == 1, caption


def test_quantity_missing_cell_is_nan_not_zero():
    recs = [r for r in quantity_records()
            if not (r["axes"].get("size") == 50_000 and r["axes"]["protocol"] == "linear")]
    # a planned but missing line still appears, as NaN
    expected = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 50_000,
                              "corruption": "none", "protocol": "linear", "eval_dataset": "a"}])
    fig, data = quantity.draw(table_of(recs), expected)
    miss = data[(data["protocol"] == "linear") & (data["line"] == "50k")]
    assert len(miss) == 2 and miss["mean"].isna().all() and (miss["count"] == 0).all()
    ys = _containers(fig)[("a · linear probe", "50k")].lines[0].get_ydata()
    assert all(math.isnan(y) for y in ys)


def test_quantity_breaks_a_line_at_a_planned_labeled_size_without_a_result():
    """Fine-tuning at 1k, 3k and 10k labels planned, 3k not done: the line has a gap there, not a segment from 1k
    to 10k that hides the missing run; the plotted data holds the cell as NaN with count 0."""
    planned = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 1_000_000,
                             "corruption": "none", "protocol": "finetune", "eval_dataset": "a", "labeled_sizes": ls}
                            for ls in ("1000", "3000", "10000")])
    fig, data = quantity.draw(table_of(quantity_records()), planned)
    line = _containers(fig)[("a · fine-tuning", "1M")].lines[0]
    assert list(line.get_xdata()) == [1000.0, 3000.0, 10000.0]
    ys = list(line.get_ydata())
    assert ys[0] == pytest.approx(0.50) and math.isnan(ys[1]) and ys[2] == pytest.approx(0.55)
    gap = data[(data["protocol"] == "finetune") & (data["line"] == "1M") & (data["labeled_size"] == 3000)]
    assert len(gap) == 1 and gap["mean"].isna().all() and (gap["count"] == 0).all()
    other = _containers(fig)[("a · fine-tuning", "50k")].lines[0]  # not planned at 3k: drawn as before
    assert list(other.get_xdata()) == [1000.0, 10000.0]


def test_domain_matrix_is_not_drawn_for_in_domain_evaluations_alone():
    """A quantity grid (each encoder probed in its own domain) has only the diagonal: the quantity figure shows it,
    and a heatmap of empty off-diagonal cells would only say nothing was planned there."""
    recs = [r for r in domain_records() if r["axes"]["dataset"] == r["axes"]["eval_dataset"]]
    with pytest.raises(NoData, match="in its own domain only"):
        domain_matrix.draw(table_of(recs))
    crossed = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 1_000_000,
                             "corruption": "none", "protocol": "linear", "eval_dataset": "b"}])
    fig, data = domain_matrix.draw(table_of(recs), crossed)  # planned off the diagonal: drawn, the cell missing
    assert data.loc[(data["dataset"] == "a") & (data["eval_dataset"] == "b"), "mean"].isna().all()


def test_domain_matrix_heatmap_values_and_diagonal():
    fig, data = domain_matrix.draw(table_of(domain_records()))
    mesh = fig.axes[0].collections[0]
    assert np.asarray(mesh.get_array()).reshape(2, 2) == pytest.approx(np.array([[0.45, 0.35], [0.25, 0.55]]))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    assert data.loc[data["diagonal"], "mean"].to_list() == pytest.approx([0.45, 0.55])
    boxed = [p for p in fig.axes[0].patches if p.get_linewidth() == 2.5]
    assert sorted(p.get_xy() for p in boxed) == [(0, 0), (1, 1)]
    assert "pretraining size 1M" in data.attrs["caption"] and "labeled size 10k" in data.attrs["caption"]
    table = domain_matrix.paper_table(data)
    assert table.set_index("dataset").loc["b", "a"] == pytest.approx(0.25)


def test_accuracy_axes_and_matrix_cells_read_in_percent_as_the_papers_figures():
    """The tables hold fractions (0.45); the figures read as the paper's, and as the findings speak: 45%, a
    change in points (+5, −10), a matrix cell 45.0."""
    fig, data = domain_matrix.draw(table_of(domain_records()))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["25.0", "35.0", "45.0", "55.0"]
    assert fig.axes[-1].yaxis.get_major_formatter()(0.5, 0) == "50%"  # the colour bar
    # each caption says so: index.html shows the figure in percent above its table of fractions
    fraction = "its table and CSV files hold it as a fraction (0.450)."
    assert data.attrs["caption"].endswith(f" The figure reads top-1 in percent (a cell's 45.0); {fraction}")
    for module, made in ((quantity, quantity_records), (granularity, granularity_records),
                         (domain_concat, domain_records), (domain_pooling, domain_records)):
        fig, data = module.draw(table_of(made()))
        assert fig.axes[0].yaxis.get_major_formatter()(0.45, 0) == "45%", module.NAME
        assert data.attrs["caption"].endswith(f" The figure reads top-1 in percent (45%); {fraction}"), module.NAME
    fig, data = quality.draw(table_of(quality_records()))
    said = fig.axes[0].yaxis.get_major_formatter()
    assert (said(0.05, 0), said(-0.1, 0), said(0.0, 0), said(0.025, 0)) == ("+5", "\N{MINUS SIGN}10", "0", "+2.5")
    assert fig.axes[0].get_ylabel() == "Δ top-1 vs clean (points)"
    assert data.attrs["caption"].endswith(" The figure reads the change in percentage points (-5); its table and "
                                          "CSV files hold it as a difference of fractions (-0.050).")


def test_percent_ticks_print_the_digits_their_axis_needs_whatever_span_a_panel_has():
    """matplotlib's PercentFormatter picks its decimals from the axis' span: a panel of 22-43% read "25.0%", "30.0%"
    beside another panel's "30%" in the same figure (and a 3-point span "41.00%"); the ticks of an axis now print
    the decimals they need, the same for each."""
    import matplotlib.pyplot as plt
    from study.report import style

    fig, axes = plt.subplots(1, 3)
    for ax, (low, high) in zip(axes, ((0.22, 0.43), (0.05, 0.68), (0.41, 0.44))):
        ax.plot([0, 1], [low, high])
        style.percent_axis(ax)
    fig.canvas.draw()
    narrow, wide_, fine = ([t.get_text() for t in ax.get_yticklabels() if t.get_text()] for ax in axes)
    plt.close(fig)
    assert narrow == ["20%", "25%", "30%", "35%", "40%", "45%"] and wide_[:3] == ["0%", "10%", "20%"]
    assert fine[:3] == ["40.5%", "41.0%", "41.5%"]
    assert style.PercentTicks()(0.45) == "45%" and style.PercentTicks()(-0.0) == "0%"


def test_no_percent_tick_is_labeled_past_0_or_100_percent():
    """A line at 100% (a level of one value, a toy set) and one at 0%: the axis' margins reach past both, and a tick
    there read "105%" or "-5%", an accuracy no cell can have; those ticks are left unlabeled."""
    import matplotlib.pyplot as plt
    from study.report import style

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.0, 0.5, 1.0])
    style.percent_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    ticks = list(ax.get_yticks())
    plt.close(fig)
    assert min(ticks) < 0 and max(ticks) > 1, ticks  # the margins do reach past 0 and 1
    inside = [-1e-9 <= v <= 1 + 1e-9 for v in ticks]  # 1.0000000000000002 is the 100% tick
    assert [lab for lab, ok in zip(labels, inside) if not ok] == ["", ""], (labels, ticks)
    assert [lab for lab, ok in zip(labels, inside) if ok] == ["0%", "20%", "40%", "60%", "80%", "100%"]


def test_domain_matrix_boxes_no_blank_diagonal_cell():
    """A method the grid runs on one pretraining dataset only (the random-init reference, evaluated on both): its
    panel's other row is blank, and no cell of it is boxed as an in-domain result (it was trained on none)."""
    recs = domain_records() + [r for ev, v in (("a", 0.2), ("b", 0.15))
                               for r in records(eval_axes(method="random", eval_dataset=ev), {(10000, None): v})]
    planned = pd.DataFrame([{"stage": "evaluate", "size": 1_000_000, "corruption": "none", "protocol": "linear",
                             **{k: r["axes"][k] for k in ("method", "dataset", "eval_dataset")}} for r in recs
                            if r["axes"]["protocol"] == "linear" and r["axes"]["seed"] == 0])
    fig, data = domain_matrix.draw(table_of(recs), planned)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert sorted(panels) == ["random", "simclr"]

    def boxed(method):
        return sorted(p.get_xy() for p in panels[method].patches if p.get_linewidth() == 2.5)

    # random-init saw none of the datasets: its row is the grid's key, its diagonal cell no in-domain result
    assert boxed("simclr") == [(0, 0), (1, 1)] and boxed("random") == []
    assert not data.loc[data["method"] == "random", "diagonal"].any()
    assert "random: trained on none of these datasets (its row: the dataset the grid gives it)" in data.attrs["caption"]
    # the box reads on the darkest cell (the panel's best, black in Greys) as on the lightest: contrast >= 3 both
    edge = next(p for p in panels["simclr"].patches if p.get_linewidth() == 2.5).get_edgecolor()
    assert (luminance(edge) + 0.05) / 0.05 >= 3 and 1.05 / (luminance(edge) + 0.05) >= 3
    assert not [t for t in panels["random"].texts if t.get_text() == "missing"]  # blank, not missing
    assert "(where the grid has it)" in data.attrs["caption"]


def test_domain_matrix_missing_planned_dataset_is_nan():
    expected = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "c", "size": 1_000_000,
                              "corruption": "none", "protocol": "linear", "eval_dataset": "a"}])
    fig, data = domain_matrix.draw(table_of(domain_records()), expected)
    arr = np.ma.filled(np.ma.asarray(fig.axes[0].collections[0].get_array(), dtype=float), np.nan).reshape(3, 2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["c", "a", "b"]  # the plan's first, then by name
    assert np.isnan(arr[0]).all() and arr[1, 0] == pytest.approx(0.45)
    assert any(t.get_text() == "missing" for t in fig.axes[0].texts)


def test_domain_pooling_bar_heights():
    fig, data = domain_pooling.draw(table_of(domain_records()))
    bars = _bars(fig.axes[0])
    assert bars["in-domain 1M"] == pytest.approx([0.45, 0.55])
    assert "in-domain 500k" not in bars  # the per-domain share: neither run nor planned
    assert bars["pooled a+b 1M"] == pytest.approx([0.40, 0.50])
    table = domain_pooling.paper_table(data)
    assert list(table.columns) == ["pretraining", "a", "b"]  # as the paper: a pretraining set per row
    assert table.set_index("pretraining").loc["pooled a+b 1M", "b"] == pytest.approx(0.50)
    recs = domain_records() + records(eval_axes(dataset="a+b", size=500_000, eval_dataset="b"), {(10000, None): 0.3})
    _, data = domain_pooling.draw(table_of(recs))
    assert list(domain_pooling.paper_table(data)["pretraining"]) == ["in-domain 1M", "pooled a+b 500k",
                                                                     "pooled a+b 1M"]  # the figure's order, by size
    planned = pd.DataFrame([{"job_id": f"p{ev}", "stage": "evaluate", "method": "simclr", "dataset": ev,
                             "size": 500_000, "corruption": "none", "protocol": "linear", "eval_dataset": ev}
                            for ev in ("a", "b")])
    fig, _ = domain_pooling.draw(table_of(domain_records()), planned)
    assert all(math.isnan(h) for h in _bars(fig.axes[0])["in-domain 500k"])  # planned, not run: missing, not 0


def test_domain_concat_bars_and_gain():
    fig, data = domain_concat.draw(table_of(domain_records()))
    bars = _bars(fig.axes[0])
    assert {k: v[0] for k, v in bars.items()} == pytest.approx(
        {"first encoder": 0.45, "second encoder": 0.25, "concatenated": 0.48})
    table = domain_concat.paper_table(data)
    assert table["gain over better single"].iloc[0] == pytest.approx(0.03)


def test_domain_concat_of_two_encoders_of_one_dataset():
    """The planner writes a shared axis value once (dataset "a" for two encoders of a): both roles are drawn."""
    recs = records(eval_axes(method="supervised"), {(10000, None): 0.50})
    recs += records(eval_axes(), {(10000, None): 0.45})
    recs += records(eval_axes(method="simclr|supervised", protocol="concat"), {(10000, None): 0.52})
    fig, data = domain_concat.draw(table_of(recs))
    assert {k: v[0] for k, v in _bars(fig.axes[0]).items()} == pytest.approx(
        {"first encoder": 0.45, "second encoder": 0.50, "concatenated": 0.52})
    table = domain_concat.paper_table(data)
    assert table["gain over better single"].iloc[0] == pytest.approx(0.02)
    assert math.isnan(table["gain over in-domain"].iloc[0])  # both encoders are in-domain: no single reference


def test_domain_concat_gain_over_the_in_domain_encoder_as_the_paper_reports_it():
    recs = records(eval_axes(dataset="a"), {(10000, None): 0.45}) + records(eval_axes(dataset="b"),
                                                                           {(10000, None): 0.50})
    recs += records(eval_axes(dataset="a|b", protocol="concat"), {(10000, None): 0.52})
    table = domain_concat.paper_table(domain_concat.draw(table_of(recs))[1])
    assert table["gain over in-domain"].iloc[0] == pytest.approx(0.07)  # over a (eval a), not the better b
    assert table["gain over better single"].iloc[0] == pytest.approx(0.02)


@pytest.mark.parametrize("other", ["random", "pretrained"])
def test_domain_concat_never_takes_an_encoder_not_trained_here_as_the_in_domain_one(other):
    """An imported (or random-init) encoder's dataset key is where the grid scores it, not images it saw: paired with
    SimCLR of the evaluation dataset, the gain over in-domain is over SimCLR's; paired with SimCLR of another dataset,
    there is no in-domain encoder."""
    recs = records(eval_axes(method=other, dataset="a"), {(10000, None): 0.70})
    recs += records(eval_axes(dataset="a"), {(10000, None): 0.50}) + records(eval_axes(dataset="b"),
                                                                            {(10000, None): 0.40})
    recs += records(eval_axes(method=f"{other}|simclr", protocol="concat"), {(10000, None): 0.75})
    recs += records(eval_axes(method=f"{other}|simclr", dataset="a|b", protocol="concat"), {(10000, None): 0.72})
    fig, data = domain_concat.draw(table_of(recs))
    assert sorted(data.loc[data["in_domain"], "encoder"]) == ["simclr a 1M"]
    table = domain_concat.paper_table(data).set_index("pair")["gain over in-domain"]
    # named by its method alone: the grid's dataset key and size it was given are no images it saw
    assert table[f"{other} | simclr a 1M"] == pytest.approx(0.25)  # over simclr's 0.50, not 0.70
    assert math.isnan(table[f"{other} | simclr b 1M"])
    recs += records(eval_axes(method=other, dataset="b"), {(10000, None): 0.70})
    recs += records(eval_axes(method=f"{other}|simclr", dataset="b", protocol="concat"), {(10000, None): 0.71})
    _, data = domain_concat.draw(table_of(recs))  # given two dataset keys: they tell its jobs apart
    assert f"{other} b 1M | simclr b 1M" in set(data["pair"]) and f"{other} a 1M | simclr a 1M" in set(data["pair"])


def test_domain_concat_compares_the_seeds_it_concatenated():
    """Singles of seeds 0 and 1 beside a concatenation of seed 0's encoders (or of seed 0's with seed 1's): each bar
    and gain is of the encoders concatenated, not of the single encoder's mean over every seed."""
    recs = records(eval_axes(dataset="a"), {(10000, None): 0.45}) + records(eval_axes(dataset="b"),
                                                                           {(10000, None): 0.25})
    recs += records(eval_axes(dataset="a|b", protocol="concat"), {(10000, None): 0.48}, seeds=(0,))
    recs += records(eval_axes(protocol="concat"), {(10000, None): 0.50}, seeds=("0|1",))
    _, data = domain_concat.draw(table_of(recs))
    table = domain_concat.paper_table(data).set_index("pair")
    pair = table.loc["simclr a 1M | simclr b 1M"]
    assert (pair["first encoder"], pair["second encoder"]) == pytest.approx((0.44, 0.24))  # seed 0's: 0.45 - 0.01
    assert (pair["gain over better single"], pair["gain over in-domain"]) == pytest.approx((0.04, 0.04))
    seeds = table.loc["simclr a 1M seed 0 | simclr a 1M seed 1"]  # named apart, each its own seed
    assert (seeds["first encoder"], seeds["second encoder"]) == pytest.approx((0.44, 0.46))
    assert seeds["gain over better single"] == pytest.approx(0.04)



def test_domain_concat_leaves_out_a_single_encoder_of_a_seed_without_its_own_cells():
    """A concatenation with seed 5's encoder, of which no single cell exists: that bar is missing, not the single
    encoder's mean over the seeds it has."""
    recs = records(eval_axes(dataset="a"), {(10000, None): 0.45})
    recs += records(eval_axes(protocol="concat"), {(10000, None): 0.50}, seeds=("0|5",))
    _, data = domain_concat.draw(table_of(recs))
    pair = domain_concat.paper_table(data).set_index("pair").loc["simclr a 1M seed 0 | simclr a 1M seed 5"]
    assert pair["first encoder"] == pytest.approx(0.44) and pd.isna(pair["second encoder"])


def test_quality_deltas_simclr_beside_supervised():
    fig, data = quality.draw(table_of(quality_records()))
    bars = list(_bars(fig.axes[0]).items())
    assert [b[0] for b in bars] == ["simclr", "supervised"]
    assert bars[0][1] == pytest.approx([-0.15]) and bars[1][1] == pytest.approx([-0.05])
    table = quality.paper_table(data)
    # the panel's first row is the clean top-1 the changes are measured from
    assert list(table["corruption"]) == [quality.CLEAN_ROW, "downsample:factor=2"]
    assert table[["simclr", "supervised"]].iloc[0].to_list() == pytest.approx([0.45, 0.70])
    assert table[["simclr", "supervised"]].iloc[1].to_list() == pytest.approx([-0.15, -0.05])


def test_quality_says_where_the_results_and_plan_hold_no_clean_pretraining():
    """A report `--where` that keeps only the corrupted jobs: no figure of bars all 'missing', but why."""
    corrupted = table_of([r for r in quality_records() if r["axes"]["corruption"] != "none"])
    with pytest.raises(NoData, match="no clean pretraining .*--where corruption=none"):
        quality.draw(corrupted, corrupted.drop_duplicates("job_id").assign(stage="evaluate"))


def test_quality_deltas_at_the_largest_labeled_size_of_the_corrupted_cells():
    """A clean cell also probed at a larger labeled size (another evaluate entry, where: corruption none) does not
    set the size: the deltas are drawn where the corrupted cells have values, not all 'missing' (no figure)."""
    recs = quality_records() + records(eval_axes(method="simclr"), {(100000, None): 0.6})
    fig, data = quality.draw(table_of(recs))
    assert set(data["labeled_size"]) == {10000}
    assert data.set_index("method")["delta"].to_dict() == pytest.approx({"simclr": -0.15, "supervised": -0.05})


def test_granularity_levels_ordered_by_protocol():
    fig, data = granularity.draw(table_of(granularity_records()))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["kingdom", "order", "species"]
    got = {c.get_label(): list(c.lines[0].get_ydata()) for c in ax.containers}
    assert set(got) == {"simclr", "supervised"}
    assert got["simclr"] == pytest.approx([0.95, 0.7, 0.5]) and got["supervised"] == pytest.approx([0.99, 0.9, 0.8])
    table = granularity.paper_table(data)
    assert list(table.columns) == ["eval_dataset", "labeled_size", "line", "kingdom", "order", "species"]


def test_granularity_draws_the_largest_labeled_size_and_says_so():
    recs = granularity_records() + records(
        eval_axes(method="simclr", protocol="granularity", dataset="inat", eval_dataset="inat"),
        {(1000, lv): 0.1 for lv in LEVELS}, protocol={"levels": LEVELS})
    fig, data = granularity.draw(table_of(recs))
    got = {c.get_label(): list(c.lines[0].get_ydata()) for c in fig.axes[0].containers}
    assert got["simclr"] == pytest.approx([0.95, 0.7, 0.5])  # all labels (None), not the 1k points
    assert "all labels" in fig.axes[0].get_title()
    assert "one finest-level classifier mapped up" in data.attrs["caption"]


def test_a_size_with_no_short_form_is_grouped_in_thousands():
    """A panel titled by iNat21's whole training set reads `2,686,843 labels`; round sizes keep their short form."""
    recs = records(eval_axes(method="simclr", protocol="granularity", dataset="inat", eval_dataset="inat"),
                   {(2686843, lv): 0.5 for lv in LEVELS}, protocol={"levels": LEVELS})
    fig, _ = granularity.draw(table_of(recs))
    assert fig.axes[0].get_title() == "inat (2,686,843 labels)"
    assert [fmt_size(n) for n in (50_000, 1_250_000, 9999, 10_001, None)] == ["50k", "1.25M", "9999", "10,001", "all"]


def test_a_granularity_panel_draws_the_lines_with_results_or_plans_on_its_dataset_only():
    """simclr and supervised have results on inat; moco has a planned job on `other` and nothing else: panel
    `other` draws moco alone (missing at every level), panel inat the two lines with results."""
    recs = granularity_records()
    expected = table_of(recs).drop_duplicates("job_id")[["job_id", "stage", "method", "dataset", "size", "corruption",
                                                          "seed", "protocol", "eval_dataset"]]
    unrun = expected.head(1).assign(job_id="unrun", method="moco", dataset="other", eval_dataset="other")
    _, data = granularity.draw(table_of(recs), pd.concat([expected, unrun]))
    lines = data.groupby("eval_dataset")["method"].unique().map(sorted).to_dict()
    assert lines == {"inat": ["simclr", "supervised"], "other": ["moco"]}
    assert data[data["eval_dataset"] == "other"]["mean"].isna().all()


def test_granularity_caption_follows_the_recorded_mode():
    recs = [{**r, "protocol": {**r["protocol"], "granularity_mode": "per_level"}} for r in granularity_records()]
    _, data = granularity.draw(table_of(recs))
    assert "one classifier per level" in data.attrs["caption"]
    # the same cells from a newer mapped-up run: drawn instead (a fingerprint conflict), and the caption says so
    newer = [{**r, "job_id": r["job_id"] + "n", "finished_at": "2024-02-01T00:00:00+00:00",
              "protocol": {**r["protocol"], "granularity_mode": "finest level mapped up"}}
             for r in granularity_records()]
    _, data = granularity.draw(table_of(recs + newer))
    assert "mapped up the taxonomy" in data.attrs["caption"] and "per level" not in data.attrs["caption"]


def test_an_entrys_variant_is_drawn_apart_not_a_fingerprint_conflict():
    """Both granularity modes of one grid, told apart by the per-level entry's `variant`: two lines per method, no
    cell holding two fingerprints."""
    from study.results.table import aggregate, find_conflicts
    per_level = [{**r, "job_id": r["job_id"] + "v", "axes": {**r["axes"], "variant": "per_level"},
                  "metrics": [{**m, "value": m["value"] - 0.1} for m in r["metrics"]],
                  "protocol": {**r["protocol"], "granularity_mode": "per_level"}} for r in granularity_records()]
    mapped = [{**r, "protocol": {**r["protocol"], "granularity_mode": "finest level mapped up"}}
              for r in granularity_records()]
    table = table_of(mapped + per_level)
    assert find_conflicts(aggregate(table[table["stage"] == "evaluate"])).empty
    fig, data = granularity.draw(table)
    got = {c.get_label(): list(c.lines[0].get_ydata()) for c in fig.axes[0].containers}
    assert got["simclr"] == pytest.approx([0.95, 0.7, 0.5])
    assert got["simclr · per_level"] == pytest.approx([0.85, 0.6, 0.4])
    assert got["supervised · per_level"] == pytest.approx([0.89, 0.8, 0.7])
    assert "mapped up" in data.attrs["caption"] and "per level" in data.attrs["caption"]


def test_quality_marks_a_missing_clean_cell_instead_of_a_zero_bar():
    recs = [r for r in quality_records() if not (r["axes"]["method"] == "supervised"
                                                 and r["axes"]["corruption"] == "none")]
    fig, data = quality.draw(table_of(recs))
    assert data.set_index("method").loc["supervised", "delta"] != data.set_index("method").loc["supervised", "delta"]
    assert "missing" in [t.get_text() for t in fig.axes[0].texts]
    assert data.set_index("method").loc["simclr", "delta_std"] == pytest.approx(math.hypot(STD, STD))


def test_quality_shows_a_change_of_zero_as_a_dash_above_the_line_at_zero():
    """A corruption that changed nothing drew a bar of height 0, hidden under the line at 0: it read as missing."""
    recs = [r for r in quality_records() if r["axes"]["method"] == "supervised"]
    for corruption in ("none", "downsample:factor=2"):  # seeds of equal accuracy clean and corrupted
        recs += records(eval_axes(method="simclr", corruption=corruption), {(10000, None): 0.45})
    fig, data = quality.draw(table_of(recs))
    ax = fig.axes[0]
    simclr = next(c for c in ax.containers if isinstance(c, BarContainer) and c.get_label() == "simclr")
    dashes = [c for c in ax.collections if c.get_zorder() > 2]
    assert len(dashes) == 1
    spans = sorted((seg[0][0], seg[1][0], seg[0][1]) for seg in dashes[0].get_segments())
    bars = [b for b in simclr.patches if b.get_height() == 0]
    assert len(spans) == len(bars) > 0 and all(y == 0 for *_, y in spans)
    for (x0, x1, _), bar in zip(spans, sorted(bars, key=lambda b: b.get_x())):
        assert bar.get_x() < x0 < x1 < bar.get_x() + bar.get_width()
    assert tuple(dashes[0].get_colors()[0][:3]) == pytest.approx(simclr.patches[0].get_facecolor()[:3])
    assert not dashes[0].get_clip_on()  # bars all below 0 end the axes at 0: a clipped dash would lose its top half


def test_concat_of_two_sizes_keeps_the_size_axis_numeric():
    recs = domain_records() + records(eval_axes(dataset="a", size="50000|1000000", protocol="concat"),
                                      {(10000, None): 0.5}) + records(eval_axes(size=50_000), {(10000, None): 0.3})
    table = table_of(recs)
    assert pd.api.types.is_numeric_dtype(table["size"])
    assert set(table["size_pair"].dropna()) == {"50000|1000000"}
    _, data = domain_concat.draw(table)
    pair = data[data["pair"] == "simclr a 50k | simclr a 1M"].set_index("role")["mean"]
    assert pair.to_list() == pytest.approx([0.3, 0.45, 0.5])
    _, matrix = domain_matrix.draw(table)
    assert set(matrix["size"]) == {1_000_000}



def test_quantity_plan_of_a_whole_dataset_line_adds_no_missing_points_where_results_are():
    """A line pretrained on the whole dataset has no size: NaN in the plan's frame, NA in the results'. Its done
    cells are not also listed missing (which broke the line into markers and doubled rows in the data)."""
    recs = []
    for size in (None, 50_000):
        recs += records(eval_axes(size=size), {(1000, None): 0.3, (10000, None): 0.4})
    planned = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": size,
                             "corruption": "none", "protocol": "linear", "eval_dataset": "a",
                             "labeled_sizes": "1000,10000"} for size in (float("nan"), 50_000)])
    fig, data = quantity.draw(table_of(recs), planned)
    assert len(data) == 4 and data["mean"].notna().all()
    line = _containers(fig)[("a · linear probe", "all")].lines[0]
    assert list(line.get_xdata()) == [1000.0, 10000.0] and not any(map(math.isnan, line.get_ydata()))

# A grid with a backbone axis: every figure draws each backbone apart, under "<method> · <backbone>".
BACKBONES = (("resnet18", 0.0), ("resnet50", 0.2))


def test_quantity_draws_each_backbone_apart():
    recs = []
    for bb, bump in BACKBONES:
        recs += records(eval_axes(backbone=bb), {(1000, None): 0.30 + bump, (10000, None): 0.35 + bump})
        recs += records({"backbone": bb, "protocol": "scratch", "eval_dataset": "a", "corruption": "none"},
                        {(1000, None): 0.10 + bump, (10000, None): 0.15 + bump})
    fig, data = quantity.draw(table_of(recs))
    got = {label: c.lines[0] for (title, label), c in _containers(fig).items() if title == "a · linear probe"}
    assert set(got) == {"simclr · resnet18", "simclr · resnet50", f"{quantity.SCRATCH} · resnet18",
                        f"{quantity.SCRATCH} · resnet50"}
    for bb, bump in BACKBONES:  # one point per labeled size on each line, each from its own backbone
        assert list(got[f"simclr · {bb}"].get_xdata()) == [1000.0, 10000.0]
        assert list(got[f"simclr · {bb}"].get_ydata()) == pytest.approx([0.30 + bump, 0.35 + bump])
        assert list(got[f"{quantity.SCRATCH} · {bb}"].get_ydata()) == pytest.approx([0.10 + bump, 0.15 + bump])
    assert set(data["line"]) == set(got)


def test_domain_matrix_and_quality_draw_each_backbone_apart():
    recs = []
    for bb, bump in BACKBONES:
        for ds, ev, v in (("a", "a", 0.45), ("b", "a", 0.25), ("a", "b", 0.35), ("b", "b", 0.55)):
            recs += records(eval_axes(backbone=bb, dataset=ds, eval_dataset=ev), {(10000, None): v + bump})
        recs += records(eval_axes(backbone=bb, corruption="jpeg"), {(10000, None): 0.40 - bump})
    table = table_of(recs)
    fig, data = domain_matrix.draw(table)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(panels) == {"simclr · resnet18", "simclr · resnet50"}
    for bb, bump in BACKBONES:
        mesh = panels[f"simclr · {bb}"].collections[0]
        assert np.asarray(mesh.get_array()).reshape(2, 2) == pytest.approx(
            np.array([[0.45, 0.35], [0.25, 0.55]]) + bump)
    fig, data = quality.draw(table)
    bars = _bars(fig.axes[0])  # each backbone's corrupted run against its own clean one
    assert set(bars) == {"simclr · resnet18", "simclr · resnet50"}
    assert bars["simclr · resnet18"] == pytest.approx([0.40 - 0.45])
    assert bars["simclr · resnet50"] == pytest.approx([0.20 - 0.65])


def test_label_variants_names_each_part_of_a_concatenation():
    from study.report.figures.common import label_variants
    table = pd.DataFrame({"method": ["simclr", "simclr|supervised", "simclr", None],
                          "backbone": ["resnet18", "resnet50", "resnet18|resnet50", "resnet50"]})
    out, planned = label_variants(table, None)
    assert out["method"].tolist()[:3] == ["simclr · resnet18", "simclr · resnet50|supervised · resnet50",
                                          "simclr · resnet18|simclr · resnet50"]
    assert pd.isna(out["method"].iloc[3])  # a scratch row has no method to name
    one = pd.DataFrame({"method": ["simclr"], "backbone": ["resnet50"]})
    plan = pd.DataFrame({"method": ["simclr"], "backbone": ["resnet18"]})
    out, planned = label_variants(one, plan)  # results and plan decide together
    assert out["method"].tolist() == ["simclr · resnet50"] and planned["method"].tolist() == ["simclr · resnet18"]
    assert label_variants(one, one)[0]["method"].tolist() == ["simclr"]  # one backbone: names unchanged


def test_label_variants_names_a_concatenation_of_two_like_encoders_once():
    from study.report.figures.common import label_variants
    table = pd.DataFrame({"method": ["simclr", "simclr"], "backbone": ["resnet50", "resnet18|resnet18"]})
    out, _ = label_variants(table, None)
    assert out["method"].tolist() == ["simclr · resnet50", "simclr · resnet18"]  # not "simclr · resnet18|simclr ·.."


@pytest.mark.parametrize("module", [domain_matrix, domain_pooling, domain_concat, quality, granularity])
def test_figures_without_data_raise_nodata(module):
    with pytest.raises(NoData):
        module.draw(table_of(quantity_records()))


def test_quantitys_messages_name_its_panels(monkeypatch):
    """A panel added (a protocol's, in PROTOCOLS and PANEL_NAMES) is named where the figure says what it lacks."""
    monkeypatch.setattr(quantity, "PROTOCOLS", ("linear", "finetune", "nomean"))
    monkeypatch.setitem(quantity.PANEL_NAMES, "nomean", "no mean")
    with pytest.raises(NoData, match="no in-domain linear probe, fine-tuning or no mean top-1 results in this grid"):
        quantity.draw(table_of(records(eval_axes(dataset="b"), {(1000, None): 0.3})))


def test_quantity_with_every_planned_cell_missing_is_skipped_not_drawn_empty():
    recs = quantity_records()
    expected = table_of(recs).drop_duplicates("job_id")[["job_id", "stage", "method", "dataset", "size", "corruption",
                                                          "seed", "protocol", "eval_dataset"]]
    with pytest.raises(NoData, match="every planned cell is missing"):
        quantity.draw(table_of(recs).iloc[0:0], expected)


def test_quality_draws_only_methods_with_corrupted_pretraining():
    recs = [r for r in quality_records() if not (r["axes"]["method"] == "supervised"
                                                 and r["axes"]["corruption"] != "none")]
    fig, data = quality.draw(table_of(recs))
    assert set(data["method"]) == {"simclr"}  # supervised has clean cells only: not "missing" bars
    assert "missing" not in [t.get_text() for t in fig.axes[0].texts]


def test_domain_matrix_marks_missing_only_what_the_grid_plans():
    recs = domain_records() + records(eval_axes(method="supervised"), {(10000, None): 0.6})  # supervised: a -> a
    planned = pd.DataFrame([{"job_id": f"{m}{d}{e}", "stage": "evaluate", "method": m, "dataset": d, "size": 1_000_000,
                             "corruption": "none", "protocol": "linear", "eval_dataset": e}
                            for m, d, e in (("simclr", "a", "a"), ("simclr", "a", "b"), ("simclr", "b", "a"),
                                            ("simclr", "b", "b"), ("supervised", "a", "a"), ("supervised", "b", "b"))])
    fig, data = domain_matrix.draw(table_of(recs), planned)
    sup = data[data["method"] == "supervised"].set_index(["dataset", "eval_dataset"])
    assert bool(sup.loc[("b", "b"), "planned"]) and not bool(sup.loc[("a", "b"), "planned"])
    sup_ax = fig.axes[[a.get_title() for a in fig.axes].index("supervised")]
    assert [t.get_text() for t in sup_ax.texts].count("missing") == 1  # b -> b only; a -> b was never planned
    table = domain_matrix.paper_table(data)  # the table says the same: '—' for b -> b, blank for a -> b
    from study.report.tables import display_rows

    shown = {(r[0], r[1]): r[2:] for r in display_rows(table, "—")}
    assert shown[("supervised", "a")][0].startswith("0.600") and shown[("supervised", "a")][1] == ""
    assert shown[("supervised", "b")] == ["", "—"]


def test_domain_figures_leave_what_the_grid_never_planned_blank():
    """Pools of other datasets are not evaluated on every dataset ("eval_datasets: same"): their absent bars are not
    'missing'. A method met only off the diagonal (the supervised encoder a concatenation pairs with) gets no
    matrix panel. Pooled bars run by size, then by the number of sets pooled."""
    recs = domain_records() + records(eval_axes(dataset="a+c", eval_dataset="a"), {(10000, None): 0.42})
    recs += records(eval_axes(dataset="a+b+c", eval_dataset="a", size=500_000), {(10000, None): 0.41})
    recs += records(eval_axes(method="supervised", dataset="a", eval_dataset="b"), {(10000, None): 0.3})
    fig, data = domain_pooling.draw(table_of(recs))
    assert "missing" not in [t.get_text() for t in fig.axes[0].texts]  # a+c on b: never planned
    bars = [t.get_text().split(" · ")[0] for t in fig.axes[0].get_legend().get_texts()]  # " · simclr": 2 methods
    assert bars.index("pooled a+b+c 500k") < bars.index("pooled a+b 1M") < bars.index("pooled a+c 1M")
    fig, data = domain_matrix.draw(table_of(recs))
    assert [a.get_title() for a in fig.axes if a.get_title()] == ["simclr"]
    assert set(data["method"]) == {"simclr"}


def test_domain_matrix_shows_the_size_with_most_cells_while_a_grid_still_runs():
    """Every cell at 1M but b's own 1M pretraining still running, with 500k in-domain probes done early: the
    matrix stays at 1M (b's row missing at 1M), not 500k for all."""
    recs = [r for r in domain_records() if r["axes"]["dataset"] == "a"]
    recs += records(eval_axes(dataset="a", eval_dataset="a", size=500_000), {(10000, None): 0.4})
    recs += records(eval_axes(dataset="b", eval_dataset="b", size=500_000), {(10000, None): 0.5})
    planned = pd.DataFrame([{"job_id": f"{d}{e}{s}", "stage": "evaluate", "method": "simclr", "dataset": d,
                             "size": s, "corruption": "none", "protocol": "linear", "eval_dataset": e}
                            for d in "ab" for e in "ab" for s in (500_000, 1_000_000) if s == 1_000_000 or d == e])
    fig, data = domain_matrix.draw(table_of(recs), planned)
    assert "pretraining size 1M" in data.attrs["caption"]
    cell = data.set_index(["dataset", "eval_dataset"])
    assert cell.loc[("a", "b"), "mean"] == pytest.approx(0.35) and math.isnan(cell.loc[("b", "b"), "mean"])
    assert [t.get_text() for t in fig.axes[0].texts].count("missing") == 2  # b -> a and b -> b, planned at 1M


def test_concat_with_an_encoder_of_the_whole_dataset_keeps_the_size_axis_numeric():
    """The planner joins a size and a whole-dataset encoder as "1000000|None": it goes to size_pair like any pair
    (the size column stays numeric, so the size-aware figures still draw), and that encoder's bar is its own
    whole-dataset cell, not another size's."""
    recs = domain_records() + records(eval_axes(dataset="b", size=None), {(10000, None): 0.6}) \
        + records(eval_axes(dataset="a|b", size="1000000|None", protocol="concat"), {(10000, None): 0.7})
    table = table_of(recs)
    assert pd.api.types.is_numeric_dtype(table["size"])
    assert set(table["size_pair"].dropna()) == {"1000000|None"}
    _, data = domain_concat.draw(table)
    pair = data[data["pair"] == "simclr a 1M | simclr b"].set_index("role")["mean"]
    assert pair.to_list() == pytest.approx([0.45, 0.6, 0.7])
    domain_pooling.draw(table)
    _, matrix = domain_matrix.draw(table)
    assert set(matrix["size"]) == {1_000_000}


def test_domain_pooling_and_concat_show_planned_cells_without_a_result_as_missing():
    """While a grid still runs, a planned pooled set or concatenation without a result is a missing bar (NaN, count
    0) beside the others, as the other figures show missing cells, not a bar that was never planned."""
    recs = [r for r in domain_records()
            if not (r["axes"]["dataset"] == "a+b" and r["axes"]["eval_dataset"] == "a")
            and r["axes"]["protocol"] != "concat"]
    planned = pd.DataFrame([{"job_id": j, "stage": "evaluate", "method": "simclr", "dataset": ds, "size": 1_000_000,
                             "corruption": "none", "protocol": proto, "eval_dataset": "a", "labeled_sizes": "10000"}
                            for j, ds, proto in (("pool", "a+b", "linear"), ("conc", "a|b", "concat"))])
    table = table_of(recs)
    fig, data = domain_pooling.draw(table, planned)
    bars = _bars(fig.axes[0])
    assert math.isnan(bars["pooled a+b 1M"][0]) and bars["pooled a+b 1M"][1] == pytest.approx(0.50)
    assert bars["in-domain 1M"] == pytest.approx([0.45, 0.55])
    row = data[(data["eval_dataset"] == "a") & (data["kind"] == "pooled")]
    assert len(row) == 1 and int(row["count"].iloc[0]) == 0
    _, data = domain_concat.draw(table, planned)
    conc = data.set_index("role")
    assert conc.loc["concatenated", "count"] == 0 and math.isnan(conc.loc["concatenated", "mean"])
    assert conc.loc["first encoder", "mean"] == pytest.approx(0.45)  # the single encoders that are done
    with pytest.raises(NoData):
        domain_concat.draw(table)  # without a plan nothing says a concatenation was planned


def test_quantity_draws_each_scratch_variant_apart():
    """Two from-scratch entries told apart by `variant` (a short and a long recipe): two reference lines and two table
    rows, "<scratch> · <variant>", not one zigzag line whose table row keeps one of them."""
    recs = records(eval_axes(size=50_000), {(1000, None): 0.30, (10000, None): 0.40})
    for variant, (lo, hi) in (("short", (0.10, 0.20)), ("long", (0.15, 0.35))):
        recs += records({"protocol": "scratch", "eval_dataset": "a", "corruption": None, "variant": variant},
                        {(1000, None): lo, (10000, None): hi}, protocol={"epochs": 10 if variant == "short" else 90})
    fig, data = quantity.draw(table_of(recs))
    got = {label: c.lines[0] for (title, label), c in _containers(fig).items() if title == "a · linear probe"}
    assert set(got) == {"50k", f"{quantity.SCRATCH} · short", f"{quantity.SCRATCH} · long"}
    for variant, ys in (("short", [0.10, 0.20]), ("long", [0.15, 0.35])):
        line = got[f"{quantity.SCRATCH} · {variant}"]
        assert list(line.get_xdata()) == [1000.0, 10000.0] and list(line.get_ydata()) == pytest.approx(ys)
    # told apart by marker too, not by the legend's text alone
    assert got[f"{quantity.SCRATCH} · short"].get_marker() != got[f"{quantity.SCRATCH} · long"].get_marker()
    table = quantity.paper_table(data).set_index("line")
    assert table.loc[f"{quantity.SCRATCH} · short", ["1k", "10k"]].to_list() == pytest.approx([0.10, 0.20])
    assert table.loc[f"{quantity.SCRATCH} · long", ["1k", "10k"]].to_list() == pytest.approx([0.15, 0.35])


def test_quantity_line_whose_results_all_diverged_is_not_a_planned_line():
    """A line with results, all without a value, keeps its own labeled sizes (count 0), not the panel's as a line
    planned and not yet run; a figure with nothing else says they diverged, not that missing.csv lists them."""
    diverged = records(eval_axes(size=50_000), {(1000, None): 0.0}, seeds=(0,))
    diverged[0]["metrics"][0]["value"] = None
    recs = records(eval_axes(), {(1000, None): 0.3, (3000, None): 0.35, (10000, None): 0.4}) + diverged
    fig, data = quantity.draw(table_of(recs))
    line = _containers(fig)[("a · linear probe", "50k")].lines[0]
    assert list(line.get_xdata()) == [1000.0] and math.isnan(line.get_ydata()[0])
    assert data.loc[data["line"] == "50k", "labeled_size"].to_list() == [1000]
    with pytest.raises(NoData, match="diverged") as e:
        quantity.draw(table_of(diverged))
    assert "missing.csv" not in str(e.value)


def test_granularity_panel_draws_only_the_lines_evaluated_on_its_dataset():
    """Each pretraining set probed in its own domain: cub's panel has no inat encoder drawn (or tabled) as missing;
    the legend still names every line once."""
    recs = []
    for ev, methods in (("inat", ("simclr", "supervised")), ("cub", ("simclr",))):
        for m in methods:
            recs += records(eval_axes(method=m, protocol="granularity", dataset=ev, eval_dataset=ev),
                            {(1000, lv): v for lv, v in zip(LEVELS, (0.9, 0.7, 0.5))}, protocol={"levels": LEVELS})
    fig, data = granularity.draw(table_of(recs))
    panels = {ax.get_title().split(" ")[0]: {c.get_label() for c in ax.containers} for ax in fig.axes}
    assert panels == {"cub": {"simclr cub"}, "inat": {"simclr inat", "supervised inat"}}
    table = granularity.paper_table(data)
    assert sorted(zip(table["eval_dataset"], table["line"])) == [("cub", "simclr cub"), ("inat", "simclr inat"),
                                                                 ("inat", "supervised inat")]
    assert table[["kingdom", "order", "species"]].notna().all().all()
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["simclr cub", "simclr inat",
                                                                             "supervised inat"]


def test_quality_leaves_a_corruption_never_planned_for_a_method_blank():
    """supervised is pretrained with JPEG only, simclr also downsampled (diverged): supervised x downsample is no
    bar and a blank table cell; simclr x downsample is 'missing'. Planned for supervised too, it is missing."""
    from study.report.tables import to_markdown

    recs = []
    for method, clean, jpeg in (("simclr", 0.45, 0.30), ("supervised", 0.70, 0.65)):
        recs += records(eval_axes(method=method), {(10000, None): clean}, seeds=(0,))
        recs += records(eval_axes(method=method, corruption="jpeg:quality=10"), {(10000, None): jpeg}, seeds=(0,))
    down = records(eval_axes(method="simclr", corruption="downsample:factor=2"), {(10000, None): 0.0}, seeds=(0,))
    down[0]["metrics"][0]["value"] = None
    table = table_of(recs + down)
    planned = table.drop_duplicates("job_id").assign(stage="evaluate")
    fig, data = quality.draw(table, planned)
    assert sorted(zip(data["corruption"], data["method"])) == [("downsample:factor=2", "simclr"),
                                                               ("jpeg:quality=10", "simclr"),
                                                               ("jpeg:quality=10", "supervised")]
    assert [t.get_text() for t in fig.axes[0].texts] == ["missing"]  # simclr's, left of the tick: supervised's blank
    tick = [t.get_text() for t in fig.axes[0].get_xticklabels()].index("downsample 2x")
    assert tick - 0.5 < fig.axes[0].texts[0].get_position()[0] < tick
    md = to_markdown(quality.paper_table(data))
    assert "| a | a | 1M | 10k | downsample:factor=2 | — |  |" in md
    also = pd.concat([planned, planned[planned["job_id"] == down[0]["job_id"]].assign(method="supervised",
                                                                                       job_id="sup-down")])
    fig, data = quality.draw(table, also)
    assert [t.get_text() for t in fig.axes[0].texts] == ["missing", "missing"]
    assert "| a | a | 1M | 10k | downsample:factor=2 | — | — |" in to_markdown(quality.paper_table(data))



def test_a_planned_all_labels_size_is_read_as_every_label():
    """A grid may plan `labeled_sizes: [1k, all]`: the plan's cell reads "1000,all", which crashed the report
    (int("all")) as soon as a planned line had no result; `all` is a null size (every label), as in the records."""
    assert planned_sizes("1000,all") == [1000, None] and planned_sizes("") == [] and planned_sizes(None) == []
    recs = quantity_records()
    expected = table_of(recs).drop_duplicates("job_id")[["job_id", "stage", "method", "dataset", "size", "corruption",
                                                          "seed", "protocol", "eval_dataset"]]
    unrun = expected[expected["protocol"] == "linear"].head(1).assign(job_id="unrun", size=250_000)
    expected = pd.concat([expected, unrun]).assign(labeled_sizes="1000,all")
    _, data = quantity.draw(table_of(recs), expected)
    waiting = data[(data["size"] == 250_000) & (data["protocol"] == "linear")]
    assert not waiting.empty and waiting["mean"].isna().all()  # the planned line, drawn as missing


def _md(table) -> str:
    from study.report.tables import to_markdown
    return to_markdown(table)


def test_quality_keeps_a_planned_corruption_without_a_result_as_missing():
    """JPEG is planned for both methods and none of its jobs has finished: its row reads '—', in the grid's order,
    rather than the corruption vanishing from the figure and the table."""
    table = table_of(quality_records())
    jpeg = table.drop_duplicates("job_id").assign(stage="evaluate")
    jpeg = jpeg[jpeg["corruption"] != "none"].assign(corruption="jpeg:quality=10", job_id=lambda f: f["job_id"] + "j")
    planned = pd.concat([table.drop_duplicates("job_id").assign(stage="evaluate"), jpeg], ignore_index=True)
    fig, data = quality.draw(table, planned)
    assert list(dict.fromkeys(data["corruption"])) == ["downsample:factor=2", "jpeg:quality=10"]
    waiting = data[data["corruption"] == "jpeg:quality=10"]
    assert sorted(waiting["method"]) == ["simclr", "supervised"] and waiting["mean"].isna().all()
    assert (waiting["count"] == 0).all()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["downsample 2x", "JPEG quality 10"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["missing", "missing"]
    assert "| a | a | 1M | 10k | jpeg:quality=10 | — | — |" in _md(quality.paper_table(data))


def test_quality_orders_corruptions_as_the_grid_does_else_by_parameter_value():
    """Not as strings (factor=16 before factor=2): the plan's order where there is a plan, else by name, then the
    parameters' values."""
    recs = records(eval_axes(), {(10000, None): 0.5})
    for factor, v in ((2, 0.45), (4, 0.40), (8, 0.30), (16, 0.20)):
        recs += records(eval_axes(corruption=f"downsample:factor={factor}"), {(10000, None): v})
    recs += records(eval_axes(corruption="jpeg:quality=5"), {(10000, None): 0.1})
    recs += records(eval_axes(corruption="jpeg:quality=10"), {(10000, None): 0.2})
    table = table_of(recs)
    _, data = quality.draw(table)
    assert list(quality.paper_table(data)["corruption"]) == [
        quality.CLEAN_ROW, "downsample:factor=2", "downsample:factor=4", "downsample:factor=8", "downsample:factor=16",
        "jpeg:quality=5", "jpeg:quality=10"]
    grid_order = ["none", "jpeg:quality=10", "downsample:factor=16", "downsample:factor=2", "jpeg:quality=5",
                  "downsample:factor=8", "downsample:factor=4"]
    jobs = table.drop_duplicates("job_id").assign(stage="evaluate")
    planned = jobs.set_index("corruption").loc[grid_order].reset_index()
    fig, data = quality.draw(table, planned)
    assert list(dict.fromkeys(data["corruption"])) == grid_order[1:]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [quality.corruption_label(c)
                                                                     for c in grid_order[1:]]


def test_quality_panels_run_in_the_grids_dataset_order_then_by_pretraining_size():
    """Panels by the plan's dataset order (zeta before alpha where the grid lists it first; by name without a
    plan), a dataset's pretraining sizes smallest first: not the order the results come in."""
    recs = []
    for ds, size in (("alpha", 50_000), ("zeta", 125_000), ("zeta", 50_000), ("alpha", 125_000)):
        for corr, v in (("none", 0.5), ("jpeg:quality=10", 0.4)):
            recs += records(eval_axes(dataset=ds, eval_dataset=ds, size=size, corruption=corr), {(1000, None): v})
    table = table_of(recs)

    def panels(data):
        return list(dict.fromkeys(zip(data["dataset"], data["size"])))

    _, data = quality.draw(table)
    assert panels(data) == [("alpha", 50_000), ("alpha", 125_000), ("zeta", 50_000), ("zeta", 125_000)]
    jobs = table.drop_duplicates("job_id").assign(stage="evaluate")
    planned = jobs.set_index("dataset").loc[["zeta", "alpha"]].reset_index()
    fig, data = quality.draw(table, planned)
    assert panels(data) == [("zeta", 50_000), ("zeta", 125_000), ("alpha", 50_000), ("alpha", 125_000)]
    assert [ax.get_title().split()[0] for ax in fig.axes[:4]] == ["zeta", "zeta", "alpha", "alpha"]


def test_quality_panels_of_one_evaluation_dataset_run_in_the_grids_order_of_pretraining_sets():
    """alpha's probes of encoders pretrained on zeta and on alpha, the grid listing zeta first: zeta's panel first
    (not by name); each panel's bars are changes from clean, about a zero line."""
    recs = []
    for ds in ("alpha", "zeta"):
        for corr, v in (("none", 0.5), ("jpeg:quality=10", 0.4)):
            recs += records(eval_axes(dataset=ds, eval_dataset="alpha", corruption=corr), {(1000, None): v})
    table = table_of(recs)
    planned = table.drop_duplicates("job_id").assign(stage="evaluate").set_index("dataset").loc[
        ["zeta", "alpha"]].reset_index()
    fig, data = quality.draw(table, planned)
    assert list(dict.fromkeys(data["dataset"])) == ["zeta", "alpha"]
    for ax in fig.axes[:2]:
        assert ax.get_ylabel() == "Δ top-1 vs clean (points)"
        assert any(list(line.get_ydata()) == [0, 0] for line in ax.get_lines()), ax.get_title()


def test_quantity_and_pooling_tables_leave_cells_the_grid_never_plans_blank():
    """A cell the grid never plans (scratch at 10k labels; fine-tuning at 1k; a pooled set on a dataset it does not
    pool) is blank, as the figures leave it; '—' is only a planned cell without a value."""
    recs = records(eval_axes(size=50_000), {(1000, None): 0.30, (10000, None): 0.35})
    recs += records({"method": None, "protocol": "scratch", "eval_dataset": "a", "corruption": "none"},
                    {(1000, None): 0.10})
    planned = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 50_000,
                             "corruption": "none", "protocol": proto, "eval_dataset": "a", "labeled_sizes": sizes}
                            for proto, sizes in (("linear", "1000,3000,10000"), ("finetune", "3000"))])
    _, data = quantity.draw(table_of(recs), planned)
    md = _md(quantity.paper_table(data))
    assert f"| a | linear | {quantity.SCRATCH} | 0.100 ± 0.014 |  |  |" in md  # never planned at 3k, 10k
    assert "| a | linear | 50k | 0.300 ± 0.014 | — | 0.350 ± 0.014 |" in md  # 3k planned, no result yet
    assert "| a | finetune | 50k |  | — |  |" in md  # planned at 3k only, nothing done yet
    html_table = table_html(quantity.paper_table(data))  # index.html marks them alike
    assert "<td>finetune</td><td>50k</td><td></td><td class=\"missing\">—</td><td></td></tr>" in html_table
    recs = domain_records() + records(eval_axes(dataset="a+c", eval_dataset="a"), {(10000, None): 0.42})
    _, data = domain_pooling.draw(table_of(recs))
    table = domain_pooling.paper_table(data)
    assert list(table["pretraining"]) == ["in-domain 1M", "pooled a+b 1M", "pooled a+c 1M"]
    md = _md(table)
    assert "| pooled a+c 1M | 0.420 ± 0.014 |  |" in md and "—" not in md  # a+c is not evaluated on b


def test_domain_matrix_keeps_the_plans_matrix_size_while_in_domain_probes_of_another_finish_first():
    """The plan's 3x3 matrix is at 1M, with in-domain probes at 500k: the three 500k cells finished before more than
    two of the 1M ones, and the matrix stays at 1M (its unfinished cells missing), not the 500k diagonal."""
    recs = records(eval_axes(dataset="a", eval_dataset="a"), {(10000, None): 0.45})
    recs += records(eval_axes(dataset="a", eval_dataset="b"), {(10000, None): 0.35})
    recs += [r for d in "abc" for r in records(eval_axes(dataset=d, eval_dataset=d, size=500_000),
                                               {(10000, None): 0.4})]
    planned = pd.DataFrame([{"job_id": f"{d}{e}{s}", "stage": "evaluate", "method": "simclr", "dataset": d,
                             "size": s, "corruption": "none", "protocol": "linear", "eval_dataset": e}
                            for d in "abc" for e in "abc" for s in (500_000, 1_000_000) if s == 1_000_000 or d == e])
    fig, data = domain_matrix.draw(table_of(recs), planned)
    assert "pretraining size 1M" in data.attrs["caption"]
    cell = data.set_index(["dataset", "eval_dataset"])
    assert cell.loc[("a", "b"), "mean"] == pytest.approx(0.35) and cell.loc[("a", "a"), "mean"] == pytest.approx(0.45)
    assert cell["mean"].isna().sum() == 7 and set(data["size"].dropna()) == {1_000_000}
    assert [t.get_text() for t in fig.axes[0].texts].count("missing") == 7


def test_a_null_backbone_beside_a_named_one_is_drawn_apart_not_dropped():
    """Results of a grid from before it gained `backbone: resnet50` (null) and after (the same recipe): two lines, not
    one table cell keeping the older value in silence."""
    recs = records(eval_axes(size=50_000), {(1000, None): 0.30}, seeds=(0,))
    recs += records(eval_axes(size=50_000, backbone="resnet50"), {(1000, None): 0.50}, seeds=(0,),
                    finished_at="2024-02-01T00:00:00+00:00")
    _, data = quantity.draw(table_of(recs))
    table = quantity.paper_table(data).set_index("line")
    assert table["1k"].to_dict() == pytest.approx({"simclr": 0.30, "simclr · resnet50": 0.50})
    assert "duplicates" not in table.attrs


def test_wide_names_each_table_cell_that_two_rows_fall_on():
    from study.report.figures.common import wide

    data = pd.DataFrame({"line": ["simclr", "simclr", "simclr"], "labeled": ["1k", "1k", "10k"],
                         "mean": [0.3, 0.5, float("nan")], "std": float("nan")})
    table = wide(data, "line", "labeled", order=["1k", "10k"])
    assert table.loc["simclr", "1k"] == pytest.approx(0.3)
    assert table.attrs["duplicates"] == ["[line=simclr, labeled=1k]: 0.300, 0.500"]
    assert "duplicates" not in wide(data.iloc[1:], "line", "labeled").attrs


def test_a_planned_cell_with_fewer_seeds_than_planned_says_so_in_the_table():
    recs = records(eval_axes(size=50_000), {(1000, None): 0.30}, seeds=(0, 1, 2))
    recs += records(eval_axes(), {(1000, None): 0.40}, seeds=(0,))
    planned = table_of(recs).drop_duplicates("job_id")
    planned = pd.concat([planned, planned[planned["size"] == 1_000_000].assign(seed=1, job_id="s1"),
                         planned[planned["size"] == 1_000_000].assign(seed=2, job_id="s2")], ignore_index=True)
    fig, data = quantity.draw(table_of(recs), planned)
    md = _md(quantity.paper_table(data))
    assert "| a | linear | 1M | 0.400 (1/3) |" in md and "| a | linear | 50k | 0.303 ± 0.012 |" in md
    partial = data.set_index("line")["partial_seeds"]
    assert partial["1M"] == "1/3" and pd.isna(partial["50k"])  # 3 seeds of 3
    assert _hollow(fig.axes[0]) == [(1000.0, pytest.approx(0.40))]  # the 1/3 point only, drawn hollow
    assert "hollow markers: cells with a value in fewer seeds than planned" in data.attrs["caption"]
    assert _legend_labels(fig)[-1] == "hollow: fewer seeds than planned"  # the legend's own entry for a hollow point
    fig, data = quantity.draw(table_of(recs))  # no plan: nothing to compare with
    assert "(1/3)" not in _md(quantity.paper_table(data))
    assert _hollow(fig.axes[0]) == [] and "hollow" not in data.attrs["caption"]
    assert "hollow: fewer seeds than planned" not in _legend_labels(fig)


def _legend_labels(fig) -> list[str]:
    """The labels of every legend of `fig` (the figure's and its axes')."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def _hollow(ax) -> list[tuple[float, float]]:
    """The points `style.hollow_partial` drew on `ax`: markers only, white face."""
    return [(float(x), float(y)) for line in ax.get_lines()
            if line.get_linestyle() == "None" and line.get_markerfacecolor() == "white"
            for x, y in zip(line.get_xdata(), line.get_ydata())]


def test_a_hollow_point_of_a_line_whose_marker_has_no_face_is_a_hollow_circle():
    """The scratch line's `x` has no face to empty: drawn white-faced it looked as every other `x`. Its partial point
    is a hollow circle; a NaN point (a gap) and a full one get none, on a log axis too."""
    import matplotlib.pyplot as plt
    from study.report import style

    fig, ax = plt.subplots()
    ax.set_xscale("log")
    n = style.hollow_partial(ax, [1e3, 1e4, 1e5], [0.2, np.nan, 0.4], ["1/3", "1/3", None], style.REFERENCE)
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None"]
    assert n == 1 and line.get_marker() == "o" and line.get_markerfacecolor() == "white"
    assert list(line.get_xdata()) == [1e3] and line.get_markeredgecolor() == "black"
    fig2, ax2 = plt.subplots()
    style.hollow_partial(ax2, [1.0], [0.5], ["1/2"], style.line_style(1, 3))
    assert ax2.get_lines()[0].get_marker() == style.MARKERS[1]  # a filled marker keeps its shape
    plt.close(fig)
    plt.close(fig2)


def test_granularity_draws_a_level_with_fewer_seeds_than_planned_hollow():
    """simclr's species level has one of its two planned seeds: that point alone is hollow, and the caption says
    what hollow means."""
    recs = granularity_records()
    planned = table_of(recs).drop_duplicates("job_id")
    recs[1]["metrics"] = [m for m in recs[1]["metrics"] if m["level"] != "species"]  # simclr seed 1: no species
    fig, data = granularity.draw(table_of(recs), planned)
    hollow = _hollow(fig.axes[0])
    assert len(hollow) == 1 and hollow[0][0] == LEVELS.index("species")
    assert data.loc[data["partial_seeds"].notna(), ["line", "level"]].values.tolist() == [["simclr", "species"]]
    assert "hollow markers" in data.attrs["caption"]
    assert _legend_labels(fig)[-1] == "hollow: fewer seeds than planned"
    (entry,) = [h for h, t in zip(fig.axes[-1].get_legend().legend_handles, _legend_labels(fig))
                if t == "hollow: fewer seeds than planned"]
    assert entry.get_markerfacecolor() == "white" and entry.get_linestyle() == "None"


def test_granularity_draws_a_planned_line_without_a_result_as_missing():
    """byol is planned and its evaluation has not finished: a line (and table row) missing at every level, not an
    absent method."""
    planned = table_of(granularity_records()).drop_duplicates("job_id")
    planned = pd.concat([planned, planned.head(1).assign(method="byol", job_id="byol0")], ignore_index=True)
    fig, data = granularity.draw(table_of(granularity_records()), planned)
    byol = data[data["line"] == "byol"]
    assert byol["level"].to_list() == LEVELS and byol["mean"].isna().all() and (byol["count"] == 0).all()
    assert {c.get_label() for c in fig.axes[0].containers} == {"byol", "simclr", "supervised"}
    assert "| inat | all | byol | — | — | — |" in _md(granularity.paper_table(data))


def test_a_planned_granularity_line_is_missing_at_the_levels_its_entry_names_only():
    """A per_level entry of [kingdom, species] planned beside results at every level: its line is missing at those
    two levels (two points without a value, its table row blank elsewhere), not at all seven."""
    planned = table_of(granularity_records()).drop_duplicates("job_id")
    waiting = planned.head(1).assign(method="byol", job_id="byol0", levels="kingdom,species")
    fig, data = granularity.draw(table_of(granularity_records()), pd.concat([planned, waiting], ignore_index=True))
    byol = data[data["line"] == "byol"]
    assert byol["level"].to_list() == ["kingdom", "species"] and byol["mean"].isna().all()
    assert _texts(fig.axes[0]) == ["2 points without a value: planned or diverged (table: —)"]


def test_a_planned_granularity_line_at_levels_no_result_has_is_missing_on_the_axis_there():
    """A planned entry of [genus, species] where the results score kingdom, order and species: genus joins the
    axis (iNat's order: after order) and the line is missing at genus and species, not drawn at species alone."""
    planned = table_of(granularity_records()).drop_duplicates("job_id")
    waiting = planned.head(1).assign(method="byol", job_id="byol0", levels="genus,species")
    fig, data = granularity.draw(table_of(granularity_records()), pd.concat([planned, waiting], ignore_index=True))
    byol = data[data["line"] == "byol"]
    assert byol["level"].to_list() == ["genus", "species"] and byol["mean"].isna().all()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["kingdom", "order", "genus", "species"]


def test_two_planned_granularity_entries_of_one_line_are_missing_at_the_levels_of_both():
    """Two entries alike but in their levels ([kingdom] and [species], which the planner allows), neither done: the
    line is missing at both levels, not only at the first entry's."""
    planned = table_of(granularity_records()).drop_duplicates("job_id")
    waiting = [planned.head(1).assign(method="byol", job_id=f"byol{i}", levels=lv)
               for i, lv in enumerate(("kingdom", "species"))]
    fig, data = granularity.draw(table_of(granularity_records()), pd.concat([planned, *waiting], ignore_index=True))
    assert data.loc[data["line"] == "byol", "level"].to_list() == ["kingdom", "species"]


def test_quantity_breaks_the_scratch_line_at_a_planned_size_without_a_result():
    """Scratch at 1k, 3k and 10k labels planned, 3k not done: the reference line has a gap (NaN) there, not a segment
    from 1k to 10k; a dataset whose scratch jobs have no result yet has its reference row, missing."""
    planned = pd.DataFrame([{"stage": "evaluate", "method": None, "dataset": None, "size": None,
                             "corruption": None, "protocol": "scratch", "eval_dataset": "a", "labeled_sizes": ls}
                            for ls in ("1000", "3000", "10000")])
    fig, data = quantity.draw(table_of(quantity_records()), planned)
    line = _containers(fig)[("a · linear probe", quantity.SCRATCH)].lines[0]
    assert list(line.get_xdata()) == [1000.0, 3000.0, 10000.0]
    ys = list(line.get_ydata())
    assert ys[0] == pytest.approx(0.10) and math.isnan(ys[1]) and ys[2] == pytest.approx(0.20)
    gap = data[(data["role"] == "scratch") & (data["protocol"] == "linear") & (data["labeled_size"] == 3000)]
    assert len(gap) == 1 and gap["mean"].isna().all() and (gap["count"] == 0).all()
    recs = [r for r in quantity_records() if r["axes"]["protocol"] != "scratch"]
    _, data = quantity.draw(table_of(recs), planned)
    ref = data[(data["role"] == "scratch") & (data["protocol"] == "linear")]
    assert ref["labeled_size"].to_list() == [1000, 3000, 10000] and ref["mean"].isna().all()
    assert f"| a | linear | {quantity.SCRATCH} | — | — | — |" in _md(quantity.paper_table(data))


def test_quality_marks_a_bar_whose_corrupted_or_clean_cell_has_fewer_seeds_than_planned():
    recs = []
    for method, seeds in (("simclr", (0, 1, 2)), ("supervised", (0,))):
        recs += records(eval_axes(method=method), {(10000, None): 0.5}, seeds=seeds)
        recs += records(eval_axes(method=method, corruption="jpeg:quality=10"), {(10000, None): 0.4},
                        seeds=(0,) if method == "simclr" else (0, 1, 2))
    table = table_of(recs)
    jobs = table.drop_duplicates("job_id")
    planned = pd.concat([jobs] + [jobs.drop_duplicates(["method", "corruption"]).assign(seed=s, job_id=f"x{s}")
                                  for s in (0, 1, 2)]).drop_duplicates(["method", "corruption", "seed"])
    _, data = quality.draw(table, planned)
    md = _md(quality.paper_table(data))
    assert "| a | a | 1M | 10k | jpeg:quality=10 | -0.103 (1/3) | -0.097 (clean 1/3) |" in md
    assert f"| a | a | 1M | 10k | {quality.CLEAN_ROW} | 0.503 ± 0.012 | 0.500 (1/3) |" in md, md  # its own note
    assert data.set_index("method")["partial_seeds"].to_dict() == {"simclr": "1/3", "supervised": "clean 1/3"}


def _knn(recs, values=None):
    """`recs` with each metric row also (or, with values={labeled_size: v}, only) a knn_top1 row."""
    out = []
    for r in recs:
        knn = [{**m, "metric": "knn_top1", "value": (values or {}).get(m["labeled_size"], m["value"] - 0.2)}
               for m in r["metrics"]]
        out.append({**r, "metrics": knn if values else [*r["metrics"], *knn]})
    return out


def test_quantity_draws_knn_results_in_a_panel_of_their_own():
    """kNN's knn_top1 (of `knn` jobs, and of linear probes with `also_knn`) was collected but drawn nowhere. It is a
    third protocol panel; where a `knn` job and an `also_knn` probe scored one encoder, the `knn` job's value."""
    recs = records(eval_axes(protocol="linear", size=50_000), {(1000, None): 0.30, (10000, None): 0.35})
    recs = _knn(recs)  # also_knn: 0.10, 0.15
    recs += _knn(records(eval_axes(protocol="knn", size=1_000_000), {(1000, None): 0.0, (10000, None): 0.0}),
                 {1000: 0.25, 10000: 0.28})
    recs += _knn(records(eval_axes(protocol="linear", size=1_000_000), {(1000, None): 0.40, (10000, None): 0.45}),
                 None)  # also_knn of the encoder the knn job scored: 0.20, 0.25, not drawn
    fig, data = quantity.draw(table_of(recs))
    got = _containers(fig)
    assert list(got[("a · kNN", "50k")].lines[0].get_ydata()) == pytest.approx([0.10, 0.15])
    assert list(got[("a · kNN", "1M")].lines[0].get_ydata()) == pytest.approx([0.25, 0.28])
    assert list(got[("a · linear probe", "1M")].lines[0].get_ydata()) == pytest.approx([0.40, 0.45])
    assert "kNN" in data.attrs["caption"]
    table = quantity.paper_table(data)
    row = table[(table["protocol"] == "knn") & (table["line"] == "1M")].iloc[0]
    assert (row["1k"], row["10k"]) == pytest.approx((0.25, 0.28))
    assert len(table[table["protocol"] == "knn"]) == 2

    planned = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 250_000,
                             "corruption": "none", "protocol": "knn", "eval_dataset": "a", "labeled_sizes": "1000"}])
    fig, data = quantity.draw(table_of(recs), planned)  # a knn job planned, no result yet: a missing point
    gap = data[(data["protocol"] == "knn") & (data["line"] == "250k")]
    assert len(gap) == 1 and gap["mean"].isna().all() and (gap["count"] == 0).all()


def test_quantity_draws_the_knn_results_of_granularity_probes_with_also_knn():
    """A granularity entry with `also_knn: true` (docs/protocol-evaluation.md: knn_top1 rows added to a linear,
    granularity or concat job, drawn in the quantity figure's kNN panel) had its kNN scores drawn nowhere, and the
    figure was skipped as having "no in-domain ... kNN top-1 results". They vote on the manifest's labels, as a
    linear probe's do: a kNN panel."""
    axes = eval_axes(protocol="granularity", dataset="inat", eval_dataset="inat", size=50_000)
    recs = records(axes, {(ls, lv): 0.5 for ls in (100, 1000) for lv in LEVELS}, protocol={"levels": LEVELS})
    recs = [{**r, "metrics": [*r["metrics"], *({"metric": "knn_top1", "value": v + (r["metrics"][0]["value"] - 0.5),
                                                "labeled_size": ls, "level": None}
                                               for ls, v in ((100, 0.20), (1000, 0.30)))]} for r in recs]
    fig, data = quantity.draw(table_of(recs))
    got = _containers(fig)
    assert list(got[("inat · kNN", "50k")].lines[0].get_ydata()) == pytest.approx([0.20, 0.30])
    assert set(data["protocol"]) == {"knn"} and "granularity probes with `also_knn`" in data.attrs["caption"]
    without = [{**r, "metrics": [m for m in r["metrics"] if m["metric"] != "knn_top1"]} for r in recs]
    with pytest.raises(NoData):  # granularity's own top-1 per level is the granularity figure's, not this one's
        quantity.draw(table_of(without))

def test_granularity_draws_the_largest_named_labeled_size_not_the_first():
    """Two named labeled sizes (the test above has 'all labels', which sorts first): the panel draws 10k's values
    under a title naming 10k, not 1k's."""
    axes = eval_axes(method="simclr", protocol="granularity", dataset="inat", eval_dataset="inat")
    values = {**{(1000, lv): 0.1 for lv in LEVELS}, **{(10000, lv): v for lv, v in zip(LEVELS, (0.9, 0.7, 0.5))}}
    fig, data = granularity.draw(table_of(records(axes, values, protocol={"levels": LEVELS})))
    got = {c.get_label(): list(c.lines[0].get_ydata()) for c in fig.axes[0].containers}
    assert got["simclr"] == pytest.approx([0.9, 0.7, 0.5])
    assert "10k" in fig.axes[0].get_title() and set(data["labeled_size"]) == {10000}


def test_granularity_merges_the_level_lists_of_two_entries_coarse_to_fine():
    """The mapped entry scores the seven iNat levels, a per-level one [kingdom, supercategory, genus, species]: the
    columns run coarse -> fine as both lists say (supercategory after the kingdom, species last), not in the records'
    order."""
    seven = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
    four = ["kingdom", "supercategory", "genus", "species"]
    axes = eval_axes(method="simclr", protocol="granularity", dataset="inat", eval_dataset="inat")
    recs = (records(axes, {(None, lv): 0.9 - 0.1 * i for i, lv in enumerate(seven)}, protocol={"levels": seven})
            + records({**axes, "variant": "per_level"}, {(None, lv): 0.5 for lv in four},
                      protocol={"levels": four, "granularity_mode": "per_level"}))
    fig, data = granularity.draw(table_of(recs))
    order = ["kingdom", "supercategory", *seven[1:]]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == order
    assert list(granularity.paper_table(data).columns) == ["eval_dataset", "labeled_size", "line", *order]


def test_a_granularity_line_joins_the_levels_its_entry_asked_and_counts_no_other_missing():
    """The mapped entry scores all seven levels, a per-level one [kingdom, family, species]: that line joins its three
    points (not three lone markers between gaps), no panel note calls the four levels it never asked "planned or
    diverged", and its table row leaves them blank (not '—'); a diverged level it asked is still counted."""
    seven = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
    three = ["kingdom", "family", "species"]
    axes = eval_axes(method="simclr", protocol="granularity", dataset="inat", eval_dataset="inat")
    mapped = records(axes, {(None, lv): 0.9 - 0.1 * i for i, lv in enumerate(seven)}, protocol={"levels": seven})
    per_level = records({**axes, "variant": "per_level"}, {(None, lv): v for lv, v in zip(three, (0.95, 0.6, 0.4))},
                        protocol={"levels": three, "granularity_mode": "per_level"})
    fig, data = granularity.draw(table_of(mapped + per_level))
    line = {c.get_label(): c.lines[0] for c in fig.axes[0].containers}["simclr · per_level"]
    assert list(line.get_xdata()) == [0, 4, 6] and list(line.get_ydata()) == pytest.approx([0.95, 0.6, 0.4])
    assert _texts(fig.axes[0]) == []
    row = data[data["line"] == "simclr · per_level"]
    assert list(row["level"]) == three
    table = granularity.paper_table(data)
    shown = display_rows(table, "—")[list(table["line"]).index("simclr · per_level")]
    phylum, family = (shown[table.columns.get_loc(lv)] for lv in ("phylum", "family"))
    assert phylum == "" and family.startswith("0.600")
    for r in per_level:  # family diverged: a point its entry asked, without a value
        r["metrics"] = [{**m, "value": None} if m["level"] == "family" else m for m in r["metrics"]]
    fig, _ = granularity.draw(table_of(mapped + per_level))
    assert _texts(fig.axes[0]) == ["1 point without a value: planned or diverged (table: —)"]


def test_granularity_orders_levels_as_inat_does_when_records_list_none():
    """Records without the protocol's `levels`: iNat21's order, coarse to fine, not the order the records list."""
    recs = records(eval_axes(method="simclr", protocol="granularity", dataset="inat", eval_dataset="inat"),
                   {(None, "species"): 0.5, (None, "genus"): 0.6, (None, "kingdom"): 0.9})
    fig, _ = granularity.draw(table_of(recs))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["kingdom", "genus", "species"]
    got = [list(c.lines[0].get_ydata()) for c in fig.axes[0].containers]
    assert got == [pytest.approx([0.9, 0.6, 0.5])]


def test_domain_matrix_draws_the_largest_labeled_size_the_cells_share():
    recs = []
    for ds, ev, v in (("a", "a", 0.45), ("b", "a", 0.25), ("a", "b", 0.35), ("b", "b", 0.55)):
        recs += records(eval_axes(dataset=ds, eval_dataset=ev), {(1000, None): v - 0.2, (10000, None): v})
    fig, data = domain_matrix.draw(table_of(recs))
    assert set(data["labeled_size"].dropna()) == {10000}
    assert np.asarray(fig.axes[0].collections[0].get_array()).reshape(2, 2) == pytest.approx(
        np.array([[0.45, 0.35], [0.25, 0.55]]))
    assert "labeled size 10k" in data.attrs["caption"]


def test_domain_matrix_without_a_shared_labeled_size_draws_each_evaluation_datasets_largest():
    """a is probed at 1k and 10k labels, b at 5k only: no labeled size common to both, so each evaluation dataset's
    cells are at its own largest (a: 10k, not 1k), and the caption says so."""
    recs = []
    for ds, ev, v in (("a", "a", 0.45), ("b", "a", 0.25)):
        recs += records(eval_axes(dataset=ds, eval_dataset=ev), {(1000, None): v - 0.2, (10000, None): v})
    for ds, ev, v in (("a", "b", 0.35), ("b", "b", 0.55)):
        recs += records(eval_axes(dataset=ds, eval_dataset=ev), {(5000, None): v})
    _, data = domain_matrix.draw(table_of(recs))
    cell = data.set_index(["dataset", "eval_dataset"])
    assert cell["labeled_size"].to_dict() == {("a", "a"): 10000, ("b", "a"): 10000, ("a", "b"): 5000,
                                              ("b", "b"): 5000}
    assert cell["mean"].to_dict() == pytest.approx({("a", "a"): 0.45, ("a", "b"): 0.35, ("b", "a"): 0.25,
                                                    ("b", "b"): 0.55})
    assert "largest labeled size of each evaluation dataset" in data.attrs["caption"]


def test_a_planned_cell_of_several_seeds_without_a_result_is_one_missing_bar():
    """A pooled set and a concatenation planned at two seeds, neither with a result yet: one missing bar each (the
    plan's jobs are seeds of one cell), not one bar (and one table cell drawn twice) per planned seed."""
    recs = [r for r in domain_records()
            if not (r["axes"]["dataset"] == "a+b" and r["axes"]["eval_dataset"] == "a")
            and r["axes"]["protocol"] != "concat"]
    planned = pd.DataFrame([{"job_id": f"{j}{seed}", "stage": "evaluate", "method": "simclr", "dataset": ds,
                             "size": 1_000_000, "corruption": "none", "seed": seed, "protocol": proto,
                             "eval_dataset": "a", "labeled_sizes": "10000"}
                            for j, ds, proto in (("pool", "a+b", "linear"), ("conc", "a|b", "concat"))
                            for seed in (0, 1)])
    table = table_of(recs)
    _, data = domain_pooling.draw(table, planned)
    pooled = data[(data["eval_dataset"] == "a") & (data["kind"] == "pooled")]
    assert len(pooled) == 1 and pooled["mean"].isna().all()
    assert "duplicates" not in domain_pooling.paper_table(data).attrs
    _, data = domain_concat.draw(table, planned)
    assert data["role"].to_list() == list(domain_concat.ROLES)


def test_domain_concat_has_no_gain_over_the_better_single_encoder_while_one_is_missing():
    """The second encoder's probe (b -> a) has no result: which single encoder is the better is unknown, so the gain
    over it is missing, not the gain over the one encoder that is done; the gain over the in-domain one stands."""
    recs = [r for r in domain_records() if not (r["axes"]["dataset"] == "b" and r["axes"]["eval_dataset"] == "a")]
    fig, data = domain_concat.draw(table_of(recs))
    assert math.isnan(_bars(fig.axes[0])["second encoder"][0])
    row = domain_concat.paper_table(data).iloc[0]
    assert math.isnan(row["gain over better single"]) and row["gain over in-domain"] == pytest.approx(0.03)


def test_domain_concat_leaves_blank_a_single_encoder_the_grid_never_probes():
    """A grid that concatenates a|b on a but has no linear job of b's encoder on a (the paper grid's "supervised
    alone" entry left out, or a `--where` part without it): that bar and table cell are blank, as a cell never
    planned, not "missing" (a planned cell without a result yet, which missing.csv would list); so is the gain over
    the better single encoder. A planned one without a result still reads missing."""
    recs = [r for r in domain_records() if not (r["axes"]["dataset"] == "b" and r["axes"]["eval_dataset"] == "a")]
    table = table_of(recs)
    planned = pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"], "labeled_sizes": "10000"}
                            for r in recs])
    fig, data = domain_concat.draw(table, planned)
    assert [t.get_text() for t in fig.axes[0].texts].count("missing") == 0
    assert "blank: a single encoder the grid never probes there" in data.attrs["caption"]
    def shown(data):  # first, second, concatenated, the two gains; means (two seeds: "mean ± std")
        return [c.split(" ± ")[0] for c in display_rows(domain_concat.paper_table(data), "—")[0][2:]]

    assert shown(data) == ["0.450", "", "0.480", "", "0.030"]
    b_on_a = pd.DataFrame([{"job_id": "ba", "stage": "evaluate", **eval_axes(dataset="b"), "labeled_sizes": "10000"}])
    fig, data = domain_concat.draw(table, pd.concat([planned, b_on_a], ignore_index=True))
    assert [t.get_text() for t in fig.axes[0].texts].count("missing") == 1
    assert shown(data) == ["0.450", "—", "0.480", "—", "0.030"]


def test_domain_concat_reads_a_single_encoders_plan_at_all_labels_and_of_clean_images_only():
    """A concatenation at every label (`all`: a null labeled size) whose second encoder has no result: a plan of
    that encoder's probe at "10000,all" has its cell (missing; comparing 10000 with the null raised), one at 10000
    only has none (blank); so has one of its corrupted pretraining only, which its bar never draws."""
    recs = [r for ds, v in (("a", 0.45), ("b", 0.25))
            for r in records(eval_axes(dataset=ds), {(None, None): v, (10000, None): v - 0.1})]
    recs += records(eval_axes(dataset="a|b", protocol="concat"), {(None, None): 0.48, (10000, None): 0.38})
    recs = [r for r in recs if r["axes"]["dataset"] != "b"]
    planned = pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"], "labeled_sizes": "10000,all"}
                            for r in recs])

    def second(b_on_a):
        _, data = domain_concat.draw(table_of(recs), pd.concat([planned, pd.DataFrame(
            [{"job_id": "ba", "stage": "evaluate", **b_on_a}])], ignore_index=True))
        return data[data["role"] == "second encoder"]["planned"].tolist()

    assert second({**eval_axes(dataset="b"), "labeled_sizes": "10000,all"}) == [True]
    assert second({**eval_axes(dataset="b"), "labeled_sizes": "10000"}) == [False]
    assert second({**eval_axes(dataset="b", corruption="jpeg:quality=10"), "labeled_sizes": "10000,all"}) == [False]
    # results record `all` by its count (the train manifest's): a concatenation at 10000 recorded so, beside a probe
    # planned at `all` that has not run, is missing, not never planned
    recs = [r for r in recs if r["axes"]["protocol"] == "concat" or r["axes"]["dataset"] == "a"]
    for r in recs:
        r["metrics"] = [m for m in r["metrics"] if m["labeled_size"] is not None]
    assert second({**eval_axes(dataset="b"), "labeled_sizes": "all"}) == [True]
    assert second({**eval_axes(dataset="b"), "labeled_sizes": "1000"}) == [False]


def _also_at_1k_labels(recs, share=0.5):
    """`recs` with each metric also at 1k labels, at `share` of its value (a smaller labeled size scores less)."""
    return [{**r, "metrics": [*r["metrics"], *({**m, "labeled_size": 1000, "value": m["value"] * share}
                                              for m in r["metrics"])]} for r in recs]


def test_domain_and_quality_bars_compare_cells_at_the_largest_labeled_size():
    """Probes at 1k and 10k labels: every bar is a 10k cell, the single encoders and in-domain references as much as
    the concatenation and the pooled sets, and each corrupted cell is compared with the clean one at 10k, not with
    the first labeled size met."""
    table = table_of(_also_at_1k_labels(domain_records()))
    fig, _ = domain_concat.draw(table)
    assert {k: v[0] for k, v in _bars(fig.axes[0]).items()} == pytest.approx(
        {"first encoder": 0.45, "second encoder": 0.25, "concatenated": 0.48})
    fig, _ = domain_pooling.draw(table)
    bars = _bars(fig.axes[0])
    assert bars["in-domain 1M"] == pytest.approx([0.45, 0.55]) and bars["pooled a+b 1M"] == pytest.approx([0.40, 0.50])
    fig, data = quality.draw(table_of(_also_at_1k_labels(quality_records())))
    bars = _bars(fig.axes[0])
    assert bars["simclr"] == pytest.approx([-0.15]) and bars["supervised"] == pytest.approx([-0.05])
    assert set(data["labeled_size"]) == {10000}
    assert data.set_index("method")["clean_mean"].to_dict() == pytest.approx({"simclr": 0.45, "supervised": 0.70})


def test_domain_matrix_at_two_sizes_of_as_many_cells_draws_the_larger():
    """The whole 2x2 matrix at 500k and at 1M: the larger pretraining size (ties: the larger), with a plan as without
    one."""
    recs = []
    for size, bump in ((500_000, -0.1), (1_000_000, 0.0)):
        for ds, ev, v in (("a", "a", 0.45), ("b", "a", 0.25), ("a", "b", 0.35), ("b", "b", 0.55)):
            recs += records(eval_axes(dataset=ds, eval_dataset=ev, size=size), {(10000, None): v + bump})
    table = table_of(recs)
    for planned in (None, table.drop_duplicates("job_id")):
        fig, data = domain_matrix.draw(table, planned)
        assert "pretraining size 1M" in data.attrs["caption"]
        assert np.asarray(fig.axes[0].collections[0].get_array()).reshape(2, 2) == pytest.approx(
            np.array([[0.45, 0.35], [0.25, 0.55]]))


def test_domain_pooling_shows_in_domain_at_the_share_of_each_of_three_sets():
    """A pool of three sets at 900k holds 300k of each: in-domain 300k is drawn beside it (it was run), as is 900k."""
    recs = records(eval_axes(dataset="a+b+c", size=900_000), {(10000, None): 0.40})
    recs += records(eval_axes(size=300_000), {(10000, None): 0.35})
    recs += records(eval_axes(size=900_000), {(10000, None): 0.45})
    fig, _ = domain_pooling.draw(table_of(recs))
    bars = _bars(fig.axes[0])
    assert bars["in-domain 300k"] == pytest.approx([0.35]) and bars["in-domain 900k"] == pytest.approx([0.45])
    assert bars["pooled a+b+c 900k"] == pytest.approx([0.40])


def test_quality_leaves_a_corruption_planned_at_another_pretraining_size_out_of_this_panel():
    """JPEG is planned at 50k only: a missing bar in the 50k panel, none in the 1M panel (never planned there)."""
    recs = []
    for size in (50_000, 1_000_000):
        recs += records(eval_axes(size=size), {(10000, None): 0.45})
        recs += records(eval_axes(size=size, corruption="downsample:factor=2"), {(10000, None): 0.30})
    table = table_of(recs)
    jobs = table.drop_duplicates("job_id")
    jpeg = jobs[(jobs["size"] == 50_000) & (jobs["corruption"] != "none")].assign(
        corruption="jpeg:quality=10", job_id=lambda f: f["job_id"] + "j")
    fig, data = quality.draw(table, pd.concat([jobs, jpeg], ignore_index=True))
    panels = {int(size): sorted(set(g["corruption"])) for size, g in data.groupby("size")}
    assert panels == {50_000: ["downsample:factor=2", "jpeg:quality=10"], 1_000_000: ["downsample:factor=2"]}
    assert sum(t.get_text() == "missing" for ax in fig.axes for t in ax.texts) == 1


def test_granularity_error_bars_are_the_std_over_seeds():
    """The caption promises error bars of the standard deviation over seeds: each point's bar spans mean ± std."""
    fig, _ = granularity.draw(table_of(granularity_records()))
    for c in fig.axes[0].containers:
        assert c.has_yerr, c.get_label()
        spans = [s[1][1] - s[0][1] for s in c.lines[2][0].get_segments()]
        assert spans == pytest.approx([2 * STD] * len(LEVELS))


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _planned_at_three_labeled_sizes(protocol: str) -> pd.DataFrame:
    """The plan's rows of simclr on a at 1M probed by `protocol` at 1k, 3k and 10k labels (quantity_records has
    results at 1k and 10k: one planned point without a value)."""
    return pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 1_000_000,
                          "corruption": "none", "protocol": protocol, "eval_dataset": "a", "labeled_sizes": ls}
                         for ls in ("1000", "3000", "10000")])


def test_quantity_and_granularity_panels_count_their_planned_points_without_a_value():
    """A planned point without a result is only a gap in a line (or, a line with none, nothing drawn): each panel
    says how many it has, so that a figure read alone does not pass for the whole grid."""
    fig, _ = quantity.draw(table_of(quantity_records()), _planned_at_three_labeled_sizes("finetune"))
    panels = {ax.get_title(): _texts(ax) for ax in fig.axes}
    assert panels["a · fine-tuning"] == ["1 point without a value: planned or diverged (table: —)"]
    assert panels["a · linear probe"] == []  # every planned point there has a value
    planned = table_of(granularity_records()).drop_duplicates("job_id")
    planned = pd.concat([planned, planned.head(1).assign(method="byol", job_id="byol0")], ignore_index=True)
    fig, _ = granularity.draw(table_of(granularity_records()), planned)
    assert _texts(fig.axes[0]) == [f"{len(LEVELS)} points without a value: planned or diverged (table: —)"]


def test_a_quantity_panel_counts_its_own_points_without_a_value_not_an_earlier_panels():
    fig, _ = quantity.draw(table_of(quantity_records()), _planned_at_three_labeled_sizes("linear"))
    panels = {ax.get_title(): _texts(ax) for ax in fig.axes}
    assert panels["a · linear probe"] == ["1 point without a value: planned or diverged (table: —)"]
    assert panels["a · fine-tuning"] == []
    # where a rising curve leaves room: the lower right (granularity's falling curves: the upper right)
    (note,) = fig.axes[0].texts
    assert note.get_position()[1] < 0.5 and note.get_va() == "bottom"
    gran = table_of(granularity_records())
    planned = pd.concat([gran.drop_duplicates("job_id"), gran.head(1).assign(method="byol", job_id="b0")])
    (note,) = granularity.draw(gran, planned)[0].axes[0].texts
    assert note.get_position()[1] > 0.5 and note.get_va() == "top"


def test_levels_order_keeps_a_level_that_neither_the_protocol_nor_inat_orders():
    from study.report.figures.common import levels_order
    table = pd.DataFrame({"level": ["supercategory", "species", "genus"]})
    assert levels_order(table, table["level"]) == ["genus", "species", "supercategory"]


def test_a_new_corruption_is_named_by_the_label_its_own_file_registers():
    """Adding a corruption is one new file: its figure name comes with it (else the spec's spelling)."""
    from study.corruptions.base import CORRUPTIONS, Corruption, Param, register

    register(Corruption("blur_example", {"sigma": Param(1.5, float), "size": Param(5, int)}, lambda i, p, r: i,
                        label=("sigma", "Gaussian blur sigma {}".format)))
    register(Corruption("plain_example", {"level": Param(2, int)}, lambda i, p, r: i))
    try:
        assert [quality.corruption_label(c) for c in ("blur_example:sigma=3.0", "blur_example:sigma=3.0,size=7",
                                                      "plain_example:level=3")] \
            == ["Gaussian blur sigma 3.0", "Gaussian blur sigma 3.0 (size=7)", "plain_example:level=3"]
    finally:
        CORRUPTIONS.unregister("blur_example")
        CORRUPTIONS.unregister("plain_example")


@pytest.mark.parametrize("module, recs", [(quantity, quantity_records), (domain_matrix, domain_records),
                                          (domain_pooling, domain_records), (domain_concat, domain_records),
                                          (quality, quality_records), (granularity, granularity_records)])
def test_every_caption_says_its_values_are_means_over_how_many_seeds(module, recs):
    """A figure draws the mean of each cell's seeds: its caption says so and over how many, as the tables' '±'
    and (k/n) do."""
    _, data = module.draw(table_of(recs()))
    assert "means over 2 seeds per cell" in data.attrs["caption"]
    one_seed = [r for r in recs() if r["axes"]["seed"] == 0]
    _, data = module.draw(table_of(one_seed))
    assert "one seed per cell (no error bars)" in data.attrs["caption"]


@pytest.mark.parametrize("module, recs", [(quantity, quantity_records), (domain_matrix, domain_records),
                                          (domain_pooling, domain_records), (domain_concat, domain_records),
                                          (quality, quality_records), (granularity, granularity_records)])
def test_a_caption_of_one_seed_per_cell_describes_no_error_bars(module, recs):
    """With one seed per cell no bar is drawn and no '±' tabled: the caption does not go on to say what they are."""
    _, data = module.draw(table_of(recs()))
    assert "error bars: " in data.attrs["caption"] or "adds ±" in data.attrs["caption"]
    _, data = module.draw(table_of([r for r in recs() if r["axes"]["seed"] == 0]))
    assert "error bars: " not in data.attrs["caption"] and "±" not in data.attrs["caption"]


def test_domain_pooling_names_the_method_only_where_the_pooled_sets_differ_in_it():
    """Every pooled set is SimCLR's: the bars are not suffixed " · simclr" because a supervised encoder is probed
    elsewhere in the grid (the one a concatenation pairs with)."""
    recs = domain_records() + records(eval_axes(method="supervised", dataset="a", eval_dataset="b"),
                                      {(10000, None): 0.3})
    fig, data = domain_pooling.draw(table_of(recs))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["in-domain 1M", "pooled a+b 1M"]
    recs += records(eval_axes(method="supervised", dataset="a+b", eval_dataset="a"), {(10000, None): 0.6})
    fig, data = domain_pooling.draw(table_of(recs))
    assert "pooled a+b 1M · supervised" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_quality_names_each_corruption_as_the_paper_does_and_the_table_keeps_the_grids_spelling():
    """The figure's ticks read "downsample 2x", "JPEG quality 10", "salt & pepper 10%" (not salt_pepper:fraction=0.1),
    a parameter off its default in parentheses so that two corruptions never share a name; the table keeps the
    grid's spelling, which names the manifest (`study manifest corrupt`)."""
    assert [quality.corruption_label(c) for c in ("downsample:factor=4", "jpeg:quality=10", "salt_pepper:fraction=0.1",
                                                  "downsample:factor=2,interpolation=nearest", "not a corruption")] \
        == ["downsample 4x", "JPEG quality 10", "salt & pepper 10%", "downsample 2x (interpolation=nearest)",
            "not a corruption"]
    fig, data = quality.draw(table_of(quality_records()))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["downsample 2x"]
    assert list(quality.paper_table(data)["corruption"]) == [quality.CLEAN_ROW, "downsample:factor=2"]


@pytest.mark.parametrize("module, recs", [(quantity, quantity_records), (domain_matrix, domain_records),
                                          (domain_pooling, domain_records), (domain_concat, domain_records),
                                          (quality, quality_records), (granularity, granularity_records)])
def test_every_figure_draws_top1_not_the_top5_recorded_beside_it(module, recs):
    """An evaluation records top5 beside top1 at each labeled size and level (study.evaluate.run): the figures draw
    top-1 alone, and the top-5 rows change no point, bar or table cell."""
    with_top5 = [{**r, "metrics": r["metrics"] + [{**m, "metric": "top5", "value": min(1.0, m["value"] + 0.2)}
                                                  for m in r["metrics"]]} for r in recs()]
    _, want = module.draw(table_of(recs()))
    _, got = module.draw(table_of(with_top5))
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(module.paper_table(got), module.paper_table(want))


def test_a_cell_whose_every_seed_diverged_is_missing_not_partial():
    """`cells`' partial_seeds is "k/n" only where 0 < k < n: a cell whose planned seeds all diverged (no value) is a
    missing cell, not "0/2"; one with a value in one of its two planned seeds is "1/2"."""
    recs = records(eval_axes(), {(1000, None): 0.3, (10000, None): 0.4})
    recs[0]["metrics"][0]["value"] = None  # seed 0 diverged at 1000 labels
    for r in recs:
        r["metrics"][1]["value"] = None  # both seeds at 10000
    table = table_of(recs)
    plan = table.drop_duplicates("job_id").drop(columns=["labeled_size", "level", "metric", "value"])  # a job a row
    got = cells(table, expected=plan).set_index("labeled_size")
    assert (got.loc[1000, "count"], got.loc[1000, "partial_seeds"]) == (1, "1/2")
    assert got.loc[10000, "count"] == 0 and pd.isna(got.loc[10000, "partial_seeds"])


def test_quality_takes_a_clean_entry_without_a_corruption_axis_as_the_clean_baseline():
    """A grid whose clean entry has no `corruption` axis, beside a corruption sweep: its cells are the clean baseline
    ('none') that each corrupted bar is compared with, not a corruption of their own."""
    recs = [r if r["axes"]["corruption"] != "none" else
            {**r, "axes": {k: v for k, v in r["axes"].items() if k != "corruption"}} for r in quality_records()]
    _, data = quality.draw(table_of(recs))
    assert list(data["corruption"]) == ["downsample:factor=2"] * 2
    assert dict(zip(data["method"], data["delta"])) == pytest.approx({"simclr": -0.15, "supervised": -0.05})


def test_an_entrys_variant_names_its_lines_while_every_result_so_far_has_it():
    """The lines of an evaluate entry with a `variant` are "<method> · <variant>" from its first result on, not only
    once a result of another entry shows beside them (a line's name does not change while a grid runs)."""
    per_level = [{**r, "axes": {**r["axes"], "variant": "per_level"}} for r in granularity_records()]
    fig, _ = granularity.draw(table_of(per_level))
    assert {c.get_label() for c in fig.axes[0].containers} == {"simclr · per_level", "supervised · per_level"}


def test_a_caption_counts_the_seeds_of_the_cells_with_a_value_only():
    """A planned point without a result (count 0) is no cell "over 0 seeds": the caption counts the seeds of the
    cells with a value."""
    planned = pd.DataFrame([{"stage": "evaluate", "method": "simclr", "dataset": "a", "size": 1_000_000,
                             "corruption": "none", "protocol": "finetune", "eval_dataset": "a",
                             "labeled_sizes": "1000,3000,10000"}])
    _, data = quantity.draw(table_of(quantity_records()), planned)
    assert (data["count"] == 0).sum() == 1
    assert "means over 2 seeds per cell" in data.attrs["caption"]


def test_quantity_table_orders_labeled_sizes_by_size_not_as_first_met():
    """The first line drawn has 10k labels only, the next 1k and 10k: the table's columns still run 1k, 10k."""
    recs = records(eval_axes(size=50_000), {(10000, None): 0.35})
    recs += records(eval_axes(size=1_000_000), {(1000, None): 0.40, (10000, None): 0.45})
    _, data = quantity.draw(table_of(recs))
    assert list(data["line"].drop_duplicates()) == ["50k", "1M"]
    assert list(quantity.paper_table(data).columns) == ["eval_dataset", "protocol", "line", "1k", "10k"]


def test_domain_matrix_without_a_plan_shows_every_cell_without_a_result_as_no_result():
    """Without a plan nothing says which cells the grid holds: a matrix cell without a result is '—' in the table, as
    the heatmap marks it 'no result' (not 'missing', which the caption says is planned), not left out as never
    planned."""
    recs = [r for r in domain_records() if (r["axes"]["dataset"], r["axes"]["eval_dataset"]) != ("b", "a")]
    fig, data = domain_matrix.draw(table_of(recs))
    assert data["planned"].all()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("no result") == 1 and "missing" not in texts
    assert "'no result': none in these results" in data.attrs["caption"] and "'missing'" not in data.attrs["caption"]
    table = domain_matrix.paper_table(data).set_index("dataset")
    assert math.isnan(table.loc["b", "a"]) and table.loc["b", "b"] == pytest.approx(0.55)


def test_domain_matrix_leaves_a_cell_planned_at_another_pretraining_size_blank():
    """The matrix is drawn at the plan's 1M; b -> b is planned at 50k only: at 1M it is not in the grid (blank), not
    a missing cell."""
    recs = [r for r in domain_records() if r["axes"]["protocol"] == "linear" and "+" not in r["axes"]["dataset"]
            and (r["axes"]["dataset"], r["axes"]["eval_dataset"]) != ("b", "b")]
    planned = pd.DataFrame([{"job_id": f"{d}{e}{s}", "stage": "evaluate", "method": "simclr", "dataset": d, "size": s,
                             "corruption": "none", "protocol": "linear", "eval_dataset": e}
                            for d, e, s in (("a", "a", 1_000_000), ("a", "b", 1_000_000), ("b", "a", 1_000_000),
                                            ("b", "b", 50_000))])
    _, data = domain_matrix.draw(table_of(recs), planned)
    cell = data.set_index(["dataset", "eval_dataset"])
    assert set(cell["size"].dropna()) == {1_000_000}
    assert not bool(cell.loc[("b", "b"), "planned"]) and bool(cell.loc[("b", "a"), "planned"])


def test_a_layout_long_labels_leave_no_room_for_draws_without_a_warning():
    """matplotlib's "Tight layout not applied" is noise in a report (figures are saved with bbox tight): the
    figures' layout call stays quiet where the bare call warns."""
    import warnings

    import matplotlib.pyplot as plt

    from study.report import style

    def crowded():
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.set_xticks(range(3), ["an evaluation dataset name\nwith a pair of encoders " * 3] * 3)
        ax.set_ylabel("y " * 80)
        return fig

    fig = crowded()
    with pytest.warns(UserWarning, match="Tight layout not applied"):
        fig.tight_layout()
    fig2 = crowded()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        style.tight_layout(fig2)
    plt.close(fig)
    plt.close(fig2)


@pytest.mark.parametrize("module, recs", [(quality, quality_records), (granularity, granularity_records),
                                          (domain_matrix, domain_records)])
def test_a_figure_whose_planned_cells_have_no_result_yet_says_so_not_that_the_grid_lacks_them(module, recs):
    """While a grid still runs, the report's note of a figure whose planned jobs have not finished points to
    missing.csv, rather than reading as if the grid had no such jobs ("... in this grid")."""
    planned = table_of(recs()).drop_duplicates("job_id")
    done = table_of(quantity_records())  # in-domain results of dataset a only
    with pytest.raises(NoData, match=r"planned .*\(missing\.csv\)") as e:
        module.draw(done, planned)
    assert "in this grid" not in str(e.value)
    with pytest.raises(NoData, match="in this grid|at least two"):
        module.draw(done)  # without a plan nothing says they were planned


def test_domain_matrix_orders_its_panels_as_the_other_figures_order_methods():
    """SimCLR's panel first (common.METHOD_ORDER, as quantity and quality order them), not byol's by name."""
    recs = [r for r in domain_records() if r["axes"]["protocol"] == "linear" and "+" not in r["axes"]["dataset"]]
    recs += [{**r, "job_id": r["job_id"] + "b", "axes": {**r["axes"], "method": "byol"}} for r in recs]
    fig, data = domain_matrix.draw(table_of(recs))
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["simclr", "byol"]
    assert list(dict.fromkeys(domain_matrix.paper_table(data)["method"])) == ["simclr", "byol"]


def test_every_figure_title_names_the_papers_figure_or_table_it_redraws():
    """A reader of index.html sees which of the paper's figures or tables a section redraws (README's table), in the
    heading and the contents."""
    import re

    from study.report import curves
    from study.report.figures import FIGURES

    for module in FIGURES:
        assert re.search(r"\(paper: [^)]*\b(Fig\.|Table) \d", module.TITLE), module.NAME
    assert "not in the paper" in curves.TITLE


def test_domain_matrix_counts_the_whole_dataset_as_a_size():
    """Encoders of each whole dataset (size null) probed across domains, and a's 50k and 1M in-domain only: the
    matrix is the whole datasets' 2x2, not a's largest numeric size alone (b's row dropped)."""
    recs = [r for ds, ev, v in (("a", "a", 0.45), ("a", "b", 0.35), ("b", "a", 0.25), ("b", "b", 0.55))
            for r in records(eval_axes(dataset=ds, eval_dataset=ev, size=None), {(10000, None): v})]
    recs += records(eval_axes(size=50_000), {(10000, None): 0.3}) + records(eval_axes(), {(10000, None): 0.4})
    for planned in (None, pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"]} for r in recs])):
        _, data = domain_matrix.draw(table_of(recs), planned)
        cell = data.set_index(["dataset", "eval_dataset"])["mean"]
        assert cell.to_dict() == pytest.approx({("a", "a"): 0.45, ("a", "b"): 0.35, ("b", "a"): 0.25,
                                                ("b", "b"): 0.55})
        assert "whole training set" in data.attrs["caption"]


def test_a_missing_bar_below_zero_is_marked_inside_the_axes():
    """The quality figure's bars hang below 0 (changes from clean): a 'missing' bar's mark runs down from 0, inside
    the axes, not up over the panel's title; bars above 0 (domain_concat) keep it running up."""
    recs = [r for r in quality_records() if not (r["axes"]["method"] == "supervised"
                                                 and r["axes"]["corruption"] == "none")]
    fig, _ = quality.draw(table_of(recs))
    ax = fig.axes[0]
    [mark] = [t for t in ax.texts if t.get_text() == "missing"]
    assert mark.get_va() == "top" and ax.get_ylim()[1] < 0.05
    recs = [r for r in domain_records() if r["axes"]["protocol"] != "concat"]  # a concatenation of no single cell
    fig, _ = domain_concat.draw(table_of(recs + records(eval_axes(dataset="a|b", protocol="concat", eval_dataset="b",
                                                                  size=50_000), {(10000, None): 0.5})))
    marks = [t.get_va() for t in fig.axes[0].texts if t.get_text() == "missing"]
    assert marks and set(marks) == {"bottom"}


def test_a_missing_bar_at_the_edge_is_marked_inside_the_axes_x_limits():
    """A bar without a value sets no x limit: the last (corruption, method) bar still running (supervised under
    downsampling) had its slot and its 'missing' mark past the panel's right edge, over the legend; a panel whose
    every bar is missing (the clean jobs not run yet) had both marks outside a panel 0.1 wide. Every slot lies inside
    the x limits; a figure whose bars all have values keeps its limits."""
    def planned_for(corruptions):
        return pd.DataFrame([{"stage": "evaluate", "method": m, "dataset": "a", "size": 1_000_000, "corruption": c,
                              "protocol": "linear", "eval_dataset": "a", "labeled_sizes": "10000"}
                             for m in ("simclr", "supervised") for c in corruptions])

    recs = []
    for m in ("simclr", "supervised"):
        recs += records(eval_axes(method=m), {(10000, None): 0.5}, seeds=(0,))
        recs += records(eval_axes(method=m, corruption="jpeg:quality=10"), {(10000, None): 0.4}, seeds=(0,))
    done = recs + records(eval_axes(method="simclr", corruption="downsample:factor=2"), {(10000, None): 0.45},
                          seeds=(0,))
    fig, _ = quality.draw(table_of(done), planned_for(("none", "jpeg:quality=10", "downsample:factor=2")))
    ax = fig.axes[0]
    [mark] = [t for t in ax.texts if t.get_text() == "missing"]
    low, high = ax.get_xlim()
    assert mark.get_position()[0] == pytest.approx(1.2) and low < -0.4 and high > 1.4, (mark.get_position(), low, high)
    full = done + records(eval_axes(method="supervised", corruption="downsample:factor=2"), {(10000, None): 0.45},
                          seeds=(0,))
    fig_full, _ = quality.draw(table_of(full), planned_for(("none", "jpeg:quality=10", "downsample:factor=2")))
    assert fig_full.axes[0].get_xlim() == pytest.approx((low, high))  # the same limits once it is done

    alone = [r for r in recs if r["axes"]["corruption"] != "none"]  # the clean jobs planned, not run yet
    fig, _ = quality.draw(table_of(alone), planned_for(("none", "jpeg:quality=10")))
    ax = fig.axes[0]
    xs = [t.get_position()[0] for t in ax.texts if t.get_text() == "missing"]
    low, high = ax.get_xlim()
    assert xs == pytest.approx([-0.2, 0.2]) and low < -0.4 and high > 0.4, (xs, low, high)


def test_quality_and_granularity_colour_a_method_alike_and_list_simclr_first():
    """A reader matches SimCLR and supervised across figures by colour: a method has one colour whichever other
    methods a figure draws (granularity's BYOL beside them); granularity lists methods as the others do."""
    fig_q, _ = quality.draw(table_of(quality_records()))
    bars = {c.get_label(): c.patches[0].get_facecolor() for c in fig_q.axes[0].containers
            if isinstance(c, BarContainer)}
    byol = [{**r, "job_id": r["job_id"] + "b", "axes": {**r["axes"], "method": "byol"}}
            for r in granularity_records() if r["axes"]["method"] == "simclr"]
    fig_g, _ = granularity.draw(table_of(granularity_records() + byol))
    lines = {c.get_label(): c.lines[0].get_color() for c in fig_g.axes[0].containers}
    assert [t.get_text() for t in fig_g.axes[0].get_legend().get_texts()] == ["simclr", "supervised", "byol"]
    for method in ("simclr", "supervised"):
        assert bars[method][:3] == pytest.approx(tuple(lines[method])[:3])
    assert len({tuple(c) for c in lines.values()}) == 3


def test_granularity_marks_the_pretraining_size_by_line_style_alike_for_every_method():
    """SimCLR and supervised at 1M and 500k: colour and marker tell the method, the dash the size, the same dash for
    both methods' 500k lines (it went by the line's index: supervised 500k looked like SimCLR 1M's dash)."""
    half = [{**r, "job_id": r["job_id"] + "h", "axes": {**r["axes"], "size": 500_000}} for r in granularity_records()]
    fig, _ = granularity.draw(table_of(granularity_records() + half))
    look = {c.get_label(): c.lines[0] for c in fig.axes[0].containers}
    assert sorted(look) == ["simclr 1M", "simclr 500k", "supervised 1M", "supervised 500k"], sorted(look)
    for size in ("1M", "500k"):
        assert look[f"simclr {size}"].get_linestyle() == look[f"supervised {size}"].get_linestyle()
        assert look[f"simclr {size}"].get_marker() != look[f"supervised {size}"].get_marker()
    assert look["simclr 1M"].get_linestyle() != look["simclr 500k"].get_linestyle()
    assert look["simclr 1M"].get_color() == look["simclr 500k"].get_color()


def test_quantity_at_one_size_colours_each_method_as_quality_does():
    """The quality grid's report draws quantity (SimCLR and supervised, at 1M) beside quality: a method has one colour
    in both (it had the line palette's own: SimCLR teal in one figure, navy in the other)."""
    recs = quality_records()
    fig_q, _ = quality.draw(table_of(recs))
    bars = {c.get_label(): tuple(c.patches[0].get_facecolor()[:3]) for c in fig_q.axes[0].containers
            if isinstance(c, BarContainer)}
    fig, _ = quantity.draw(table_of(recs))
    lines = {label: tuple(matplotlib.colors.to_rgb(c.lines[0].get_color()))
             for (_, label), c in _containers(fig).items()}
    assert set(lines) == {"simclr", "supervised"}
    for method in ("simclr", "supervised"):
        assert lines[method] == pytest.approx(bars[method])
    assert lines["simclr"] != pytest.approx(lines["supervised"])


def test_an_own_method_keeps_its_colour_in_a_figure_that_lacks_another_own_method():
    """Two methods of one's own ("aaa_mine" only in granularity, "zzz_mine" in both): zzz_mine's colour took its place
    among each figure's own methods, so it changed from quality to granularity."""
    def renamed(recs, method, tag):
        return [{**r, "job_id": r["job_id"] + tag, "axes": {**r["axes"], "method": method}}
                for r in recs if r["axes"]["method"] == "simclr"]

    recs = (quality_records() + renamed(quality_records(), "zzz_mine", "z") + granularity_records()
            + renamed(granularity_records(), "zzz_mine", "z") + renamed(granularity_records(), "aaa_mine", "a"))
    fig_q, _ = quality.draw(table_of(recs))
    bars = {c.get_label(): tuple(c.patches[0].get_facecolor()[:3]) for c in fig_q.axes[0].containers
            if isinstance(c, BarContainer)}
    fig_g, _ = granularity.draw(table_of(recs))
    lines = {c.get_label(): tuple(c.lines[0].get_color()[:3]) for c in fig_g.axes[0].containers}
    assert "aaa_mine" not in bars and bars["zzz_mine"] == pytest.approx(lines["zzz_mine"])
    assert lines["aaa_mine"] != pytest.approx(lines["zzz_mine"])


def test_quality_title_names_the_labeled_size_and_domain_matrix_reads_its_rows_across():
    fig, _ = quality.draw(table_of(quality_records()))
    assert fig.axes[0].get_title() == "a 1M → a (10k labels)"
    import matplotlib.pyplot as plt

    from study.report import style

    with plt.rc_context():  # the report's style, whose grid would cross the cells
        style.apply()
        fig, _ = domain_matrix.draw(table_of(domain_records()))
    ax = fig.axes[0]
    assert [t.get_rotation() for t in ax.get_yticklabels()] == [0.0, 0.0]
    assert not any(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())


def _dataset_records() -> list:
    """Linear probes of three datasets across domains, pooled sets and a concatenation of two, corrupted pretraining
    and per-level results of each: every figure that lists datasets has all three."""
    ds3 = ("glc20", "inat21", "imagenet")
    recs = [r for ds in ds3 for ev in ds3
            for r in records(eval_axes(dataset=ds, eval_dataset=ev), {(10000, None): 0.4})]
    for pool in ("inat21+glc20", "imagenet+glc20"):
        recs += [r for ev in pool.split("+") for r in records(eval_axes(dataset=pool, eval_dataset=ev),
                                                              {(10000, None): 0.3})]
    recs += [r for ev in ds3 for r in records(eval_axes(dataset="glc20|imagenet", protocol="concat", eval_dataset=ev),
                                              {(10000, None): 0.5})]
    recs += records(eval_axes(dataset="inat21|imagenet", protocol="concat", eval_dataset="imagenet"),
                    {(10000, None): 0.5})
    recs += [r for ds in ds3 for r in records(eval_axes(dataset=ds, eval_dataset=ds, corruption="jpeg:quality=10"),
                                              {(10000, None): 0.2})]
    recs += [r for ds in ds3 for r in records(eval_axes(protocol="granularity", dataset=ds, eval_dataset=ds),
                                              {(None, lv): 0.5 for lv in LEVELS}, protocol={"levels": LEVELS})]
    return recs


def _datasets_in(texts, names=("glc20", "inat21", "imagenet")) -> list:
    """The dataset each text starts with (the first of `names` in it), in order, repeats left out."""
    return list(dict.fromkeys(min((t.find(n), n) for n in names if n in t)[1] for t in texts
                              if any(n in t for n in names)))


def _dataset_orders(recs, planned) -> dict:
    """Each figure's order of the datasets it lists (panels, groups, rows and columns, pooled sets)."""
    fig, _ = quantity.draw(table_of(recs), planned)
    out = {"quantity": _datasets_in(ax.get_title() for ax in fig.axes)}
    fig, _ = granularity.draw(table_of(recs), planned)
    out["granularity"] = _datasets_in(ax.get_title() for ax in fig.axes)
    out["granularity lines"] = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    fig, _ = quality.draw(table_of(recs), planned)
    out["quality"] = _datasets_in(ax.get_title() for ax in fig.axes)
    fig, _ = domain_matrix.draw(table_of(recs), planned)
    out["matrix rows"] = _datasets_in(t.get_text() for t in fig.axes[0].get_yticklabels())
    out["matrix columns"] = _datasets_in(t.get_text() for t in fig.axes[0].get_xticklabels())
    fig, data = domain_pooling.draw(table_of(recs), planned)
    out["pooling"] = _datasets_in(t.get_text() for t in fig.axes[0].get_xticklabels())
    out["pooled sets"] = [b for b in data.attrs["bars"] if "+" in b]
    fig, data = domain_concat.draw(table_of(recs), planned)
    out["concat"] = _datasets_in(t.get_text() for t in fig.axes[0].get_xticklabels())
    out["concat pairs"] = list(dict.fromkeys(data.loc[data["eval_dataset"] == "imagenet", "pair"]))
    return out


def test_figures_list_datasets_in_the_grids_order_else_in_the_papers():
    """Not by name (glc20 first): as the plan names them (the grid's order), and without a plan as the paper does
    (ImageNet, iNat21, Places365, GLC20; a pooled set by its parts), in every figure that lists datasets."""
    recs = _dataset_records()
    paper = ["imagenet", "inat21", "glc20"]
    got = _dataset_orders(recs, None)
    assert got.pop("pooled sets") == ["pooled imagenet+glc20 1M", "pooled inat21+glc20 1M"]
    assert got.pop("concat pairs") == ["simclr inat21 1M | simclr imagenet 1M", "simclr glc20 1M | simclr imagenet 1M"]
    assert got == {k: paper for k in got}
    grid = ["inat21", "glc20", "imagenet", "inat21+glc20", "imagenet+glc20"]
    planned = pd.DataFrame([{"job_id": f"pre-{d}", "stage": "pretrain", "method": "simclr", "dataset": d,
                             "size": 1_000_000, "corruption": "none"} for d in grid]
                           + [{"job_id": r["job_id"], "stage": "evaluate", **r["axes"]} for r in recs])
    got = _dataset_orders(recs, planned)
    assert got.pop("pooled sets") == ["pooled inat21+glc20 1M", "pooled imagenet+glc20 1M"]
    assert got.pop("concat pairs") == ["simclr glc20 1M | simclr imagenet 1M", "simclr inat21 1M | simclr imagenet 1M"]
    assert got == {k: grid[:3] for k in got}
    # datasets that are only evaluated on: the matrix's last columns, in the paper's order, then by name
    recs = [r for ev in ("a", "aircraft", "places365")
            for r in records(eval_axes(eval_dataset=ev), {(10000, None): 0.4})]
    fig, _ = domain_matrix.draw(table_of(recs))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "places365", "aircraft"]
    planned = pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"]} for r in recs])
    fig, _ = domain_matrix.draw(table_of(recs), planned)  # the plan's evaluation datasets: its order
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "aircraft", "places365"]


def test_a_methods_variants_share_its_colour():
    """"simclr · resnet18" and "simclr · resnet50" (label_variants) are coloured as simclr in every figure."""
    got = method_colours(["simclr · resnet18", "simclr · resnet50", "supervised"])
    assert got["simclr · resnet18"] == got["simclr · resnet50"] == method_colours(["simclr"])["simclr"]
    assert got["supervised"] != got["simclr · resnet18"]


def test_methods_are_listed_in_the_papers_order_a_new_one_before_random_and_variants_by_their_method():
    from study.report.figures.common import method_key

    got = sorted(["random", "simsiam", "byol", "supervised · resnet18", "simclr · resnet50", "random · resnet18",
                  "simclr · resnet18", "moco", "barlow"], key=method_key)
    assert got == ["simclr · resnet18", "simclr · resnet50", "supervised · resnet18", "moco", "byol", "barlow",
                   "simsiam", "random", "random · resnet18"]


def test_a_method_label_names_its_method_before_the_first_separator():
    """base_method, which ordering, colours and the findings share: a variant's method, a plain name as it is."""
    from study.report.figures.common import base_method

    assert [base_method(m) for m in ("simclr · resnet18", "moco", "supervised · resnet18 · v2", None)] == [
        "simclr", "moco", "supervised", "None"]


def test_quantity_colours_a_pretraining_size_alike_whichever_sizes_the_grid_has():
    """1M has one colour and marker in the quantity grid's figure (50k..1M) and in the domain grid's (250k..1M): its
    place among the paper's sizes, not among the figure's; sizes off that ladder keep a colour each."""
    def looks(sizes):
        recs = [r for s in sizes for r in records(eval_axes(size=s), {(1000, None): 0.3, (10000, None): 0.4})]
        fig, _ = quantity.draw(table_of(recs))
        return {label: (c.lines[0].get_color(), c.lines[0].get_marker()) for (_, label), c in _containers(fig).items()}

    quantity_grid, domain_grid = looks([50_000, 125_000, 250_000, 500_000, 1_000_000]), looks([250_000, 1_000_000])
    for size in ("250k", "1M"):
        assert quantity_grid[size] == domain_grid[size]
    small = looks([3_000, 15_000, 60_000])
    assert len({str(colour) for colour, _ in small.values()}) == 3


def test_domain_pooling_gives_a_dataset_no_slot_for_a_pooled_set_without_it():
    """Three datasets, each in two of three pooled pairs: a group holds its three bars side by side around its tick
    (no blank slot for the pair without its dataset), a planned bar without a result keeps its slot ('missing'), and
    the figure stays narrow."""
    ds3 = ("a", "b", "c")
    recs = [r for d in ds3 for r in records(eval_axes(dataset=d, eval_dataset=d, size=500_000), {(10000, None): 0.4})]
    pairs = ("a+b", "a+c", "b+c")
    recs += [r for p in pairs for ev in p.split("+") if (p, ev) != ("a+b", "b")
             for r in records(eval_axes(dataset=p, eval_dataset=ev, size=500_000), {(10000, None): 0.3})]
    planned = pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"]} for r in recs]
                           + [{"job_id": "ab-b", "stage": "evaluate", **eval_axes(dataset="a+b", eval_dataset="b",
                                                                                  size=500_000)}])
    fig, data = domain_pooling.draw(table_of(recs), planned)
    ax = fig.axes[0]
    xs = [p.get_x() + p.get_width() / 2 for c in ax.containers if isinstance(c, BarContainer) for p in c.patches
          if not math.isnan(p.get_height())]
    xs += [t.get_position()[0] for t in ax.texts if t.get_text() == "missing"]
    assert sum(t.get_text() == "missing" for t in ax.texts) == 1
    width = 0.8 / 3
    for tick in range(3):
        group = sorted(x for x in xs if abs(x - tick) < 0.5)
        assert group == pytest.approx([tick - width, tick, tick + width])
    assert fig.get_figwidth() < 6


def test_domain_pooling_names_pooled_sets_scored_on_a_dataset_they_do_not_hold():
    """`a+b` probed on `c` is a cross-domain score: the caption says so (a reader takes every pooled bar for an
    in-domain comparison otherwise); pools scored on their own datasets only get no such sentence."""
    _, data = domain_pooling.draw(table_of(domain_records()))
    assert "Cross-domain" not in data.attrs["caption"]
    recs = domain_records() + records(eval_axes(dataset="a+b", eval_dataset="c"), {(10000, None): 0.2})
    recs += records(eval_axes(dataset="c", eval_dataset="c"), {(10000, None): 0.6})
    _, data = domain_pooling.draw(table_of(recs))
    assert data.attrs["caption"].count("Cross-domain, not pooled in-domain") == 1
    assert "does not hold the evaluation dataset): a+b on c." in data.attrs["caption"]


LONG = ("my_lab_microscopy_2024", "field_camera_traps_northern_forest", "satellite_tiles_2023_v2")


def _styled(draw, *args):
    """`draw(*args)` under the report's style, laid out as it is saved."""
    import matplotlib.pyplot as plt

    from study.report import style

    with plt.rc_context():
        style.apply()
        fig, data = draw(*args)
        fig.draw_without_rendering()
    return fig, data


def _overlapping(texts) -> list:
    """The pairs of neighbouring level texts whose boxes overlap."""
    boxes = sorted(((t.get_window_extent(), t.get_text()) for t in texts if t.get_text()), key=lambda b: b[0].x0)
    return [(a, b) for (x, a), (y, b) in zip(boxes, boxes[1:]) if x.x1 > y.x0]


def test_quantity_legend_lists_lines_by_method_and_size_with_scratch_last():
    """A line drawn only on a later panel (10k, pretrained on b alone) takes its place among the sizes in the legend,
    not after the from-scratch reference."""
    recs = records(eval_axes(size=50_000, dataset="a", eval_dataset="a"), {(1000, None): 0.3})
    recs += [r for s in (10_000, 50_000) for r in records(eval_axes(size=s, dataset="b", eval_dataset="b"),
                                                          {(1000, None): 0.3})]
    recs += records({"method": "random", "protocol": "scratch", "eval_dataset": "a", "corruption": "none"},
                    {(1000, None): 0.1})
    fig, _ = quantity.draw(table_of(recs))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["10k", "50k", quantity.SCRATCH]


def test_quantity_draws_no_method_but_simclr_in_a_line_that_reads_as_solid():
    """Colour and marker tell the size: five methods at one size are told apart by line style alone, so none but
    SimCLR's may be a dash pattern with hardly a gap (5 on, 1 off reads as SimCLR's solid line)."""
    methods = ("simclr", "supervised", "moco", "byol", "random")
    recs = [r for m in methods for r in records(eval_axes(method=m), {(1000, None): 0.3, (10000, None): 0.4})]
    fig, _ = quantity.draw(table_of(recs))
    lines = {label: c.lines[0] for (_, label), c in _containers(fig).items()}
    assert set(lines) == set(methods)
    for method in methods[1:]:
        _, dashes = lines[method]._unscaled_dash_pattern
        assert dashes is not None and sum(dashes[1::2]) / sum(dashes) >= 0.2, (method, dashes)


def _long_name_records() -> list:
    """In-domain probes of five datasets (LONG's three), two pooled sets of them (and in-domain at the share of
    each), and two concatenations."""
    share = {LONG[0]: 6666, "cells": 6666, LONG[2]: 6666, LONG[1]: 10_000, "birds": 10_000}  # of each pooled set
    recs = [r for d in share for s in (share[d], 20_000)
            for r in records(eval_axes(dataset=d, eval_dataset=d, size=s), {(1000, None): 0.4})]
    for pool in (f"{LONG[1]}+birds", f"{LONG[0]}+cells+{LONG[2]}"):
        recs += [r for ev in pool.split("+") for r in records(eval_axes(dataset=pool, eval_dataset=ev, size=20_000),
                                                              {(1000, None): 0.3})]
    recs += [r for ev in LONG[:2] for r in records(eval_axes(dataset="|".join(LONG[:2]), protocol="concat",
                                                             eval_dataset=ev, size=20_000), {(1000, None): 0.5})]
    recs += records(eval_axes(dataset=LONG[2], eval_dataset=LONG[0], size=20_000), {(1000, None): 0.3})
    recs += records(eval_axes(dataset=f"{LONG[2]}|{LONG[0]}", protocol="concat", eval_dataset=LONG[0], size=20_000),
                    {(1000, None): 0.5})
    return recs


def test_domain_pooling_keeps_long_dataset_names_apart_and_its_bars_wide():
    """Datasets with long names (an own-data study): the pooling figure's names do not overlap level (tilted where
    they would), and its axes keep room for their bars beside a long pooled set's name in the legend."""
    fig, data = _styled(domain_pooling.draw, table_of(_long_name_records()))
    ax = fig.axes[0]
    ticks = ax.get_xticklabels()
    assert sorted(t.get_text() for t in ticks) == sorted((*LONG, "cells", "birds"))
    assert all(t.get_rotation() == 20 for t in ticks) or not _overlapping(ticks)
    bars = int(data.groupby("eval_dataset")["bar"].nunique().sum())
    assert ax.get_position().width * fig.get_figwidth() >= 0.25 * bars  # inches a bar


def test_domain_pooling_of_the_paper_grid_is_no_wider_than_its_bars_and_legend_need():
    """grids/data_domain.yaml's pooling (four datasets, eight bars to a group, a 43-character pooled set in the
    legend): ~0.27 in a bar, as before the width counted the legend, not 0.35 (a 16-inch figure that index.html
    shows at half size)."""
    four = ("imagenet", "inat21", "places365", "glc20")
    pools = [f"{a}+{b}" for i, a in enumerate(four) for b in four[i + 1:]]
    recs = [r for d in four for s in (250_000, 500_000, 1_000_000)
            for r in records(eval_axes(dataset=d, eval_dataset=d, size=s), {(10000, None): 0.4})]
    recs += [r for pool, s in [*((p, 500_000) for p in pools), ("+".join(four), 500_000), ("+".join(four), 1_000_000)]
             for ev in pool.split("+") for r in records(eval_axes(dataset=pool, eval_dataset=ev, size=s),
                                                        {(10000, None): 0.3})]
    fig, data = _styled(domain_pooling.draw, table_of(recs))
    bars = int(data.groupby("eval_dataset")["bar"].nunique().sum())
    assert bars == 32
    inches = fig.axes[0].get_position().width * fig.get_figwidth()
    assert 0.25 * bars <= inches <= 0.3 * bars
    assert fig.get_figwidth() <= 14.0


def test_domain_concat_keeps_the_long_pair_names_of_neighbouring_groups_apart():
    fig, _ = _styled(domain_concat.draw, table_of(_long_name_records()))
    assert len(fig.axes[0].get_xticklabels()) == 3
    assert not _overlapping(fig.axes[0].get_xticklabels())


def test_domain_matrix_of_many_methods_and_long_names_wraps_its_panels():
    """Five methods' matrices of three long-named datasets: the panels wrap into rows no wider than
    MAX_ROW_WIDTH (not one row tens of inches wide), every method's panel drawn."""
    methods = ("simclr", "supervised", "moco", "byol", "dino_toy")
    recs = [r for m in methods for d in LONG for e in LONG
            for r in records(eval_axes(method=m, dataset=d, eval_dataset=e, size=20_000), {(1000, None): 0.4})]
    fig, data = domain_matrix.draw(table_of(recs))
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == list(methods)
    assert fig.get_figwidth() <= 17.0  # MAX_ROW_WIDTH and the colour bar; one row: 5 panels, ~40 inches
    assert len(data) == len(methods) * len(LONG) ** 2
    # the long row names once per row of panels (every panel has the same rows), on its first panel
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_title()]
    shown = [[t.label1.get_visible() for t in ax.yaxis.get_major_ticks()] for ax in panels]
    first = [ax.get_position().x0 == min(a.get_position().x0 for a in panels) for ax in panels]
    assert [ax.get_ylabel() == "pretraining dataset" for ax in panels] == first and first.count(True) >= 2
    assert [all(s) for s in shown] == first and not any(any(s) for s, f in zip(shown, first) if not f)


def test_domain_matrix_wrapped_panels_share_one_colour_bar_right_of_them_all():
    """Wrapped panels (a short last row) share one colour bar, right of every panel and as tall as the rows, not
    beside the last panel mid-figure; its scale is every panel's (0 to the best cell)."""
    methods = ("simclr", "supervised", "moco", "byol", "dino_toy")
    recs = [r for k, m in enumerate(methods) for d in LONG for e in LONG
            for r in records(eval_axes(method=m, dataset=d, eval_dataset=e, size=20_000), {(1000, None): 0.1 * k})]
    fig, _ = domain_matrix.draw(table_of(recs))
    panels = [ax for ax in fig.axes if ax.get_title()]
    bars = [ax for ax in fig.axes if ax not in panels]
    assert len({round(ax.get_position().y0, 3) for ax in panels}) >= 2  # wrapped: more than one row of panels
    assert len(bars) == 1
    bar, boxes = bars[0].get_position(), [ax.get_position() for ax in panels]
    assert bar.x0 > max(b.x1 for b in boxes)
    assert bar.y0 <= min(b.y0 for b in boxes) + 1e-6 and bar.y1 >= max(b.y1 for b in boxes) - 1e-6
    assert bars[0].get_ylim() == pytest.approx((0, 0.4))
    assert all(ax.collections[0].get_clim() == pytest.approx((0, 0.4)) for ax in panels)


def test_quality_panel_titles_of_long_dataset_names_do_not_run_into_each_other():
    recs = [r for d in LONG[1:] for c in ("none", "jpeg:quality=10")
            for r in records(eval_axes(dataset=d, eval_dataset=d, size=20_000, corruption=c), {(1000, None): 0.4})]
    fig, _ = _styled(quality.draw, table_of(recs))
    assert len(fig.axes) == 2 and not _overlapping([ax.title for ax in fig.axes])


def test_quantity_draws_clean_in_domain_lines_only():
    """A corrupted pretraining and a cross-domain evaluation at a line's size add no point to it (quality's and the
    domain figures' cells): the 50k line keeps its own two points."""
    recs = quantity_records()
    recs += records(eval_axes(size=50_000, corruption="downsample:factor=2"), {(1000, None): 0.9, (10000, None): 0.9})
    recs += records(eval_axes(size=50_000, dataset="b"), {(1000, None): 0.8, (10000, None): 0.8})
    _, data = quantity.draw(table_of(recs))
    line = data[(data["protocol"] == "linear") & (data["line"] == "50k")]
    assert line["labeled_size"].to_list() == [1000, 10000] and line["mean"].to_list() == pytest.approx([0.30, 0.35])
    assert set(data["line"]) == {"50k", "1M", quantity.SCRATCH}


def test_quantity_draws_a_planned_line_of_several_seeds_as_one_missing_point_per_size():
    planned = pd.DataFrame([{"stage": "evaluate", **eval_axes(size=250_000), "seed": s, "labeled_sizes": "1000,10000"}
                            for s in (0, 1)])
    _, data = quantity.draw(table_of(quantity_records()), planned)
    line = data[(data["protocol"] == "linear") & (data["line"] == "250k")]
    assert line["labeled_size"].to_list() == [1000, 10000] and line["mean"].isna().all()


def test_quantity_draws_a_scratch_entry_without_a_variant_beside_one_with():
    """Each scratch entry its line, the one without a variant too; one backbone in the grid: not named."""
    recs = records(eval_axes(size=50_000, backbone="r50"), {(1000, None): 0.30, (10000, None): 0.40})
    for variant, (lo, hi) in ((None, (0.10, 0.20)), ("long", (0.15, 0.35))):
        recs += records({"protocol": "scratch", "eval_dataset": "a", "corruption": None, "variant": variant,
                         "backbone": "r50"},
                        {(1000, None): lo, (10000, None): hi}, protocol={"epochs": 10 if variant is None else 90})
    _, data = quantity.draw(table_of(recs))
    ref = data[(data["role"] == "scratch") & (data["protocol"] == "linear")].set_index(["line", "labeled_size"])
    assert ref.loc[(quantity.SCRATCH, 10000), "mean"] == pytest.approx(0.20)
    assert ref.loc[(f"{quantity.SCRATCH} · long", 10000), "mean"] == pytest.approx(0.35)


def test_domain_pooling_draws_each_methods_in_domain_bar_from_its_own_cells():
    """Pooled sets of SimCLR and of supervised pretraining: each method's in-domain bar is its own cell's."""
    recs = domain_records() + records(eval_axes(method="supervised", dataset="a+b", eval_dataset="a"),
                                      {(10000, None): 0.6})
    recs += records(eval_axes(method="supervised", dataset="a", eval_dataset="a"), {(10000, None): 0.55})
    _, data = domain_pooling.draw(table_of(recs))
    bars = data[data["eval_dataset"] == "a"].set_index("bar")["mean"]
    assert bars[["in-domain 1M · simclr", "in-domain 1M · supervised"]].to_list() == pytest.approx([0.45, 0.55])


def test_domain_concat_leaves_a_whole_dataset_encoder_without_its_own_cell_missing():
    """A concatenation with b's whole-dataset encoder, whose own probe has no result: its bar is missing, not b's
    1M encoder's."""
    recs = domain_records() + records(eval_axes(dataset="a|b", size="1000000|None", protocol="concat"),
                                      {(10000, None): 0.7})
    _, data = domain_concat.draw(table_of(recs))
    pair = data[data["pair"] == "simclr a 1M | simclr b"].set_index("role")["mean"]
    assert pair["first encoder"] == pytest.approx(0.45) and math.isnan(pair["second encoder"])


def test_domain_matrix_takes_the_plans_size_of_most_cross_domain_cells_not_of_most_in_domain_ones():
    """The plan's matrix is a and b at 1M (4 cells); in-domain probes of a to e at 500k are more cells (5), all on the
    diagonal (a quantity study beside it): the matrix stays at 1M, the size of the grid's cross-domain cells."""
    recs = [r for d, e, v in (("a", "a", 0.45), ("a", "b", 0.35), ("b", "a", 0.25), ("b", "b", 0.55))
            for r in records(eval_axes(dataset=d, eval_dataset=e), {(10000, None): v})]
    recs += [r for d in "abcde" for r in records(eval_axes(dataset=d, eval_dataset=d, size=500_000),
                                               {(10000, None): 0.4})]
    planned = pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"]} for r in recs])
    _, data = domain_matrix.draw(table_of(recs), planned)
    assert "pretraining size 1M" in data.attrs["caption"]
    assert set(data["size"].dropna()) == {1_000_000}
    assert data.set_index(["dataset", "eval_dataset"]).loc[("b", "a"), "mean"] == pytest.approx(0.25)


def test_domain_matrix_without_a_shared_size_draws_each_datasets_largest():
    """No pretraining size common to two datasets (a at 50k and 1M, b at 200k), no plan: each dataset's row is its
    largest size, a's 1M, not its 50k."""
    recs = [r for d, e, s, v in (("a", "a", 50_000, 0.30), ("a", "b", 50_000, 0.20), ("a", "a", 1_000_000, 0.45),
                                 ("a", "b", 1_000_000, 0.35), ("b", "a", 200_000, 0.25), ("b", "b", 200_000, 0.55))
            for r in records(eval_axes(dataset=d, eval_dataset=e, size=s), {(10000, None): v})]
    _, data = domain_matrix.draw(table_of(recs))
    assert "largest pretraining size of each dataset" in data.attrs["caption"]
    cell = data.set_index(["dataset", "eval_dataset"])
    assert cell["size"].to_dict() == {("a", "a"): 1_000_000, ("a", "b"): 1_000_000, ("b", "a"): 200_000,
                                      ("b", "b"): 200_000}
    assert cell["mean"].to_dict() == pytest.approx({("a", "a"): 0.45, ("a", "b"): 0.35, ("b", "a"): 0.25,
                                                    ("b", "b"): 0.55})


def test_granularity_draws_a_panel_at_its_results_largest_labeled_size_while_a_planned_line_waits():
    """simclr and supervised probed at 1k labels; byol is planned at 1k and 10k with no result yet: the panel is at
    1k (the largest with a result), where the two lines have their values, and byol is missing there."""
    recs = [r for m in ("simclr", "supervised")
            for r in records(eval_axes(method=m, protocol="granularity", dataset="inat", eval_dataset="inat"),
                             {(1000, lv): v for lv, v in zip(LEVELS, (0.9, 0.7, 0.5))}, protocol={"levels": LEVELS})]
    planned = pd.DataFrame([{"job_id": f"{m}0", "stage": "evaluate", "method": m, "dataset": "inat",
                             "size": 1_000_000, "corruption": "none", "protocol": "granularity",
                             "eval_dataset": "inat", "labeled_sizes": "1000,10000"}
                            for m in ("simclr", "supervised", "byol")])
    fig, data = granularity.draw(table_of(recs), planned)
    assert set(data["labeled_size"]) == {1000} and "(1k labels)" in fig.axes[0].get_title()
    mean = data.groupby("line")["mean"].apply(list).to_dict()
    assert mean["simclr"] == pytest.approx([0.9, 0.7, 0.5]) and mean["supervised"] == pytest.approx([0.9, 0.7, 0.5])
    assert all(math.isnan(v) for v in mean["byol"])


def test_a_granularity_panel_of_planned_lines_alone_is_at_their_planned_labeled_size():
    """inat2 has only a planned job (at 1k and 10k labels): its panel and rows are at 10k, not 'all' labels."""
    planned = pd.DataFrame([{"job_id": "s2", "stage": "evaluate", "method": "simclr", "dataset": "inat",
                             "size": 1_000_000, "corruption": "none", "protocol": "granularity",
                             "eval_dataset": "inat2", "labeled_sizes": "1000,10000"}])
    fig, data = granularity.draw(table_of(granularity_records()), planned)
    assert fig.axes[1].get_title() == "inat2 (10k labels)"
    assert set(data.loc[data["eval_dataset"] == "inat2", "labeled_size"]) == {10000}


def test_granularity_legend_lists_methods_in_the_papers_order_whichever_panel_drew_them_first():
    """The first panel draws supervised alone; the second adds simclr: the legend still lists simclr first."""
    recs = [r for m, ev in (("supervised", "inat"), ("supervised", "inat2"), ("simclr", "inat2"))
            for r in records(eval_axes(method=m, protocol="granularity", dataset="inat", eval_dataset=ev),
                             {(1000, lv): 0.5 for lv in LEVELS}, protocol={"levels": LEVELS})]
    fig, _ = granularity.draw(table_of(recs))
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["simclr", "supervised"]


def test_a_granularity_panel_counts_its_own_points_without_a_value_not_an_earlier_panels():
    """inat's panel has byol planned without a result (three points without a value); cub's panel, drawn after it,
    has every point: it carries no note."""
    recs = [r for ev, m in (("inat", "simclr"), ("cub", "simclr"))
            for r in records(eval_axes(method=m, protocol="granularity", dataset=ev, eval_dataset=ev),
                             {(None, lv): v for lv, v in zip(LEVELS, (0.9, 0.7, 0.5))}, protocol={"levels": LEVELS})]
    planned = pd.DataFrame([{"job_id": f"{m}{ev}", "stage": "evaluate", "method": m, "dataset": ev,
                             "size": 1_000_000, "corruption": "none", "protocol": "granularity", "eval_dataset": ev}
                            for ev, m in (("inat", "simclr"), ("inat", "byol"), ("cub", "simclr"))])
    fig, _ = granularity.draw(table_of(recs), planned)
    panels = {ax.get_title().split(" ")[0]: _texts(ax) for ax in fig.axes}
    assert list(panels) == ["inat", "cub"]
    assert panels["inat"] == [f"{len(LEVELS)} points without a value: planned or diverged (table: —)"]
    assert panels["cub"] == []


def test_granularity_caption_names_both_modes_where_its_cells_were_run_in_two():
    """simclr's cells of one classifier per level, supervised's of the finest level mapped up (two recipes, two
    cells, no conflict): the caption names both, joined by "and"."""
    recs = [{**r, "protocol": {**r["protocol"], "granularity_mode": "per_level" if r["axes"]["method"] == "simclr"
                                                                      else "finest level mapped up"}}
            for r in granularity_records()]
    _, data = granularity.draw(table_of(recs))
    assert ("Top-1 at each taxonomy level of one finest-level classifier mapped up the taxonomy and one classifier "
            "per level,") in data.attrs["caption"]


def test_domain_pooling_orders_pooled_sets_of_one_size_by_their_parts_before_the_grids_order():
    """Two pooled sets of 900k, the plan naming the pool of three first: the pool of two comes first (fewer parts),
    in the figure's legend and the table's rows, the grid's order deciding between pools of as many parts only."""
    recs = [r for pool in ("a+b+c", "a+b")
            for r in records(eval_axes(dataset=pool, size=900_000), {(10000, None): 0.4})]
    planned = pd.DataFrame([{"job_id": r["job_id"], "stage": "evaluate", **r["axes"]} for r in recs])
    fig, data = domain_pooling.draw(table_of(recs), planned)
    assert list(domain_pooling.paper_table(data)["pretraining"]) == ["pooled a+b 900k", "pooled a+b+c 900k"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["pooled a+b 900k", "pooled a+b+c 900k"]


def test_domain_pooling_gives_each_bar_the_width_of_the_fullest_groups():
    """Evaluation dataset a has seven bars, b one: the figure is as wide as a's group needs (~0.27 in a bar, times
    two groups of seven slots), not as b's."""
    recs = records(eval_axes(), {(10000, None): 0.45})
    recs += [r for d in "cdefgh" for r in records(eval_axes(dataset=f"a+{d}"), {(10000, None): 0.4})]
    recs += records(eval_axes(dataset="b+c", eval_dataset="b"), {(10000, None): 0.3})
    fig, data = _styled(domain_pooling.draw, table_of(recs))
    assert data.groupby("eval_dataset")["bar"].nunique().to_dict() == {"a": 7, "b": 1}
    assert fig.axes[0].get_position().width * fig.get_figwidth() >= 0.25 * 2 * 7


def test_domain_concat_names_an_encoders_seeds_in_numeric_order():
    """Seed 0's encoder concatenated with seed 2's and with seed 10's (one cell of two seed pairs): the second
    encoder is named "seed 2,10", as cells.csv orders seeds, not "10,2"."""
    recs = records(eval_axes(), {(10000, None): 0.45})
    recs += records(eval_axes(protocol="concat"), {(10000, None): 0.50}, seeds=("0|2", "0|10"))
    _, data = domain_concat.draw(table_of(recs))
    assert list(dict.fromkeys(data["pair"])) == ["simclr a 1M seed 0 | simclr a 1M seed 2,10"]


def test_the_caption_names_the_seeds_per_cell_as_one_a_range_or_none():
    """Cells of 1 to 3 seeds are "1-3" (some have error bars); "one seed per cell" only where every cell has one."""
    assert seeds_note([1, 2, 3, 0, float("nan")]) == "means over 1-3 seeds per cell"
    assert seeds_note([1, 2]) == "means over 1-2 seeds per cell"
    assert seeds_note([1, 1, 0]) == "one seed per cell (no error bars)"
    assert seeds_note([3, 3]) == "means over 3 seeds per cell"
    assert seeds_note([0, float("nan")]) == "no cell has a value yet"


def test_the_quantity_caption_says_corrupted_pretraining_is_left_to_the_quality_figure():
    """data_quality's quantity figure draws the clean encoders only: its caption says so, as other grids' need not."""
    _, data = quantity.draw(table_of(quality_records()))
    assert set(data["mean"].round(2)) == {0.45, 0.70}  # the clean cells
    assert "clean pretraining images only (corrupted ones: the quality figure)" in data.attrs["caption"]
    _, data = quantity.draw(table_of(quantity_records()))
    assert "clean pretraining" not in data.attrs["caption"]


def test_the_quantity_panels_name_their_axes():
    fig, _ = quantity.draw(table_of(quantity_records()))
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [("labeled images", "top-1"),
                                                                       ("labeled images", "")]


def test_the_domain_matrix_names_pretraining_rows_and_evaluation_columns():
    fig, _ = domain_matrix.draw(table_of(domain_records()))
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("evaluation dataset", "pretraining dataset")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]


def test_the_palette_goes_dark_to_light_and_its_lightest_colour_still_reads_on_white():
    """Any number of series: relative luminance rising, the lightest with a contrast of 1.5 or more against white
    (cubehelix ends near white: a line of that colour would vanish on the page)."""
    from study.report import style

    for n in [*range(1, 13), 30, 60]:  # the training figure draws a line per job: 60 in the quantity grid
        lum = [luminance(c) for c in style.palette(n)]
        assert len(lum) == n and lum == sorted(lum), n
        assert 1.05 / (lum[-1] + 0.05) >= 1.5, n
    assert len({tuple(c) for c in style.palette(60)}) == 60


def test_each_series_differs_in_marker_line_style_and_hatch_as_well_as_colour():
    """A grayscale print tells up to 8 lines apart by marker and line style, and up to 10 bar series by hatch."""
    from study.report import style

    for n in range(1, 9):
        lines = [style.line_style(i, n) for i in range(n)]
        assert len({s["marker"] for s in lines}) == len({str(s["linestyle"]) for s in lines}) == n
    bars = [style.bar_style(i, 10) for i in range(10)]
    assert len({s["hatch"] for s in bars}) == 10


def test_a_bar_near_zero_gets_a_dash_and_a_taller_one_none():
    """A change of +0.001 on a scale of 0.5 is under 2 px tall: it is dashed as a change of 0 is; 0.5 is not."""
    import matplotlib.pyplot as plt

    from study.report import style

    data = pd.DataFrame({"g": ["x", "y"], "s": ["m", "m"], "mean": [0.5, 0.001], "std": [0.0, 0.0]})
    fig, ax = plt.subplots()
    style.grouped_bars(ax, data, "g", ["x", "y"], "s", ["m"])
    (dash,) = [c for c in ax.collections if c.get_zorder() > 2]
    assert [round(seg[0][1], 3) for seg in dash.get_segments()] == [0.001]
    plt.close(fig)


def test_grouped_bars_draw_each_bars_std_as_its_error_bar():
    import matplotlib.pyplot as plt

    from study.report import style

    data = pd.DataFrame({"g": ["x", "y"], "s": ["m", "m"], "mean": [0.5, 0.3], "std": [0.02, 0.05]})
    fig, ax = plt.subplots()
    style.grouped_bars(ax, data, "g", ["x", "y"], "s", ["m"])
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    spans = [seg[1][1] - seg[0][1] for seg in bars.errorbar.lines[2][0].get_segments()]
    assert spans == pytest.approx([0.04, 0.10])
    plt.close(fig)


def _with_values(recs, counts: dict[str, int]):
    """The records with each level's number of values, as a granularity job records them (all labels: `all`)."""
    return [{**r, "protocol": {**r["protocol"],
                               "probes": {"all": {"levels": {lv: {"values": n} for lv, n in counts.items()}}}}}
            for r in recs]


def test_granularity_ticks_and_caption_state_each_levels_values_and_flag_a_level_of_one():
    """A reader finds each level's number of values (its chance top-1) on the ticks, in the caption and the data; a
    level of one value (a manifest of one kingdom) is named as scoring 1.0 whatever the encoder."""
    fig, data = granularity.draw(table_of(_with_values(granularity_records(), {"kingdom": 2, "order": 5,
                                                                               "species": 12})))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["kingdom (2)", "order (5)", "species (12)"]
    assert "inat: kingdom 2, order 5, species 12." in data.attrs["caption"]
    assert "one value" not in data.attrs["caption"]
    assert data.drop_duplicates("level").set_index("level")["values"].to_dict() == {"kingdom": 2, "order": 5,
                                                                                   "species": 12}
    assert list(granularity.paper_table(data).columns) == ["eval_dataset", "labeled_size", "line", *LEVELS]
    _, data = granularity.draw(table_of(_with_values(granularity_records(), {"kingdom": 1, "order": 5,
                                                                             "species": 12})))
    assert "kingdom (inat): one value, so 100% (1.0 in the table) whatever the encoder" in data.attrs["caption"]


def test_granularity_data_counts_values_as_integers_where_an_older_record_counts_none(tmp_path):
    """A per-level record written before levels counted their values leaves that level's tick bare and its `values`
    cell empty, and the other levels' counts stay whole numbers in granularity_data.csv (2, not 2.0)."""
    from study.report.tables import write_tables
    fig, data = granularity.draw(table_of(_with_values(granularity_records(), {"kingdom": 2, "order": 5})))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["kingdom (2)", "order (5)", "species"]
    assert "inat: kingdom 2, order 5." in data.attrs["caption"]
    csv = write_tables(data, tmp_path, "granularity_data", formats=("csv",))["csv"].read_text()
    rows = pd.read_csv(tmp_path / "granularity_data.csv", dtype=str, keep_default_na=False)
    assert rows.drop_duplicates("level").set_index("level")["values"].to_dict() == {"kingdom": "2", "order": "5",
                                                                                   "species": ""}, csv


def test_pooling_and_concat_captions_name_the_labeled_size_their_bars_are_at():
    """The in-domain encoder is probed at 100k labels too, the pooled set and the concatenation at 10k only: the bars
    are at 10k (the pooled sets', the concatenations' largest), which the caption says, not "each evaluation
    dataset's largest" (100k on a)."""
    recs = domain_records() + records(eval_axes(dataset="a", eval_dataset="a"), {(100_000, None): 0.6})
    for figure, whose in ((domain_pooling, "pooled sets'"), (domain_concat, "concatenations'")):
        _, data = figure.draw(table_of(recs))
        assert set(data["labeled_size"]) == {10_000}
        assert f"10k labels (the {whose} largest labeled size)" in data.attrs["caption"]
        assert "largest labeled size of each evaluation dataset" not in data.attrs["caption"]
    # b's pooled set probed at 1k only: each evaluation dataset's labeled size named
    recs = [r for r in domain_records() if not (r["axes"]["dataset"] == "a+b" and r["axes"]["eval_dataset"] == "b")]
    recs += records(eval_axes(dataset="a+b", eval_dataset="b"), {(1000, None): 0.5})
    recs += records(eval_axes(dataset="b", eval_dataset="b"), {(1000, None): 0.52})
    _, data = domain_pooling.draw(table_of(recs))
    assert "the pooled sets' largest labeled size on each evaluation dataset: a 10k, b 1k" in data.attrs["caption"]
    assert data.set_index(["eval_dataset", "bar"])["mean"].to_dict() == pytest.approx(
        {("a", "in-domain 1M"): 0.45, ("a", "pooled a+b 1M"): 0.40, ("b", "in-domain 1M"): 0.52,
         ("b", "pooled a+b 1M"): 0.50})


def test_quantity_and_domain_matrix_captions_give_top1_by_chance_from_the_recorded_classes():
    """A PI reads an absolute top-1 against chance: 1 / the classes each evaluation recorded (`num_classes`), per
    evaluation dataset; nothing where no record says."""
    def with_classes(recs):
        return [{**r, "protocol": {**r["protocol"], "num_classes": 10 if r["axes"].get("eval_dataset") == "a" else 4}}
                for r in recs]

    _, data = quantity.draw(table_of(with_classes(quantity_records())))
    assert "top-1 by chance (1 / classes): a 10%; " in data.attrs["caption"], data.attrs["caption"]
    _, data = domain_matrix.draw(table_of(with_classes(domain_records())))
    assert "top-1 by chance (1 / classes): a 10%, b 25%; " in data.attrs["caption"], data.attrs["caption"]
    _, data = quantity.draw(table_of(quantity_records()))
    assert "by chance" not in data.attrs["caption"]


def test_top1_by_chance_of_many_classes_is_not_rounded_to_zero():
    """The paper's evaluation datasets have hundreds to thousands of classes: their chance reads 0.27%, 0.1%, 0.01%,
    not 0% (which says nothing); in percent, as the figures' axes."""
    table = pd.DataFrame({"eval_dataset": ["places365", "imagenet", "inat21", "glc20", "a"],
                          "protocol.num_classes": [365, 1000, 10_000, 17, 10]})
    assert chance_note(table, ["places365", "imagenet", "inat21", "glc20", "a", np.nan]) == (
        "top-1 by chance (1 / classes): places365 0.27%, imagenet 0.1%, inat21 0.01%, glc20 5.9%, a 10%; ")


def test_quantity_of_one_method_names_it_in_the_legend_title_and_caption_its_lines_labeled_by_size_alone():
    """Lines of one method are labeled by their size alone ("50k"): the legend's title and the caption name the
    method, or a figure of `--where method=simclr` (or a notebook's subset) never says whose lines they are."""
    fig, data = quantity.draw(table_of(quantity_records()))  # SimCLR alone, at 50k and 1M
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()][:2] == ["50k", "1M"]
    assert legend.get_title().get_text() == "pretraining (simclr)"
    assert data.attrs["caption"].startswith("Top-1 against labeled images (log scale), one line per pretraining set "
                                            "of simclr (")
    recs = quantity_records() + [dict(r, job_id=r["job_id"] + "s", axes={**r["axes"], "method": "supervised"})
                                 for r in quantity_records() if r["axes"].get("protocol") == "linear"]
    fig, data = quantity.draw(table_of(recs))  # two methods: each line names its own
    assert fig.legends[0].get_title().get_text() == "pretraining"
    assert "one line per pretraining set (" in data.attrs["caption"]


@pytest.mark.parametrize("column", ["corruption", "protocol", "stage", "method"])
@pytest.mark.parametrize("figure", FIGURES, ids=lambda f: f.NAME)
def test_a_table_read_without_a_column_a_figure_reads_is_refused_naming_it(figure, column):
    """A narrow read (read_table(path, columns=[...])) that left out an axis or a column of the cells is a StudyError
    naming it, not a KeyError, nor (without `corruption`) corrupted pretraining drawn as clean."""
    with pytest.raises(StudyError, match=f"drawing a figure or checking the findings needs the table's column\\(s\\) "
                                         f"'{column}': read them too"):
        figure.draw(table_of(ALL_RECORDS).drop(columns=[column]))
