"""Layer 3, report: `study report GRID` -> results.parquet, the paper's figures (PNG, PDF) and tables (Markdown,
CSV, LaTeX), and index.html. `build_report(workdir, out, plan)` is the library entry point (imported on first use,
with matplotlib and seaborn: not for every `study` command); it leaves the caller's matplotlib backend, rcParams and
open figures as they were (a notebook's own figures keep their look)."""

__all__ = ["ReportSummary", "build_report"]


def __getattr__(name: str):
    if name in __all__:
        from study.report import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too: `dir()`, `help()` and a notebook's tab completion list them before their first use."""
    return sorted({*globals(), *__all__})
