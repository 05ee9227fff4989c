"""study/report/html.py: index.html from a Page (the whole report build is test_report's)."""
import pandas as pd

from study.report.html import Page, Section, render


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
