"""study.launch.traces: what `study status` reads back of a job's log and its training checkpoints."""
from __future__ import annotations

import os
import pickle
import time
import zipfile

from launch_helpers import REQUEUED_LOG, write_checkpoint

from study.launch import traces
from study.launch.traces import (checkpoint_step, checkpoint_steps, checkpoint_text, checkpoints, last_lines,
                                 progress, progress_count, requeue_history, requeue_text)


def test_last_lines_are_the_last_non_empty_lines_of_the_log(tmp_path):
    log = tmp_path / "j.log"
    log.write_text("".join(f"line {i}\n\n" for i in range(20)))
    assert last_lines(log, 3) == ["line 17", "line 18", "line 19"]
    assert last_lines(None) == [] and last_lines(tmp_path / "absent.log") == []


def test_progress_of_a_log_written_in_the_future_is_zero_seconds_old(tmp_path):
    """A log on a shared filesystem whose server's clock runs ahead reads as just written, not `-30 s ago`."""
    log = tmp_path / "j.log"
    log.write_text("[pretrain] step 1/6\n[pretrain] step 2/6\nsome library's line\n")
    ahead = time.time() + 30
    os.utime(log, (ahead, ahead))
    assert progress(log) == ("[pretrain] step 2/6", 0.0, False)
    assert progress(tmp_path / "absent.log") is None


def test_a_progress_line_from_before_slurm_restarted_the_job_says_so(tmp_path):
    """Slurm appends each start of a requeued job to its log: until the new run prints, the latest progress line is
    the previous run's, which read as the job's progress now."""
    log = tmp_path / "1605_0_0_log.err"
    killed = "\n".join(REQUEUED_LOG.splitlines()[:3] + ["srun: error: vm: task 0: Killed", ""])  # no checkpoint line
    log.write_text(killed)
    seen = progress(log)
    assert seen.line == "[pretrain] step 150/1500 loss 3.3668 lr 0.0183 133.1 img/s, eta 3 min" and seen.before_restart
    log.write_text(killed + "[pretrain] resuming /wd/jobs/p1 at step 140/1500\n")
    assert progress(log)[::2] == ("[pretrain] resuming /wd/jobs/p1 at step 140/1500", False)
    log.write_text(REQUEUED_LOG)  # the checkpoint its stop wrote, after slurmstepd's line: it says so itself
    seen = progress(log)
    assert seen.line.startswith("[pretrain] checkpoint written at step 226/1500 on SIGUSR2") and not seen.before_restart


def test_the_lines_a_stopped_slurm_run_writes_until_its_sigkill_are_before_the_restart(tmp_path):
    """On Slurm the training carries on after SIGTERM until the SIGKILL: its steps come after slurmstepd's requeue
    line. Each start of a run writes a RUN_HEADER (study.launch.runner.say_run_start): until the next one, every line
    after the stop is the stopped run's; after it, the new run's."""
    log = tmp_path / "1605_0_log.err"
    stop = "slurmstepd: error: *** JOB 1605 ON vm CANCELLED AT 2026-12-07T10:00:00 DUE TO JOB REQUEUE ***"
    header = f"{traces.RUN_HEADER}2026-12-07 09:50:00 +0000 pretrain job p1 (Slurm job 1605, task 0, on vm)"
    stopped = "\n".join([header, "[pretrain] step 60/300 loss 3.1", stop, "[pretrain] step 69/300 loss 3.0", ""])
    log.write_text(stopped)
    seen = progress(log)
    assert seen.line == "[pretrain] step 69/300 loss 3.0" and seen.before_restart
    log.write_text(stopped + f"{traces.RUN_HEADER}2026-12-07 10:01:00 +0000 pretrain job p1\n"
                             "[pretrain] resuming /wd/jobs/p1 at step 61/300\n")
    assert progress(log)[::2] == ("[pretrain] resuming /wd/jobs/p1 at step 61/300", False)
    # the new run started (its header) but has said nothing yet (it loads its data): the line is the stopped run's
    log.write_text(stopped + f"{traces.RUN_HEADER}2026-12-07 10:01:00 +0000 pretrain job p1\n")
    assert progress(log)[::2] == ("[pretrain] step 69/300 loss 3.0", True)


