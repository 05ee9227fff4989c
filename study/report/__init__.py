"""Layer 3, report: `study report GRID` -> results.parquet, the paper's figures (PNG, PDF) and tables (Markdown,
CSV, LaTeX), and index.html. `build_report(workdir, out, plan)` is the library entry point (imported on first use,
with matplotlib and seaborn: not for every `study` command); it leaves the caller's matplotlib backend, rcParams and
open figures as they were (a notebook's own figures keep their look)."""
from study.lazy import lazy_names

__all__ = ["ReportSummary", "build_report"]

__getattr__, __dir__ = lazy_names(__name__, "study.report.build", __all__, __all__)
