"""`index.html`: every figure and table of a report, the grid's name, the date, the code version, warnings and the
missing cells with the jobs they wait for. Self-contained (relative links only); an inline script records on
`<body data-images-loaded>` whether every image decoded (what the browser test reads)."""
from __future__ import annotations

import html
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from study.atomic import write_text
from study.report.tables import MISSING_MD, display_rows


@dataclass
class Section:
    name: str
    title: str
    caption: str = ""
    note: str = ""  # why it was skipped; empty when drawn
    files: dict[str, str] = field(default_factory=dict)  # format -> relative path (png, pdf, csv, md, tex, data)
    table: pd.DataFrame | None = None
    code: str = ""  # a block shown as written, below the caption (the rates' profile snippet)


@dataclass
class Page:
    grid: str
    date: str
    code_version: str
    summary: list[str]
    warnings: list[str]
    sections: list[Section]
    missing: pd.DataFrame | None
    downloads: dict[str, str]
    scope: str = ""  # `study report --where`: which of the grid's jobs it covers (`scope_text`); "" without it
    part: bool = False  # `--where` leaves some of the grid's jobs out (`leaves_jobs_out`): the title says so
    description: str = ""  # the grid file's `description:` (what the grid is: the quickstart's, a miniature)


CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#111}
h1{margin-bottom:.2em} .meta{color:#444} section{margin:2em 0;border-top:1px solid #ccc;padding-top:1em}
img{max-width:100%;height:auto;border:1px solid #eee} table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.missing{color:#777;font-style:italic;text-align:center}
.warnings{background:#fff4e5;border:2px solid #b26a00;padding:.5em 1em}
.note{color:#555;font-style:italic} pre{background:#f6f6f6;padding:.5em;overflow-x:auto}
figcaption{font-size:.9em;color:#333;margin-top:.3em}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
  document.body.dataset.imagesTotal = String(imgs.length);
  document.body.dataset.imagesBroken = bad.map(function (im) { return im.getAttribute('src'); }).join(' ');
  document.body.dataset.imagesLoaded = bad.length === 0 ? 'true' : 'false';
});
"""


def _td(v, text: str) -> str:
    """A table cell as `display_rows` wrote it: '—' (a missing value) marked, blank (not in the grid) left blank."""
    if text == MISSING_MD:
        return '<td class="missing">—</td>'
    cls = ' class="num"' if isinstance(v, numbers.Real) and not isinstance(v, bool) and text else ""  # counts too
    return f"<td{cls}>{html.escape(text)}</td>"


def table_html(df: pd.DataFrame) -> str:
    """The table as the Markdown file shows it (3 decimals, "mean ± std" over repeated seeds)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(_td(v, t) for v, t in zip(row, texts)) + "</tr>"
                   for row, texts in zip(df.itertuples(index=False), display_rows(df, MISSING_MD)))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _links(files: dict[str, str]) -> str:
    return " · ".join(f'<a href="{html.escape(p)}">{html.escape(fmt)}</a>' for fmt, p in files.items())


def render(page: Page) -> str:
    e = html.escape
    part = " (part of the grid)" if page.part else ""  # in the title too: a browser's tabs of the whole and a part
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>study report: {e(page.grid)}"
             f"{part}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>",
             f"<h1>Report: {e(page.grid)}{part}</h1>",
             *([f'<p class="description" id="description">{e(page.description)}</p>'] if page.description
               else []),
             *([f'<p class="scope" id="scope"><strong>Filtered:</strong> {e(page.scope)}.</p>'] if page.scope else []),
             f'<p class="meta">Generated {e(page.date)} · code version <code>{e(page.code_version)}</code></p>',
             "<ul>" + "".join(f"<li>{e(s)}</li>" for s in page.summary) + "</ul>",
             f"<p>Data: {_links(page.downloads)}</p>"]
    if page.warnings:
        parts.append('<div class="warnings" id="warnings"><h2>Warnings</h2><ul>'
                     + "".join(f"<li>{e(w)}</li>" for w in page.warnings) + "</ul></div>")
    parts.append('<nav><h2>Contents</h2><ul>' + "".join(
        f'<li><a href="#{e(s.name)}">{e(s.title)}</a>{" (skipped)" if s.note else ""}</li>' for s in page.sections)
        + '<li><a href="#missing">Missing cells</a></li></ul></nav>')
    for s in page.sections:
        parts.append(f'<section id="{e(s.name)}"><h2>{e(s.title)} <small><code>{e(s.name)}</code></small></h2>')
        if s.note:
            parts.append(f'<p class="note">Skipped: {e(s.note)}</p>')
        else:
            if "png" in s.files:
                parts.append(f'<figure><img src="{e(s.files["png"])}" alt="{e(s.title)}">'
                             f"<figcaption>{e(s.caption)}</figcaption></figure>")
            elif s.caption:
                parts.append(f"<p>{e(s.caption)}</p>")
            if s.code:
                parts.append(f"<pre>{e(s.code)}</pre>")
            parts.append(f"<p>Files: {_links(s.files)}</p>")
            if s.table is not None:
                parts.append(table_html(s.table))
        parts.append("</section>")
    parts.append('<section id="missing"><h2>Missing cells</h2>')
    if page.missing is None:
        parts.append('<p class="note">No plan was available: missing cells cannot be listed.</p>')
    elif page.missing.empty:
        parts.append("<p>None: every planned job has a result.</p>")
    else:
        parts.append(f"<p>{len(page.missing)} planned job(s) have no result yet; each waits for the jobs named.</p>")
        parts.append(table_html(page.missing))
    parts.append("</section></body></html>\n")
    return "\n".join(parts)


def write_index(out: Path, page: Page) -> Path:
    path = Path(out) / "index.html"
    write_text(path, render(page))
    return path