def test_a_stopped_slurm_run_s_last_lines_are_before_the_restart_where_its_header_is_far_above(tmp_path):
    """A run of hours writes far more than the 16 KiB `progress` reads: its header is out of them, and the lines it
    wrote after slurmstepd's stop line read as the new run's. Its log's first lines say that its runs write headers;
    the log of an older study's job, which wrote none, reads as before (the lines after the stop, the new run's)."""
    log = tmp_path / "1605_0_log.err"
    stop = "slurmstepd: error: *** JOB 1605 ON vm CANCELLED AT 2026-12-07T10:00:00 DUE TO JOB REQUEUE ***"
    steps = "".join(f"[pretrain] step {i}/3000 loss 3.1 lr 0.3 812.5 img/s 31.2 GB GPU peak, eta 2.5 h\n"
                    for i in range(1, 400))
    body = steps + stop + "\n[pretrain] step 400/3000 loss 3.0\n"
    log.write_text(f"{traces.RUN_HEADER}2026-12-07 09:50:00 +0000 pretrain job p1 (Slurm job 1605, task 0)\n" + body)
    assert log.stat().st_size > 16384  # the header out of the tail read
    assert progress(log)[::2] == ("[pretrain] step 400/3000 loss 3.0", True)
    log.write_text(body)  # no header at all: an older study's job
    assert progress(log)[::2] == ("[pretrain] step 400/3000 loss 3.0", False)


def test_a_local_run_s_header_alone_is_no_restart_of_a_slurm_job(tmp_path):
    """A local log holds each run's header and no slurmstepd line: an earlier run's progress line is not said to be
    from before a Slurm restart."""
    log = tmp_path / "p1.log"
    log.write_text(f"{traces.RUN_HEADER}a pretrain job p1\n[pretrain] step 60/300 loss 3.1\n"
                   f"{traces.RUN_HEADER}b pretrain job p1\n")
    assert progress(log)[::2] == ("[pretrain] step 60/300 loss 3.1", False)


def test_a_slurm_task_says_each_start_of_its_run_in_its_log(capsys, monkeypatch):
    from study.grids.jobs import Job
    from study.launch.runner import say_run_start

    monkeypatch.setenv("SLURM_JOB_ID", "1605")
    monkeypatch.setenv("SLURM_PROCID", "1")
    say_run_start(Job("p1", "pretrain", {}))
    err = capsys.readouterr().err
    assert err.startswith(traces.RUN_HEADER) and err.endswith(" pretrain job p1 (Slurm job 1605, task 1, on "
                                                              f"{os.uname().nodename})\n"), err


def test_progress_count_reads_the_steps_or_images_a_progress_line_counts():
    """What the training loop and the feature extraction print (their own formats), for `status --format json`."""
    assert progress_count("[pretrain] step 40/1000 loss 5.1234 lr 0.3 812.5 img/s 31.2 GB GPU peak, eta 2.5 h") \
        == [40, 1000]
    assert progress_count("[finetune] step 3/10 loss 2.3000 lr 0.1 50.0 img/s") == [3, 10]
    assert progress_count("[evaluate] features of p0/encoder.pt on imagenet_val: 1200/50000 images, eta 4 min") \
        == [1200, 50000]
    assert progress_count("[evaluate] WARNING: could not save the extraction's progress in /x/rows-0-5.pt") is None


def test_requeue_history_counts_slurms_requeue_lines_and_the_steps_each_start_resumed_at(tmp_path):
    log = tmp_path / "1605_0_0_log.err"
    log.write_text(REQUEUED_LOG + "[pretrain] resuming /wd/jobs/p1 at step 226/1500\n")
    assert requeue_history(log) == (2, 0, [[173, 1500], [226, 1500]])  # the job's line counted, not its step's
    assert requeue_text(requeue_history(log)) == "requeued 2 time(s), resumed at step 173/1500, then 226/1500"
    # a cluster's own preemption (PreemptMode=REQUEUE): slurmstepd says PREEMPTION, not JOB REQUEUE
    log.write_text("[pretrain] step 9/20\nslurmstepd: error: *** JOB 7 ON n1 CANCELLED AT 2026-12-06T09:00:00 DUE TO "
                   "PREEMPTION ***\nslurmstepd: error: *** STEP 7.0 ON n1 CANCELLED AT 2026-12-06T09:00:00 DUE TO "
                   "PREEMPTION ***\n[pretrain] resuming /wd/jobs/p1 at step 8/20\n")
    assert requeue_history(log) == (0, 1, [[8, 20]])
    assert requeue_text(requeue_history(log)) == "preempted 1 time(s), resumed at step 8/20"
    log.write_text("[pretrain] step 4/6 loss 2.5000\n")
    assert requeue_history(log) == (0, 0, []) and requeue_text(requeue_history(log)) == ""
    assert requeue_history(None) is None and requeue_history(tmp_path / "absent.err") is None


