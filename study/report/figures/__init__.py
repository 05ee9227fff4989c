"""The report's figures, in the order the report shows them. Each module has `NAME`, `TITLE` (ending with the
paper's figure or table it redraws: "(paper: CVPR Fig. 2)"; numbers differ between arXiv v1 and CVPR),
`DRAWS` (the evaluation protocols whose cells it draws: the report names the others' cells as drawn by no figure),
`draw(table, expected=None) -> (matplotlib Figure, plotted data DataFrame)` (raising `NoData` when the grid has
nothing for it) and `paper_table(data) -> DataFrame`. Adding a figure is one new module and one line here.

From a notebook (reports/README.md, "In a notebook"): `table` is a results table of one job per seed
(results.parquet, or `drop_repeated_seeds(collect(workdir))[0]`), `expected` the planned jobs
(`gather(workdir, plan).planned`); the caption is `data.attrs["caption"]`. A figure drawn outside `build_report` has
matplotlib's look unless drawn inside `plt.rc_context()` after `study.report.style.apply()`, and a legend right of its
panels: save it with `bbox_inches="tight"`, or the legend is cut off."""
from study.report.figures import domain_concat, domain_matrix, domain_pooling, granularity, quality, quantity
from study.report.figures.common import NoData

FIGURES = (quantity, domain_matrix, domain_pooling, domain_concat, quality, granularity)
DRAWN_PROTOCOLS = frozenset(p for figure in FIGURES for p in figure.DRAWS)  # those some figure draws

__all__ = ["DRAWN_PROTOCOLS", "FIGURES", "NoData"]
