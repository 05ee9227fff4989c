"""Tables as CSV (full precision; a missing cell is empty; means only), Markdown and LaTeX (3 decimals, "mean ± std"
where seeds were repeated, "(k/n)" after a cell with k of its n planned seeds; missing shown as '—' / '--', never 0;
a cell not in the grid, where a table marks it, empty). Number columns (counts too) are right-aligned; in LaTeX a
negative number has a minus sign, not a hyphen, and a column of prose (a cell of words over `WRAP_AT` characters:
the findings' text) wraps, ragged right, in a paragraph column `WRAP_WIDTH` wide, not in one line pages long."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from study.atomic import write_text
from study.results.table import is_null

MISSING_MD = "—"
MISSING_TEX = "--"


def _cell_text(v, missing: str, digits: int = 3) -> str:
    """A table value as text: `missing` for a null, a float to `digits` places, anything else as str."""
    if is_null(v):
        return missing
    if isinstance(v, float):
        text = f"{v:.{digits}f}"
        return text[1:] if text.lstrip("-0.") == "" and text.startswith("-") else text  # -0.0001: "0.000", not "-0.000"
    return str(v)


def display_rows(df: pd.DataFrame, missing: str) -> list[list[str]]:
    """Each row's cells as text: 3 decimals, `missing` for a missing value, "mean ± std" where the frame's
    `attrs["spread"]` (see figures.common.wide) has a spread for that cell (two or more seeds), then " (k/n)" where
    its `attrs["partial"]` says the cell has k of its n planned seeds; empty where its `attrs["absent"]` marks the
    cell as not in the grid."""
    spread, partial, absent = df.attrs.get("spread"), df.attrs.get("partial"), df.attrs.get("absent")
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        spreads = spread.iloc[i] if spread is not None and i < len(spread) else {}
        partials = partial.iloc[i] if partial is not None and i < len(partial) else {}
        blanks = absent.iloc[i] if absent is not None and i < len(absent) else {}
        cells = []
        for col, v in zip(df.columns, row):
            if bool(blanks.get(col, False)):
                cells.append("")
                continue
            text = _cell_text(v, missing)
            s = spreads.get(col)
            if text != missing and isinstance(s, float) and not math.isnan(s):
                text += f" ± {s:.3f}"
            if text != missing and isinstance(partials.get(col), str):
                text += f" ({partials.get(col)})"
            cells.append(text)
        rows.append(cells)
    return rows


def is_number_column(column: pd.Series) -> bool:
    """Whether a table's column holds numbers (floats or counts, not booleans): right-aligned."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def to_markdown(df: pd.DataFrame) -> str:
    header = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
             "|" + "|".join("---:" if is_number_column(df[c]) else "---" for c in df.columns) + "|"]
    for cells in display_rows(df, MISSING_MD):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "|": r"\textbar{}",
                "<": r"\textless{}", ">": r"\textgreater{}",  # OT1, LaTeX's default font encoding, sets '<' as '¡'
                "—": "--", "·": r"$\cdot$", "→": r"$\to$", "Δ": r"$\Delta$", "±": r"$\pm$"}
_NEGATIVE = re.compile(r"^-(?=\d)")  # a cell's leading '-' before a digit: a number's sign ('--' is missing)
WRAP_AT = 60  # characters: a text column with a longer cell of words is set as a paragraph column
WRAP_WIDTH = r"0.25\linewidth"


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in s)


def _tex_cell(text: str) -> str:
    r"""A displayed cell as LaTeX: escaped, a negative number's hyphen made a minus sign ("$-$0.120"), and a cell
    that begins with '[' or '*' led by `{}`: after the `\\` that ends the row before (or `\toprule`, `\midrule`)
    a '[' would be read as its optional argument (a "Missing number" error), a '*' as its star, dropped."""
    text = _NEGATIVE.sub("$-$", tex_escape(text))
    return "{}" + text if text.startswith(("[", "*")) else text


def to_latex(df: pd.DataFrame, caption: str = "") -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}) under its caption as a one-line comment (a line break in
    `caption` would end the comment: the rest would be set as text). A paragraph column (`WRAP_AT`) sets its cells
    ragged right, and rows then end in \\tabularnewline (the \\\\ that \\raggedright redefines ends no row)."""
    rows = display_rows(df, MISSING_TEX)
    wrap = [not is_number_column(df[c]) and any(len(r[i]) > WRAP_AT and " " in r[i] for r in rows)  # prose
            for i, c in enumerate(df.columns)]
    align = "".join(f"p{{{WRAP_WIDTH}}}" if w else "r" if is_number_column(df[c]) else "l"
                    for c, w in zip(df.columns, wrap))
    end = " \\tabularnewline" if any(wrap) else " \\\\"
    comment = f"% {tex_escape(' '.join(caption.split()))}" if caption.strip() else "% study report table"
    lines = [comment, f"\\begin{{tabular}}{{{align}}}", "\\toprule",
             " & ".join(_tex_cell(str(c)) for c in df.columns) + end, "\\midrule"]
    for cells in rows:
        lines.append(" & ".join(("\\raggedright " if w and c else "") + _tex_cell(c) for c, w in zip(cells, wrap))
                     + end)
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


COUNT_COLUMNS = ("size", "labeled_size", "count", "n_jobs", "seed", "level_index",  # counts, never 3 decimals
                 "values")  # granularity: a level's number of values


def with_integer_counts(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with each count column that holds whole numbers as nullable integers (a float column only because a
    value is missing prints 40 as '40.000')."""
    out = df
    for c in COUNT_COLUMNS:
        if c in df and pd.api.types.is_float_dtype(df[c]):
            values = df[c].dropna()
            if (values == values.round()).all():
                out = out.assign(**{c: df[c].astype("Int64")})
    return out


TABLE_FORMATS = ("csv", "md", "tex")


def table_paths(out: str | Path, name: str, formats: tuple[str, ...] = TABLE_FORMATS) -> dict[str, Path]:
    """The files `write_tables` writes for `name` in `formats`, by format."""
    return {fmt: Path(out) / f"{name}.{fmt}" for fmt in formats}


def write_tables(df: pd.DataFrame, out: Path, name: str, caption: str = "",
                 formats: tuple[str, ...] = TABLE_FORMATS) -> dict[str, Path]:
    """Write `<name>.csv`, `<name>.md` and `<name>.tex` (those of `formats`) under `out`; returns their paths by
    format."""
    df = with_integer_counts(df)
    paths = table_paths(out, name, formats)
    text = {"csv": lambda: df.to_csv(index=False), "md": lambda: to_markdown(df),  # floats: shortest round trip
            "tex": lambda: to_latex(df, caption)}
    for fmt, path in paths.items():
        write_text(path, text[fmt]())
    return paths