def test_checkpoint_step_reads_a_checkpoints_step_without_running_its_code(tmp_path):
    """The step a rerun resumes from, read from the checkpoint's pickle alone; a file that is none, None; a pickle
    that would run a command runs nothing."""
    wd = tmp_path / "wd"
    write_checkpoint(wd / "jobs" / "p1" / "checkpoint.pt", 6, 8)
    write_checkpoint(wd / "jobs" / "e1" / "finetune-50" / "checkpoint.pt", 3, 3)
    write_checkpoint(wd / "jobs" / "e1" / "finetune-200" / "checkpoint.pt", 1, 3)
    assert checkpoint_step(wd / "jobs" / "p1" / "checkpoint.pt") == [6, 8]
    assert checkpoint_steps(wd, "p1") == {".": [6, 8]} and checkpoint_steps(wd, "nope") == {}
    assert checkpoint_text(checkpoint_steps(wd, "p1")) == "checkpoint at step 6/8"
    assert checkpoint_text(checkpoint_steps(wd, "e1")) == \
        "checkpoints: finetune-50 at step 3/3, finetune-200 at step 1/3"
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 cut short")
    assert checkpoint_step(tmp_path / "torn.pt") is None and checkpoint_step(tmp_path / "absent.pt") is None
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"step": 1, "total_steps": 2, "format": 1, "x": Evil()}))
    assert checkpoint_step(tmp_path / "evil.pt") == [1, 2] and not marker.exists()
    # one of another format: a rerun refuses it, so no step is said to resume from
    with zipfile.ZipFile(tmp_path / "newer.pt", "w") as z:
        z.writestr("newer/data.pkl", pickle.dumps({"step": 1, "total_steps": 2, "format": 2}))
    assert checkpoint_step(tmp_path / "newer.pt") is None


def test_checkpoint_step_does_not_read_a_pickle_larger_than_a_checkpoints(tmp_path, monkeypatch):
    """A data.pkl over CHECKPOINT_PICKLE_MAX (a foreign file, or a zip bomb: its declared size) is not read."""
    data = pickle.dumps({"step": 1, "total_steps": 2, "format": 1, "pad": "x" * 4000})
    with zipfile.ZipFile(tmp_path / "big.pt", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("big/data.pkl", data)
    assert checkpoint_step(tmp_path / "big.pt") == [1, 2]
    monkeypatch.setattr(traces, "CHECKPOINT_PICKLE_MAX", len(data) - 1)
    assert checkpoint_step(tmp_path / "big.pt") is None


def test_checkpoint_age_is_that_of_the_newest_checkpoint_a_rerun_resumes_from(tmp_path):
    """How long ago a job last checkpointed (what a preemption now would lose): its newest checkpoint that reads as
    one, a fine-tuning's too; a torn file left out; a clock ahead reads 0; none, None."""
    wd = tmp_path / "wd"
    write_checkpoint(wd / "jobs" / "e1" / "finetune-50" / "checkpoint.pt", 3, 3)
    write_checkpoint(wd / "jobs" / "e1" / "finetune-200" / "checkpoint.pt", 1, 3)
    now = time.time()
    os.utime(wd / "jobs" / "e1" / "finetune-50" / "checkpoint.pt", (now - 600, now - 600))
    os.utime(wd / "jobs" / "e1" / "finetune-200" / "checkpoint.pt", (now - 120, now - 120))
    assert 119 < checkpoints(wd, "e1")[1] < 150
    (wd / "jobs" / "e1" / "checkpoint.pt").write_bytes(b"PK\x03\x04 cut short")  # newer, but no checkpoint
    assert 119 < checkpoints(wd, "e1")[1] < 150
    write_checkpoint(wd / "jobs" / "p1" / "checkpoint.pt", 6, 8)
    os.utime(wd / "jobs" / "p1" / "checkpoint.pt", (now + 30, now + 30))
    assert checkpoints(wd, "p1")[1] == 0.0
    assert checkpoints(wd, "nope")[1] is None
