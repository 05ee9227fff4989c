"""`study report`'s warnings of stale results drawn (a manifest rebuilt under the same name): one per result, but
one per cause where many results share it."""
from __future__ import annotations

from report_records import eval_axes, plan_for, records, write_all

from study.report import build_report
from study.report.build import STALE_LISTED


def test_many_results_on_one_rebuilt_manifest_are_one_warning(tmp_path, monkeypatch):
    """A test manifest rebuilt under a grid's evaluations made the report warn once per result (a hundred lines
    that said one thing, in the terminal and atop index.html; `study status` lists 8): now one warning names the
    cause, how many results, the first few, and where the rest are listed."""
    import study.manifests.store as store

    recs = []
    for size in (1000, 2000, 4000):
        recs += records(eval_axes(size=size), {(10000, None): 0.5}, protocol={
            "train_manifest": "a_train", "train_manifest_content_hash": "OLDHASH00000"})
    assert len(recs) == 6 > STALE_LISTED
    write_all(tmp_path / "w", recs)
    monkeypatch.setattr(store, "load_meta", lambda name: {"content_hash": "NEWHASH11111"})
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(recs), log=None)
    (stale,) = [w for w in s.warnings if "OLDHASH00000" in w]
    listed = ", ".join(f"evaluate job {r['job_id']}" for r in recs[:STALE_LISTED])
    assert stale == (f"6 results ({listed} and 2 more: `study status` lists them): its result used manifest a_train "
                     "with content OLDHASH00000, which now holds NEWHASH11111: shown, but `study submit` refuses to "
                     "go on until they are moved away (`study submit --set-aside-stale`) or the old manifest "
                     "restored"), stale
