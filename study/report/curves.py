"""`training` (ours: the paper shows no curves): each pretraining job's loss against epochs, read from its run
folder's curve file (`<workdir>/jobs/<id>/train_log.csv`, study.train.curve), a panel per method (their losses are
not comparable), a line per job; the curve so far of a job without a result yet (running, stopped or failed), named so.
`Figure(workdir, jobs)` is this figure with the interface of study.report.figures' modules (NAME, TITLE, draw,
paper_table)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from study.launch.runner import job_dir
from study.report import style
from study.report.figures.common import NoData, fmt_axis, fmt_size, method_key, not_trained_here
from study.train.curve import FILE, read_curve

NAME = "training"
TITLE = "Training: pretraining loss (ours, not in the paper)"
AXES = ("method", "backbone", "dataset", "size", "corruption", "seed")  # what tells a job's line apart
LEGEND_MAX = 12  # lines a panel's legend names; with more, training.csv names each job's axes


def gather(workdir: str | os.PathLike, jobs: list[tuple[str, dict[str, Any]]]) -> pd.DataFrame:
    """Rows (AXES, job_id, step, epoch, loss, lr) of the curve file of each (job id, axes) that has one."""
    frames = []
    for job_id, axes in jobs:
        rows = read_curve(job_dir(workdir, job_id) / FILE)
        if rows:
            curve = pd.DataFrame(rows).reindex(columns=["step", "epoch", "loss", "lr"]).apply(pd.to_numeric,
                                                                                          errors="coerce")
            frames.append(curve.assign(job_id=job_id, **{k: axes.get(k) for k in AXES}))
    columns = [*AXES, "job_id", "step", "epoch", "loss", "lr"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


UNFINISHED = " (so far)"  # a line's label where its job has no result yet: running, stopped or failed


def _label(line: pd.Series, varying: list[str]) -> str:
    parts = [("seed " if k == "seed" else "") + fmt_axis(k, line[k]) for k in varying if k != "method"]
    return (" ".join(parts) or str(line["method"])) + ("" if line.get("finished", True) else UNFINISHED)


# what each paper method's training loss is, for the caption (another method's: "its own loss")
LOSSES = {"simclr": "NT-Xent", "moco": "InfoNCE", "byol": "regression of the target's projection",
          "supervised": "cross-entropy"}


def x_axis(curves: pd.DataFrame) -> str:
    """"step" where every job logged the same last step but not the same last epoch (a `steps` budget over
    pretraining sets of several sizes), else "epoch" (an `epochs` budget, or runs still going)."""
    last = curves.groupby("job_id")[["step", "epoch"]].max()
    return "step" if last["step"].nunique() == 1 and last["epoch"].nunique() > 1 else "epoch"


def draw(curves: pd.DataFrame, finished: set[str] | None = None):
    """(figure, plotted data): loss against epoch (or step: `x_axis`), a panel per method, a line per job. With
    `finished` (the jobs with a result), the data says which (`finished`), and the others' lines are named so far."""
    if curves.empty:
        raise NoData("no pretraining job has written a curve yet (its run folder's train_log.csv)")
    if finished is not None:
        curves = curves.assign(finished=curves["job_id"].isin(finished))
    methods = sorted(curves["method"].dropna().unique(), key=method_key)
    varying = [k for k in AXES if curves[k].nunique(dropna=False) > 1]
    x = x_axis(curves)
    fig, axes = plt.subplots(1, len(methods), figsize=(6.4 * len(methods), 3.4), squeeze=False)
    by_job = dict(tuple(curves.groupby("job_id", sort=False)))  # each job's rows, in order: split once, not per job
    for ax, method in zip(axes[0], methods):
        jobs = curves[curves["method"] == method].drop_duplicates("job_id")
        for i, (_, job) in enumerate(jobs.iterrows()):
            line = by_job[job["job_id"]]
            look = style.line_style(i, len(jobs))  # colour and line style: many dark lines still told apart
            ax.plot(line[x], line["loss"], color=look["color"], linestyle=look["linestyle"], linewidth=1.2,
                    marker="." if len(line) < 20 else None, label=_label(job, varying))
        ax.set_title(str(method) if len(jobs) <= LEGEND_MAX else f"{method} ({len(jobs)} jobs: see training.csv)")
        ax.set_xlabel(x)
        if x == "step":  # a count: no tick at step 3.9 where every job logged one point
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_ylabel("training loss")
        if len(jobs) <= LEGEND_MAX:  # more would run off the figure; titled by what names its lines ("size")
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), title_fontsize=7,
                      title=", ".join(k for k in varying if k != "method") or None)
    style.tight_layout(fig)
    against = "steps (every job ran as many)" if x == "step" else "epochs of each job's pretraining images"
    losses = "; ".join(f"{m}: {LOSSES.get(str(m), 'its own loss')}" for m in methods)
    curves.attrs["caption"] = (f"Pretraining loss (each method's own: {losses}) at each progress line, averaged over "
                               f"the steps since the previous one, against {against}; a line per job.")
    unfinished = curves.loc[~curves["finished"], "job_id"].nunique() if "finished" in curves else 0
    if unfinished:
        curves.attrs["caption"] += (f" {unfinished} job(s) have no result yet (running, stopped or failed): their "
                                    f"curves so far, named '{UNFINISHED.strip()}' (in the table: finished no).")
    return fig, curves


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """A row per job: its axes, steps and epochs logged so far, first and last logged loss, and whether it finished
    (where the data says)."""
    by_job = data.groupby("job_id", sort=False)
    out = by_job[list(AXES)].first()
    out["steps"] = by_job["step"].max()
    out["epochs"] = by_job["epoch"].max().round(2)
    out["first_loss"] = by_job["loss"].agg(lambda s: s.iloc[0])  # NaN where it diverged (first()/last() skip NaN)
    out["last_loss"] = by_job["loss"].agg(lambda s: s.iloc[-1])
    if "finished" in data:  # a job's last step is not its budget's until it has a result
        out["finished"] = by_job["finished"].first().map({True: "yes", False: "no"})
    return out.reset_index().assign(size=lambda d: d["size"].map(fmt_size))


