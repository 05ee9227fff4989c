"""The report's `training` figure: each pretraining job's curve file (study.train.curve) drawn from its run folder."""
from __future__ import annotations

import pandas as pd
from report_records import plan_for, quantity_records, write_all

from study.launch.runner import job_dir
from study.report import build_report
from study.train.curve import TrainingCurve


def _write_curve(workdir, job_id, losses):
    curve = TrainingCurve(job_dir(workdir, job_id))
    curve.path.parent.mkdir(parents=True, exist_ok=True)
    curve.restart(0)
    for i, loss in enumerate(losses, 1):
        curve.append(10 * i, i / 2, loss, 0.1, 100.0, None, i / 100)


def test_the_curves_of_the_plans_pretraining_jobs_are_drawn_and_tabled(tmp_path):
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    pre = [j for j in plan.jobs if j.stage == "pretrain"]
    s = build_report(tmp_path / "w", tmp_path / "none", plan=plan, log=None)
    assert s.skipped_figures["training"] == ("no pretraining job has written a curve yet (its run folder's "
                                             "train_log.csv)")
    _write_curve(tmp_path / "w", pre[0].id, [5.0, 4.0, 3.5])
    _write_curve(tmp_path / "w", pre[1].id, [6.0, 5.5])  # still running: its curve so far
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    assert "training" in s.drawn and s.failed == []
    out = tmp_path / "r"
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "training.pdf").stat().st_size
    table = pd.read_csv(out / "training.csv").set_index("job_id")
    assert list(table.index) == [pre[0].id, pre[1].id]
    assert table.loc[pre[0].id, ["steps", "first_loss", "last_loss"]].tolist() == [30, 5.0, 3.5]
    assert table.loc[pre[1].id, "epochs"] == 1.0 and table.loc[pre[1].id, "method"] == pre[1].axes["method"]
    data = pd.read_csv(out / "training_data.csv")
    assert len(data) == 5 and data.groupby("job_id")["step"].apply(list).to_dict() == {
        pre[0].id: [10, 20, 30], pre[1].id: [10, 20]}
    assert "Training: pretraining loss per epoch" in (out / "index.html").read_text()


def test_without_a_plan_the_curves_of_pretraining_jobs_with_a_result_are_drawn(tmp_path):
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    _write_curve(tmp_path / "w", pre.id, [2.0, 1.0])
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    assert "training" in s.drawn
    assert pd.read_csv(tmp_path / "r" / "training.csv")["job_id"].tolist() == [pre.id]
