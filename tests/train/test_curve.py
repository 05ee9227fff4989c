"""The training curve file (study.train.curve): a row per progress line, each step once after stops and resumes."""
from __future__ import annotations

import pytest

from study.train import StopRequested, pretrain
from study.train.curve import FIELDS, FILE, TrainingCurve, read_curve

DETERMINISTIC = ("step", "epoch", "loss", "lr", "train_top1")  # on a CPU; not the rates and times


def _columns(run_dir):
    return [{k: r[k] for k in DETERMINISTIC} for r in read_curve(run_dir / "train_log.csv")]


def test_a_stopped_and_resumed_run_logs_each_step_once_as_an_uninterrupted_run(tiny_manifest, make_config, tmp_path):
    """Progress lines every step: a run stopped at step 2 whose session went on logging (killed before its next
    checkpoint: here rows added by hand) and then resumed has the rows of an uninterrupted run, in order."""
    cfg = make_config(device="cpu", log_every_steps=1)
    pretrain(cfg, tmp_path / "full")
    full = read_curve(tmp_path / "full" / "train_log.csv")
    assert (tmp_path / "full" / "train_log.csv").read_text().splitlines()[0] == ",".join(FIELDS)
    assert [r["step"] for r in full] == ["1", "2", "3", "4", "5", "6"]
    assert [r["epoch"] for r in full][:3] == ["0.3333", "0.6667", "1.0000"]  # 24 images, batch 8
    assert all(float(r["loss"]) > 0 and float(r["images_per_s"]) > 0 and r["train_top1"] == "" for r in full)
    assert float(full[0]["lr"]) < float(full[1]["lr"])  # warming up over the first half epoch
    with pytest.raises(StopRequested):
        pretrain(cfg, tmp_path / "cut", stop_at=2)
    with open(tmp_path / "cut" / "train_log.csv", "a") as f:  # logged after the checkpoint, then killed mid-line
        f.write("3,1.0000,9.9,0.1,50.0,,0.001\n4,1.33")
    (tmp_path / "cut" / ".train_log.csv.abcd1234.tmp").write_text("step")  # a restart killed mid-write left it
    pretrain(cfg, tmp_path / "cut")
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["checkpoint.pt", "encoder.pt", "train_log.csv"]
    assert _columns(tmp_path / "cut") == _columns(tmp_path / "full")
    hours = [float(r["hours"]) for r in read_curve(tmp_path / "cut" / "train_log.csv")]
    assert hours == sorted(hours) and hours[0] > 0  # training time of all sessions so far


def test_a_supervised_run_logs_its_training_top1_and_a_rerun_of_a_finished_run_keeps_its_rows(
        tiny_manifest, make_config, tmp_path):
    cfg = make_config(device="cpu", method="supervised")
    pretrain(cfg, tmp_path / "sup")
    rows = read_curve(tmp_path / "sup" / "train_log.csv")
    assert [r["step"] for r in rows] == ["3", "6"] and all(0 <= float(r["train_top1"]) <= 1 for r in rows)
    before = (tmp_path / "sup" / "train_log.csv").read_text()
    pretrain(cfg, tmp_path / "sup")  # already trained: nothing to log, nothing cut
    assert (tmp_path / "sup" / "train_log.csv").read_text() == before


def test_a_curve_file_is_read_without_a_torn_last_line_or_rows_of_another_shape(tmp_path):
    rows = "1,0.1,2.0,0.1,9.0,,0.0\nx,y\n3,0.1\n2,0.2,1.9,0.1,9.0,,0."  # a good row, two of another shape, a torn one
    (tmp_path / "train_log.csv").write_text(",".join(FIELDS) + "\n" + rows)
    assert [r["step"] for r in read_curve(tmp_path / "train_log.csv")] == ["1"]
    assert read_curve(tmp_path / "none.csv") == []
    curve = TrainingCurve(tmp_path)
    curve.restart(0)  # a fresh run: the header only
    assert (tmp_path / "train_log.csv").read_text() == ",".join(FIELDS) + "\n"


def test_a_file_of_another_kind_is_no_curve_and_a_restart_replaces_it(tmp_path):
    """A train_log.csv whose header has no `step` column (another tool's log): no rows, and a (re)start writes a
    curve over it rather than failing on its rows."""
    (tmp_path / "train_log.csv").write_text("iteration,step_loss\n1,2.0\n2,1.5\n")
    assert read_curve(tmp_path / "train_log.csv") == []
    TrainingCurve(tmp_path).restart(5)
    assert (tmp_path / "train_log.csv").read_text() == ",".join(FIELDS) + "\n"
    (tmp_path / "train_log.csv").write_text("loss,step\n2.0,1\n1.9,x\n")  # step not first: its own column is read
    assert read_curve(tmp_path / "train_log.csv") == [{"loss": "2.0", "step": "1"}]


def test_a_rows_loss_is_over_its_whole_window_also_when_the_window_is_longer_than_the_loss_metrics(
        tiny_manifest, make_config, tmp_path, monkeypatch):
    """Logged every 6 steps while the loss metric keeps its last 2 (LOSS_STEPS, patched: 1000 in a real run, where a
    long run may log every few thousand steps): each row's loss is the mean over its 6 steps, not over the last 2."""
    from study.train import loop

    losses, real = [], loop.train_step

    def spy(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        losses.append(float(loss.detach()))
        return loss, stats

    monkeypatch.setattr(loop, "train_step", spy)
    monkeypatch.setattr(loop, "LOSS_STEPS", 2)
    pretrain(make_config(device="cpu", steps=12, log_every_steps=6), tmp_path / "run")
    rows = read_curve(tmp_path / "run" / "train_log.csv")
    assert [r["step"] for r in rows] == ["6", "12"] and len(losses) == 12
    for row, window in zip(rows, (losses[:6], losses[6:])):
        assert float(row["loss"]) == pytest.approx(sum(window) / 6, rel=1e-5)


def test_a_binary_file_is_no_curve_and_a_restart_replaces_it(tmp_path):
    """A train_log.csv that is not text (a file copied over it, a disk error): no rows, and a restart writes a curve
    over it rather than failing on a UnicodeDecodeError."""
    (tmp_path / "train_log.csv").write_bytes(b"\xff\xfe\x00step\x80\x81\n")
    assert read_curve(tmp_path / "train_log.csv") == []
    TrainingCurve(tmp_path).restart(3)
    assert (tmp_path / "train_log.csv").read_text() == ",".join(FIELDS) + "\n"


def test_a_restart_keeps_only_the_curves_own_columns_of_a_file_with_others(tmp_path):
    """A curve written with a column this version does not log (or without one it does): the kept rows are written
    with FIELDS, an unknown column dropped and a missing one empty, instead of DictWriter refusing the row."""
    (tmp_path / "train_log.csv").write_text("step,loss,extra\n1,2.0,x\n2,1.9,y\n3,1.8,z\n")
    TrainingCurve(tmp_path).restart(2)
    assert (tmp_path / "train_log.csv").read_text() == ",".join(FIELDS) + "\n1,,2.0,,,,\n2,,1.9,,,,\n"


def test_a_row_holds_each_value_in_its_own_column_hours_in_hours(tmp_path):
    curve = TrainingCurve(tmp_path)
    curve.restart(0)
    curve.append(3, 1.5, 0.25, 0.1, 12.0, None, 0.5)
    assert read_curve(tmp_path / FILE) == [{"step": "3", "epoch": "1.5000", "loss": "0.25", "lr": "0.1",
                                            "images_per_s": "12.0", "train_top1": "", "hours": "0.5"}]
