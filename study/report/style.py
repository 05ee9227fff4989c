"""One look for every figure: seaborn's paper context, and series told apart by marker, line style and hatch as
well as by colour (a palette whose lightness varies), so that a grayscale print stays readable."""
from __future__ import annotations

import warnings

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# each but the first with gaps a reader sees (5 on, 1 off reads as solid: last, for an eighth method only)
LINESTYLES = ("-", "--", "-.", ":", (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)), (0, (1, 2)), (0, (5, 1)))
HATCHES = ("", "//", "..", "xx", "\\\\", "--", "++", "oo", "||", "**")
REFERENCE = {"color": "black", "linestyle": (0, (1, 1)), "marker": "x", "linewidth": 1.4}  # scratch baseline
UNTRAINED = "0.55"  # the line of an encoder not trained on the grid's images (random-init, imported), colours by size
HIGHLIGHT = "#d95f02"  # an outline that reads on white and on black cells (contrast >= 3 against both)
DPI = 150


def tight_layout(fig, rect=None) -> None:
    """`fig.tight_layout(rect=rect)`, without matplotlib's warning where long labels leave it no room: figures are
    saved with bbox "tight" (`apply`), which keeps every label whole all the same."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tight layout not applied", category=UserWarning)
        fig.tight_layout(rect=rect)


def tilt_crowded_xticks(ax, rotation: float = 20) -> None:
    """Tilt `ax`'s x tick labels (right-aligned, as the quality figure's) where two neighbours would overlap level
    (long dataset names side by side), and lay the figure out again; else leave them level. Call after the layout."""
    fig = ax.figure
    fig.draw_without_rendering()  # the labels' places after the layout
    boxes = sorted((t.get_window_extent() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()),
                   key=lambda b: b.x0)
    if any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:])):
        for t in ax.get_xticklabels():
            t.set(rotation=rotation, ha="right", rotation_mode="anchor")
        tight_layout(fig)


def palette(n: int) -> list:
    """`n` colours from dark to light (distinct in grayscale too); past 8, spread no lighter than the 8th of 8
    (cubehelix runs to white: the lightest of 60 training curves would vanish on the page)."""
    n = max(n, 1)
    if n <= 8:
        return sns.color_palette("cubehelix", n_colors=n + 1)[:n]
    return [tuple(matplotlib.colormaps["cubehelix"](0.8 * k / n)[:3]) for k in range(1, n + 1)]


def line_style(i: int, n: int, dash: int | None = None) -> dict:
    """Keyword arguments for the i-th of n lines: colour, marker and line style all differ; with `dash`, the line
    style is the dash-th instead (a second property told apart by it, e.g. the method where colour is the size)."""
    return {"color": palette(n)[i % max(n, 1)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[(i if dash is None else dash) % len(LINESTYLES)], "linewidth": 1.6,
            "markersize": 5}


def hollow_partial(ax, x, y, partial, look: dict) -> int:
    """Redraw as hollow (white face, edge in the line's colour) the points of a line drawn with `look` whose cell
    has fewer seeds than planned (`partial` not None: `cells`' "k/n"); returns how many. A line whose marker has no
    face to empty (the scratch line's `x`) gets a hollow circle there instead: an `x` drawn hollow looks filled."""
    hit = [(xi, yi) for xi, yi, p in zip(x, y, partial) if isinstance(p, str) and not np.isnan(yi)]
    if hit:
        xs, ys = zip(*hit)
        marker = look.get("marker", "o")
        if marker not in matplotlib.lines.Line2D.filled_markers:
            marker = "o"
        ax.plot(xs, ys, linestyle="none", marker=marker, markersize=look.get("markersize", 5) + 1,
                markerfacecolor="white", markeredgecolor=look["color"], markeredgewidth=1.4, zorder=3)
    return len(hit)


PARTIAL_LABEL = "hollow: fewer seeds than planned"  # a marker key, not a line (under the legend title)


def hollow_handle() -> matplotlib.lines.Line2D:
    """A legend entry for `hollow_partial`'s points (label `PARTIAL_LABEL`): a hollow grey circle, no line."""
    return matplotlib.lines.Line2D([], [], linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                                   markeredgecolor="0.3", markeredgewidth=1.4)


def bar_style(i: int, n: int) -> dict:
    """Keyword arguments for the i-th of n bar series: colour, hatch, black edge."""
    return {"color": palette(n)[i % max(n, 1)], "hatch": HATCHES[i % len(HATCHES)], "edgecolor": "black",
            "linewidth": 0.6}


def grouped_bars(ax, data, group_cols, groups: list, series_col: str, series: list, legend: bool = True,
                 colours: dict | None = None, compact: bool = False) -> None:
    """One bar per (group, series) of `data` (columns `mean`, `std`): the series side by side around each group's
    tick, std as error bars, a vertical "missing" where `data` has the cell without a value (a planned cell not yet
    done; a (group, series) absent from `data` is not in the grid and stays blank), written from 0 towards the side
    with more room (down where the bars hang below 0, as changes from a baseline do), so it stays inside the axes;
    a bar too near 0 to see (a change of 0.000) also gets a thick dash in its colour, above a line at 0;
    `colours` (series -> colour) replaces `bar_style`'s; with `compact`, a group leaves no slot for a series absent
    from it (its bars side by side around its tick, in `series`' order), else every group has a slot for each series;
    legend outside on the right."""
    subs = [data[data[series_col] == name].assign(_present=True).set_index(group_cols).reindex(groups)
            for name in series]
    present = np.array([sub["_present"].eq(True).to_numpy() for sub in subs], dtype=bool).reshape(len(series), -1)
    slots = present.sum(axis=0) if compact else np.full(len(groups), len(series))  # per group
    width = 0.8 / max(int(slots.max(initial=0)), 1)
    missing, flat, slot_xs = [], [], []
    for i, (name, sub) in enumerate(zip(series, subs)):
        slot = present[:i + 1].sum(axis=0) - 1 if compact else np.full(len(groups), i)
        x = np.arange(len(groups)) + (slot - (slots - 1) / 2) * width
        means = sub["mean"].astype(float)
        look = {**bar_style(i, len(series)), **({"color": colours[name]} if colours and name in colours else {})}
        ax.bar(x, means, width, yerr=sub["std"].astype(float), label=name, **look)
        missing += [xi for xi, v, here in zip(x, means, present[i]) if np.isnan(v) and here]
        flat += [(xi, v, look["color"]) for xi, v, here in zip(x, means, present[i]) if here and not np.isnan(v)]
        slot_xs += [xi for xi, here in zip(x, present[i]) if here]
    if slot_xs:  # a bar without a value sets no limit: its slot, and its "missing", would lie outside the axes
        left, right = min(slot_xs) - width / 2, max(slot_xs) + width / 2
        margin = ax.margins()[0] * (right - left)  # matplotlib's own margin around the bars
        lo, hi = ax.get_xlim() if flat else (np.inf, -np.inf)  # no bar drawn: limits of nothing
        ax.set_xlim(min(lo, left - margin), max(hi, right + margin))
    low, high = ax.get_ylim()
    for xi, v, colour in flat:
        if abs(v) <= 0.01 * (high - low):  # under ~2 px in a 3-inch panel
            ax.hlines(v, xi - 0.4 * width, xi + 0.4 * width, colors=[colour], linewidth=3, zorder=2.5, clip_on=False)
    for xi in missing:
        ax.text(xi, 0, "missing", rotation=90, ha="center", va="bottom" if high >= -low else "top", fontsize=7,
                color="0.3")
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))


class PercentTicks(matplotlib.ticker.Formatter):
    """An accuracy (a fraction) in percent with the decimals its axis' ticks need, the same for each tick of the
    axis ("20%", "25%"; "41.0%", "41.5%"): matplotlib's PercentFormatter picks them from the axis' span instead,
    "25.0%" on a panel spanning 20 points beside "30%" on one spanning 60."""

    @staticmethod
    def _decimals(v: float) -> int:
        text = f"{round(v * 100, 6):f}".rstrip("0")  # "41.500000" -> "41.5"; "nan", "inf": no decimals
        return len(text.split(".")[1]) if "." in text else 0

    def __call__(self, x: float, pos=None) -> str:
        return self.format_ticks([x])[0]

    def format_ticks(self, values) -> list[str]:
        """Each tick's label; none for a tick past 0-100% (an axis' margin around a line at 100% showed "105%",
        an accuracy no cell can have)."""
        shown = [-1e-9 <= v <= 1 + 1e-9 for v in values]
        digits = max((self._decimals(v) for v, ok in zip(values, shown) if ok), default=0)
        return [self.fix_minus(f"{round(v * 100, 6) + 0:.{digits}f}%") if ok else ""  # + 0: no "-0%"
                for v, ok in zip(values, shown)]


def percent_axis(ax, points: bool = False) -> None:
    """Label `ax`'s y ticks of an accuracy (a fraction, as the tables hold it) in percent, as the paper's figures
    do ("40%", `PercentTicks`); with `points`, of a difference of accuracies, in percentage points ("+5", "-2.5")."""
    from matplotlib.ticker import FuncFormatter

    if not points:
        ax.yaxis.set_major_formatter(PercentTicks())
        return

    def point(v: float, _pos) -> str:
        v = round(v * 100, 6)  # no 4.999999
        return "0" if v == 0 else f"{v:+g}".replace("-", "\N{MINUS SIGN}")  # as matplotlib's own ticks

    ax.yaxis.set_major_formatter(FuncFormatter(point))


def apply() -> None:
    """Set the report's style in the global rcParams (idempotent): call it inside `plt.rc_context()`, which puts a
    caller's own style back after."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": DPI, "savefig.bbox": "tight", "axes.titlesize": "medium",
        "legend.frameon": False, "hatch.linewidth": 0.6, "pdf.fonttype": 42, "svg.hashsalt": "study",
        "errorbar.capsize": 2.5,
    })
