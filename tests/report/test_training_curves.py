"""The report's `training` figure: each pretraining job's curve file (study.train.curve) drawn from its run folder."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from report_records import luminance, plan_for, quantity_records, write_all

from study.launch.runner import job_dir
from study.report import build_report, curves
from study.report.figures import NoData
from study.results import write_result
from study.train.curve import TrainingCurve


def _write_curve(workdir, job_id, losses):
    curve = TrainingCurve(job_dir(workdir, job_id))
    curve.path.parent.mkdir(parents=True, exist_ok=True)
    curve.restart(0)
    for i, loss in enumerate(losses, 1):
        curve.append(10 * i, i / 2, loss, 0.1, 100.0, None, i / 100)


def test_the_curves_of_the_plans_pretraining_jobs_are_drawn_and_tabled(tmp_path):
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    pre = [j for j in plan.jobs if j.stage == "pretrain"]
    s = build_report(tmp_path / "w", tmp_path / "none", plan=plan, log=None)
    assert s.skipped_figures["training"] == ("no pretraining job has written a curve yet (its run folder's "
                                             "train_log.csv)")
    _write_curve(tmp_path / "w", pre[0].id, [5.0, 4.0, 3.5])
    _write_curve(tmp_path / "w", pre[1].id, [6.0, 5.5])  # still running: its curve so far
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    assert "training" in s.drawn and s.failed == []
    out = tmp_path / "r"
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "training.pdf").stat().st_size
    table = pd.read_csv(out / "training.csv").set_index("job_id")
    assert list(table.index) == [pre[0].id, pre[1].id]
    assert table.loc[pre[0].id, ["steps", "first_loss", "last_loss"]].tolist() == [30, 5.0, 3.5]
    assert table.loc[pre[1].id, "epochs"] == 1.0 and table.loc[pre[1].id, "method"] == pre[1].axes["method"]
    data = pd.read_csv(out / "training_data.csv")
    assert len(data) == 5 and data.groupby("job_id")["step"].apply(list).to_dict() == {
        pre[0].id: [10, 20, 30], pre[1].id: [10, 20]}
    html = (out / "index.html").read_text()
    assert "Training: pretraining loss" in html
    lacking = sorted(j.id for j in pre[2:])  # a result each (write_all), no curve
    assert lacking and f"Not drawn: {len(lacking)} pretraining job(s) with a result but no train_log.csv" in html
    assert all(job_id in html.split("Not drawn:")[1] for job_id in lacking[:5])
    assert pre[0].id not in html.split("Not drawn:")[1].split("</")[0]


def test_without_a_plan_the_curves_of_pretraining_jobs_with_a_result_are_drawn(tmp_path):
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    _write_curve(tmp_path / "w", pre.id, [2.0, 1.0])
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    assert "training" in s.drawn
    assert pd.read_csv(tmp_path / "r" / "training.csv")["job_id"].tolist() == [pre.id]


def test_a_diverged_curve_tables_its_nan_loss_and_many_jobs_draw_no_legend():
    """first/last loss are the first and last rows' (NaN where the run diverged, not the last finite one); a panel of
    more than LEGEND_MAX jobs has no legend (training.csv names them); no pretraining job: NoData."""
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": 1000, "corruption": None, "seed": s,
             "job_id": f"j{s}", "step": step, "epoch": step / 10, "loss": loss, "lr": 0.1}
            for s in range(curves.LEGEND_MAX + 1) for step, loss in ((10, 5.0), (20, 3.0), (30, math.nan))]
    data = pd.DataFrame(rows)
    table = curves.paper_table(data).set_index("job_id")
    assert table.loc["j0", "first_loss"] == 5.0 and math.isnan(table.loc["j0", "last_loss"])
    fig, _ = curves.draw(data)
    (ax,) = fig.axes
    assert ax.get_legend() is None and "13 jobs" in ax.get_title()
    plt.close(fig)
    fig, _ = curves.draw(data[data["seed"] < 2])
    assert len(fig.axes[0].get_legend().get_texts()) == 2
    plt.close(fig)
    fig, _ = curves.draw(data[data["seed"] < curves.LEGEND_MAX])  # exactly LEGEND_MAX: each named, no count
    assert len(fig.axes[0].get_legend().get_texts()) == curves.LEGEND_MAX and fig.axes[0].get_title() == "simclr"
    plt.close(fig)
    with pytest.raises(NoData, match="no pretraining job: none in the plan"):
        curves.Figure("w", ()).draw(pd.DataFrame())


def test_every_curve_of_a_full_scale_grid_reads_on_white():
    """The quantity grid's 60 pretraining jobs of a method in one panel: its lightest line had a contrast ~1.0 against
    the white page (the palette ran to white); each now has 1.5 or more, and each job its own colour."""
    from matplotlib.colors import to_rgb

    data = pd.DataFrame([{"method": "simclr", "backbone": "resnet50", "dataset": "d", "size": 1000, "corruption": None,
                          "seed": s, "job_id": f"j{s}", "step": step, "epoch": step / 10, "loss": 6.0 - step / 10,
                          "lr": 0.1} for s in range(60) for step in (10, 20, 30)])
    fig, _ = curves.draw(data)
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    assert len(colours) == 60 and len({to_rgb(c) for c in colours}) == 60
    assert min(1.05 / (luminance(c) + 0.05) for c in colours) >= 1.5
    plt.close(fig)


def test_neighbouring_curves_differ_in_line_style_as_well_as_shade():
    """Eleven pretraining jobs of one method (the quickstart's SimCLR runs): the darkest shades of the palette read
    alike, so each line's style differs from its neighbour's too."""
    data = pd.DataFrame([{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": 1000, "corruption": None,
                          "seed": s, "job_id": f"j{s}", "step": step, "epoch": step / 10, "loss": 6.0 - step / 10,
                          "lr": 0.1} for s in range(11) for step in (10, 20, 30)])
    fig, _ = curves.draw(data)
    styles = [line._unscaled_dash_pattern for line in fig.axes[0].get_lines()]  # get_linestyle: "--" for any dash
    assert len(styles) == 11 and all(a != b for a, b in zip(styles, styles[1:])), styles
    plt.close(fig)


def test_the_curves_are_drawn_against_steps_where_every_job_ran_as_many_and_else_against_epochs():
    """A `steps` budget over pretraining sets of several sizes (the quickstart): the same last step, other epochs."""
    def frame(last):  # job -> (last step, last epoch)
        return pd.DataFrame([{"job_id": j, "step": s * f, "epoch": e * f} for j, (s, e) in last.items()
                             for f in (0.5, 1.0)])

    assert curves.x_axis(frame({"a": (150, 6.4), "b": (150, 0.32)})) == "step"
    assert curves.x_axis(frame({"a": (12_000, 1000.0), "b": (244_000, 1000.0)})) == "epoch"  # an epochs budget
    assert curves.x_axis(frame({"a": (150, 6.4), "b": (50, 0.1)})) == "epoch"  # one still running
    assert curves.x_axis(frame({"a": (150, 6.4)})) == "epoch"  # one job


def test_a_curve_is_named_by_the_axes_that_vary_but_its_panels_method_in_the_paper_order():
    """Two methods at two sizes: a panel per method (simclr first, as every figure orders methods), titled by it, each
    line named by its size alone ("50k", as the tables spell it), not again by the method."""
    rows = [{"method": m, "backbone": "resnet18", "dataset": "d", "size": size, "corruption": None, "seed": 0,
             "job_id": f"{m}{size}", "step": step, "epoch": step / 10, "loss": 5.0 - step / 10, "lr": 0.1}
            for m in ("moco", "simclr") for size in (50_000, 1_000_000) for step in (10, 20)]
    fig, data = curves.draw(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["simclr", "moco"]
    assert "(each method's own: simclr: NT-Xent; moco: InfoNCE) at each" in data.attrs["caption"]  # these two only
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["50k", "1M"]
        assert ax.get_legend().get_title().get_text() == "size"  # what "50k" is
    plt.close(fig)


def test_the_caption_names_a_new_methods_loss_as_its_own():
    rows = [{"method": "swav", "backbone": "resnet18", "dataset": "d", "size": 50_000, "corruption": None,
             "seed": 0, "job_id": "j", "step": step, "epoch": step / 10, "loss": 4.0, "lr": 0.1} for step in (10, 20)]
    fig, data = curves.draw(pd.DataFrame(rows))
    assert "(each method's own: swav: its own loss) at each" in data.attrs["caption"]
    plt.close(fig)


def test_a_null_axis_value_is_named_by_a_dash_as_in_the_other_figures():
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": 50_000, "corruption": corruption,
             "seed": seed, "job_id": f"j{i}", "step": step, "epoch": step / 10, "loss": 4.0, "lr": 0.1}
            for i, (corruption, seed) in enumerate(((None, 0), (float("nan"), 1), ("jpeg:quality=10", 2)))
            for step in (10, 20)]
    fig, _ = curves.draw(pd.DataFrame(rows))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "— seed 0", "— seed 1", "jpeg:quality=10 seed 2"]
    plt.close(fig)


def test_a_whole_dataset_curve_beside_a_sized_one_is_named_apart_and_a_nan_first_loss_is_tabled_as_logged():
    """A job of the whole dataset (size null) beside one of 50k images: the size varies, so the lines are named apart
    ("all", "50k"); the table's first_loss is the first logged row's, NaN where it was NaN (first() would skip it)."""
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": size, "corruption": "none",
             "seed": 0, "job_id": f"j{i}", "step": step, "epoch": step / 10, "loss": loss, "lr": 0.1}
            for i, size in enumerate((None, 50_000)) for step, loss in ((10, math.nan), (20, 4.0))]
    fig, data = curves.draw(pd.DataFrame(rows))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["all", "50k"]
    plt.close(fig)
    table = curves.paper_table(data).set_index("job_id")
    assert math.isnan(table.loc["j0", "first_loss"]) and table.loc["j0", "last_loss"] == 4.0


def test_the_caption_names_five_pretraining_jobs_without_a_curve_and_counts_the_rest():
    table = pd.DataFrame({"stage": ["pretrain"] * 7 + ["evaluate"], "job_id": [f"j{i}" for i in range(7)] + ["e"]})
    note = curves._without_curve_note(table, {f"j{i}" for i in range(7)} | {"e", "unstarted"})
    assert note.startswith(" Not drawn: 7 pretraining job(s) with a result but no train_log.csv")
    assert note.endswith(": j0, j1, j2, j3, j4 and 2 more.")


def test_exactly_five_jobs_without_a_curve_are_named_with_no_count_of_more():
    table = pd.DataFrame({"stage": ["pretrain"] * 5, "job_id": [f"j{i}" for i in range(5)]})
    assert curves._without_curve_note(table, {f"j{i}" for i in range(5)}).endswith(": j0, j1, j2, j3, j4.")


def test_a_steps_budget_labels_the_x_axis_step():
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": size, "corruption": "none", "seed": 0,
             "job_id": f"j{size}", "step": step, "epoch": step * 1000 / size, "loss": 4.0, "lr": 0.1}
            for size in (1000, 4000) for step in (10, 20)]
    fig, data = curves.draw(pd.DataFrame(rows))
    assert fig.axes[0].get_xlabel() == "step" and "against steps (every job ran as many)" in data.attrs["caption"]
    plt.close(fig)
    fig, data = curves.draw(pd.DataFrame(rows).assign(epoch=lambda d: d["step"] / 10))
    assert fig.axes[0].get_xlabel() == "epoch" and "against epochs of each job's" in data.attrs["caption"]
    plt.close(fig)


def test_a_step_axis_ticks_whole_steps_even_where_each_job_logged_one_progress_line():
    """A tiny run (4 steps, one progress line a job) drew one point per job at step 4 on ticks 3.80, 3.85, ... 4.20:
    steps are counts; an epoch axis keeps its fractions."""
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": size, "corruption": "none", "seed": 0,
             "job_id": f"j{size}", "step": 4, "epoch": 4 * 128 / size, "loss": loss, "lr": 0.1}
            for size, loss in ((40, 3.6), (600, 3.7))]
    fig, _ = curves.draw(pd.DataFrame(rows))
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    shown = [t for t in ax.get_xticks() if low <= t <= high]
    plt.close(fig)
    assert ax.get_xlabel() == "step" and shown == [4.0]


def test_without_a_plan_a_pretraining_job_of_several_metrics_is_one_curve(tmp_path):
    """A supervised pretraining result records loss and train_top1 (two rows of results): its curve is read once,
    not drawn twice (a line that jumps back to its start) nor tabled twice in training_data.csv."""
    axes = {"method": "supervised", "dataset": "a", "size": 1000, "corruption": "none", "seed": 0}
    write_result(tmp_path / "w", {"job_id": "pre-sup", "stage": "pretrain", "grid": "g", "axes": axes,
                                  "metrics": [{"metric": "loss", "value": 1.0}, {"metric": "train_top1", "value": 0.5}],
                                  "protocol": {"epochs": 1}, "code_version": "0.1.0+git.test"})
    _write_curve(tmp_path / "w", "pre-sup", [3.0, 2.0, 1.0])
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    assert "training" in s.drawn
    data = pd.read_csv(tmp_path / "r" / "training_data.csv")
    assert data["step"].tolist() == [10, 20, 30] and set(data["job_id"]) == {"pre-sup"}


def test_a_panels_only_job_is_named_by_its_method_where_no_other_axis_varies():
    """One job per method, alike but for the method: each line is named by it (not left unnamed)."""
    rows = [{"method": m, "backbone": "resnet18", "dataset": "d", "size": 50_000, "corruption": None, "seed": 0,
             "job_id": m, "step": step, "epoch": step / 10, "loss": 4.0, "lr": 0.1}
            for m in ("simclr", "moco") for step in (10, 20)]
    fig, _ = curves.draw(pd.DataFrame(rows))
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes] == [["simclr"], ["moco"]]
    plt.close(fig)


def test_the_x_axis_compares_each_jobs_last_logged_step_not_its_first():
    """Both jobs logged step 10 first; one stopped at 50 (still running): epochs, as for any run still going."""
    rows = [("a", 10, 0.4), ("a", 150, 6.4), ("b", 10, 0.02), ("b", 50, 0.1)]
    assert curves.x_axis(pd.DataFrame(rows, columns=["job_id", "step", "epoch"])) == "epoch"


def test_a_curve_of_few_progress_lines_is_drawn_with_markers_and_a_long_one_without():
    """A job that logged one line so far still shows (a point); 20 lines or more read as a line alone."""
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": size, "corruption": None, "seed": 0,
             "job_id": str(size), "step": step, "epoch": step / 10, "loss": 4.0, "lr": 0.1}
            for size, n in ((50_000, 1), (1_000_000, 20)) for step in range(10, 10 * n + 1, 10)]
    fig, _ = curves.draw(pd.DataFrame(rows))
    assert [line.get_marker() for line in fig.axes[0].get_lines()] == [".", "None"]
    plt.close(fig)


def test_the_table_spells_a_size_as_the_figures_do_and_epochs_to_two_decimals():
    rows = [{"method": "simclr", "backbone": "resnet18", "dataset": "d", "size": 50_000, "corruption": None, "seed": 0,
             "job_id": "j", "step": step, "epoch": step / 30, "loss": 4.0, "lr": 0.1} for step in (5, 10)]
    table = curves.paper_table(pd.DataFrame(rows))
    assert table[["size", "steps", "epochs"]].to_dict("records") == [{"size": "50k", "steps": 10, "epochs": 0.33}]


def test_a_job_without_a_result_is_drawn_and_tabled_as_unfinished(tmp_path):
    """A half-done study: a pretraining stopped or failed at step 20 of its budget reads unfinished (its legend
    entry, the caption, the table's `finished`), not as a finished run of 20 steps beside the done ones."""
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    pre = [j for j in plan.jobs if j.stage == "pretrain"]
    (tmp_path / "w" / "results" / f"{pre[1].id}.json").unlink()  # stopped or failed: a curve, no result
    _write_curve(tmp_path / "w", pre[0].id, [5.0, 4.0, 3.5])
    _write_curve(tmp_path / "w", pre[1].id, [6.0, 5.5])
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    assert "training" in s.drawn and s.failed == []
    table = pd.read_csv(tmp_path / "r" / "training.csv").set_index("job_id")
    assert table["finished"].to_dict() == {pre[0].id: "yes", pre[1].id: "no"}
    html = (tmp_path / "r" / "index.html").read_text()
    assert "1 job(s) have no result yet (running, stopped or failed): their curves so far, named" in html
    rows = pd.DataFrame([{"method": "simclr", "backbone": "r", "dataset": "d", "size": size, "corruption": None,
                          "seed": 0, "job_id": f"j{size}", "step": step, "epoch": step / 10, "loss": 4.0, "lr": 0.1}
                         for size in (50, 100) for step in (10, 20)])
    fig, data = curves.draw(rows, finished={"j50"})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["50", "100 (so far)"]
    plt.close(fig)
    fig, data = curves.draw(rows)  # no word of results (a notebook's curves): nothing named unfinished
    assert "finished" not in data and "so far" not in data.attrs["caption"]
    assert "finished" not in curves.paper_table(data)
    plt.close(fig)


def test_a_random_init_job_without_a_curve_is_named_as_expected_apart_from_a_lost_curve():
    """The quickstart's random-init encoder trains nothing: its missing curve is no lost run folder, and the caption
    does not lump it with one."""
    table = pd.DataFrame({"stage": ["pretrain"] * 3, "job_id": ["r", "s", "t"], "method": ["random", "simclr", "moco"]})
    note = curves._without_curve_note(table, {"r", "s"})
    assert note == (" Not drawn: 1 pretraining job(s) with a result but no train_log.csv (its run folder lost it, or "
                    "is in another workdir): s."
                    " Not drawn either: 1 pretraining job(s) of a method that trains nothing (random: no loss to draw,"
                    " as expected): r.")
    assert curves._without_curve_note(table, {"r"}) == (" Not drawn: 1 pretraining job(s) of a method that trains "
                                                        "nothing (random: no loss to draw, as expected): r.")