def _finished(table: pd.DataFrame) -> set[str]:
    """The pretraining jobs with a result in `table`."""
    return set(table.loc[table["stage"] == "pretrain", "job_id"]) if not table.empty else set()


def _without_curve_note(table: pd.DataFrame, no_curve: set[str]) -> str:
    """The caption's note of the jobs in `no_curve` that have a pretraining result in `table` (a job not yet
    started has neither), so that a line missing from the figure is accounted for."""
    lacking = sorted(no_curve & _finished(table))
    if not lacking:
        return ""
    methods = {} if "method" not in table else dict(zip(table["job_id"], table["method"]))
    idle = [j for j in lacking if not_trained_here(methods.get(j))]  # no curve to draw: not a lost one
    lost = [j for j in lacking if j not in idle]

    def shown(ids: list[str]) -> str:
        return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    note = ""
    if lost:
        note += (f" Not drawn: {len(lost)} pretraining job(s) with a result but no {FILE} (its run folder lost it, "
                 f"or is in another workdir): {shown(lost)}.")
    if idle:
        kinds = ", ".join(sorted({str(methods[j]) for j in idle}))
        note += (f" Not drawn{' either' if lost else ''}: {len(idle)} pretraining job(s) of a method that trains "
                 f"nothing ({kinds}: no loss to draw, as expected): {shown(idle)}.")
    return note


@dataclass(frozen=True)
class Figure:
    """The `training` figure over the curves of `jobs` ((job id, axes) pairs) under `workdir`."""

    workdir: Any
    jobs: tuple
    NAME: str = NAME
    TITLE: str = TITLE

    def draw(self, table: pd.DataFrame, expected: pd.DataFrame | None = None):
        if not self.jobs:
            raise NoData("no pretraining job: none in the plan (without a plan: none with a result)")
        fig, data = draw(gather(self.workdir, list(self.jobs)), _finished(table))
        data.attrs["caption"] += _without_curve_note(table, {job_id for job_id, _ in self.jobs} - set(data["job_id"]))
        return fig, data

    @staticmethod
    def paper_table(data: pd.DataFrame) -> pd.DataFrame:
        return paper_table(data)
