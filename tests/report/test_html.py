"""study/report/html.py: index.html from a Page (the whole report build is test_report's)."""
import os
import re

import pandas as pd

from study.report.html import Page, Section, render, write_index


def _page(**kw):
    base = dict(grid="g", date="2024-01-01", code_version="0.1", summary=[], warnings=[], sections=[], missing=None,
                downloads={})
    return Page(**{**base, **kw})


def test_index_html_escapes_table_headers_cells_and_warnings():
    table = pd.DataFrame({"method<x>": ["a<b & c"], "top1": [0.5]})
    html = render(_page(warnings=["job <script>alert(1)</script>: 1 metric(s) recorded without a value"],
                        sections=[Section("quantity", "Quantity", files={"png": "quantity.png"}, table=table)]))
    assert "<th>method&lt;x&gt;</th>" in html and "<td>a&lt;b &amp; c</td>" in html
    assert "<li>job &lt;script&gt;alert(1)&lt;/script&gt;: 1 metric(s)" in html
    assert "<script>alert" not in html and "<b &" not in html and "<x>" not in html


def test_a_plan_with_every_job_done_says_so_in_index_html():
    done = pd.DataFrame(columns=["job_id", "stage", "state", "waits_for"])  # what build_report passes: no row
    html = render(_page(missing=done))
    assert "<p>None: every planned job has a result.</p>" in html and "planned job(s) have no result yet" not in html


def test_index_html_marks_a_missing_cell_right_aligns_a_number_and_leaves_a_blank_cell_plain():
    table = pd.DataFrame({"method": ["simclr", "moco", "byol"], "top1": [0.5, float("nan"), float("nan")]})
    table.attrs["absent"] = pd.DataFrame({"top1": [False, False, True]})  # byol's cell: not in the grid
    html = render(_page(sections=[Section("quantity", "Quantity", files={"png": "quantity.png"}, table=table)]))
    assert "<tr><td>simclr</td><td class=\"num\">0.500</td></tr>" in html
    assert "<tr><td>moco</td><td class=\"missing\">—</td></tr>" in html
    assert "<tr><td>byol</td><td></td></tr>" in html


def test_index_html_lists_a_skipped_figure_as_skipped_and_says_when_no_plan_names_missing_cells():
    sections = [Section("quantity", "Quantity", caption="top-1", files={"png": "quantity.png"}),
                Section("granularity", "Granularity", note="no per-level (granularity) results in this grid")]
    html = render(_page(sections=sections, missing=None))
    assert '<li><a href="#quantity">Quantity</a></li>' in html
    assert '<li><a href="#granularity">Granularity</a> (skipped)</li>' in html
    assert '<p class="note">Skipped: no per-level (granularity) results in this grid</p>' in html
    assert '<img src="quantity.png" alt="Quantity"><figcaption>top-1</figcaption>' in html
    assert '<p class="note">No plan was available: missing cells cannot be listed.</p>' in html


def test_index_html_counts_the_planned_jobs_without_a_result():
    missing = pd.DataFrame({"job_id": ["e1", "e2"], "stage": ["evaluate"] * 2, "state": ["failed", "pending"],
                            "waits_for": ["p1", "p1"]})
    html = render(_page(missing=missing))
    assert "<p>2 planned job(s) have no result yet; each waits for the jobs named.</p>" in html
    assert "<tr><td>e2</td><td>evaluate</td><td>pending</td><td>p1</td></tr>" in html


def test_every_contents_link_leads_to_its_section_and_the_missing_cells():
    sections = [Section("quantity", "Data quantity", files={"png": "quantity.png"}),
                Section("granularity", "Label granularity", note="no per-level (granularity) results in this grid")]
    html = render(_page(sections=sections, missing=None))
    targets = re.findall(r'href="#([^"]+)"', html)
    assert targets == ["quantity", "granularity", "missing"]
    assert all(html.count(f'id="{t}"') == 1 for t in targets)
    assert '<section id="quantity"><h2>Data quantity' in html


def test_file_and_data_links_point_to_the_files_they_name():
    files = {"png": "quantity.png", "csv": "quantity.csv", "plotted data": "quantity_data.csv"}
    html = render(_page(sections=[Section("quantity", "Quantity", files=files)],
                        downloads={"results.parquet": "results.parquet", "cells.csv": "cells.csv"}))
    assert ('<p>Files: <a href="quantity.png">png</a> · <a href="quantity.csv">csv</a> · '
            '<a href="quantity_data.csv">plotted data</a></p>') in html
    assert '<p>Data: <a href="results.parquet">results.parquet</a> · <a href="cells.csv">cells.csv</a></p>' in html


def test_a_file_link_escapes_its_path():
    html = render(_page(sections=[Section("quantity", "Quantity", files={"csv": 'a&b"c.csv'})]))
    assert '<a href="a&amp;b&quot;c.csv">csv</a>' in html


def test_the_grid_code_version_and_summary_are_escaped_and_a_section_without_a_figure_shows_its_caption():
    html = render(_page(grid="g<1>", code_version="v<2>", summary=["a<b"],
                        sections=[Section("findings", "Findings", caption="x < y", files={"csv": "findings.csv"})]))
    assert "<h1>Report: g&lt;1&gt;</h1>" in html and "<code>v&lt;2&gt;</code>" in html and "<li>a&lt;b</li>" in html
    assert "<p>x &lt; y</p>" in html and "<img" not in html


def test_a_figure_caption_is_escaped_and_index_html_is_replaced_whole(tmp_path):
    """A rebuild renames a new index.html onto the name (study.atomic): a reader of the earlier one (here a hard link
    to it) keeps it whole."""
    page = _page(sections=[Section("quantity", "Quantity", caption="top-1 <x>", files={"png": "quantity.png"})])
    assert "<figcaption>top-1 &lt;x&gt;</figcaption>" in render(page)
    first = write_index(tmp_path, page)
    os.link(first, tmp_path / "kept.html")
    before = first.read_text()
    second = write_index(tmp_path, _page(grid="h"))
    assert (tmp_path / "kept.html").read_text() == before and not os.path.samefile(second, tmp_path / "kept.html")
