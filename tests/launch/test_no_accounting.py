"""A Slurm cluster without accounting (no slurmdbd, as many small clusters run): sacct fails, and the states of the
grid's jobs are read from squeue, which lists a job until MinJobAge after it ends. The stand-ins answer as such a
cluster did (slurm 22.05, AccountingStorageType=accounting_storage/none)."""
from __future__ import annotations

import submitit

from study.grids import plan_grid
from study.launch.ledger import Ledger
from study.launch.slurm.state import query
from study.launch.state import slurm_state

from launch_helpers import fake_commands, grid_text, run_cli

# what `sacct ... -j <id>` says on such a cluster: nothing on stdout, this on stderr, exit status 1
NO_ACCOUNTING = 'echo "Slurm accounting storage is disabled" >&2; exit 1'


def test_without_accounting_states_are_squeues_and_a_job_it_no_longer_lists_ended(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    # `squeue -h -r -t all -o "%i %T %e %r"`: live jobs, and ended ones until MinJobAge; 104 was forgotten. Asked
    # once: the pending reasons are in that listing (a second call fails here)
    fake_commands(bin_dir, sacct=NO_ACCOUNTING, squeue='case "$*" in *"-t all"*) printf "%s\\n" '
                  '"101_0 COMPLETED 2026-12-06T11:31:51 None" "101_1 FAILED 2026-12-06T11:31:51 NonZeroExitCode" '
                  '"102 RUNNING 2026-12-06T11:41:51 None" "103 CANCELLED 2026-12-06T11:31:52 None" '
                  '"105 PENDING Unknown Dependency";; *) echo "squeue asked again: $*" >&2; exit 1;; esac')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ids = ("101_0", "101_1", "102", "103", "104", "105")
    answer = query(tmp_path, dict.fromkeys(ids), reasons=True)
    states, ended = answer.states, answer.ended_s
    assert {sid: slurm_state(raw) for sid, raw in states.items()} == {
        "101_0": "failed", "101_1": "failed", "102": "running", "103": "cancelled", "104": "failed",
        "105": "pending"}  # 101_0: COMPLETED without a result file (the caller looks); 104: ended, how is unknown
    assert states["104"].startswith("ENDED (how is unknown: sacct cannot be asked")
    assert states["105"] == "PENDING (Dependency)"
    assert set(ended) == {"101_0"}  # a COMPLETED job's end, as sacct's: one just ended is finishing, not failed
    err = capsys.readouterr().err
    assert ("study: warning: sacct failed: Slurm accounting storage is disabled: the states of 6 Slurm job(s) are "
            "read from squeue instead, which lists a job only until MinJobAge (slurm.conf) after it ends; 1 it no "
            "longer lists ended, how is unknown") in err, err


def _log(wd, grid: str, sid: str):
    return submitit.core.utils.JobPaths(Ledger(wd, grid).replay().slurm_folders()[sid], job_id=sid, task_id=0).stderr


def test_status_and_retry_failed_without_accounting_see_failed_and_cancelled_jobs(env, slurm):
    """Before, every job read pending forever (UNKNOWN), a running one was called requeued, and `--retry-failed`
    queued nothing: a failed job never read failed."""
    (slurm / "bin" / "sacct").write_text(f"#!/bin/sh\n{NO_ACCOUNTING}\n")
    grid = env / "g.yaml"
    grid.write_text(grid_text("noacct", seeds=(0, 1)))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd")])
    assert code == 0, err
    by_sid = {e["slurm_job_id"]: e["job"] for e in Ledger(env / "wd", "noacct").events() if e["event"] == "queued"}
    assert sorted(by_sid) == ["101_0", "101_1", "102", "103"]  # probe 102 waits on 101_0, 103 on 101_1
    _log(env / "wd", "noacct", "101_0").write_text("[pretrain] step 5/6 loss 2.0\n")  # it runs
    _log(env / "wd", "noacct", "101_1").write_text("Traceback (most recent call last):\nValueError: boom\n")
    (slurm / "squeue").write_text("101_0 RUNNING 2026-12-06T11:41:51\n101_1 FAILED 2026-12-06T11:31:51\n"
                                  "102 PENDING Unknown\n103 CANCELLED 2026-12-06T11:31:52\n")
    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "wd")])
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "1", "0", "1", "0", "0"], out
    assert out.splitlines()[3].split() == ["evaluate", "0", "0", "0", "1", "0", "1", "0"], out
    assert f"failed pretrain {by_sid['101_1']} (slurm 101_1, FAILED)" in out and "ValueError: boom" in out, out
    assert f"cancelled 1 job(s) because their dependency {by_sid['101_1']} failed: {by_sid['103']}" in out, out
    assert "requeued, waiting" not in out and "Slurm accounting storage is disabled" in err, (out, err)
    assert err.count("read from squeue instead") == 1, err

    # one seed left in the grid: the other's two jobs are off its plan, asked of squeue once more, not warned twice
    grid.write_text(grid_text("noacct", seeds=(0,)))
    if by_sid["101_0"] not in {j.id for j in plan_grid(grid).jobs}:  # 101_0 runs: keep its seed
        grid.write_text(grid_text("noacct", seeds=(1,)))
    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "wd")])
    assert code == 0 and err.count("read from squeue instead") == 1, err
    # an edit that changes every job's id: none of the plan's jobs is on Slurm, the old ones' query is the only one
    grid.write_text(grid_text("noacct", seeds=(0, 1), steps=7))
    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "wd")])
    assert code == 0 and "queued by an earlier version of this grid file are still live" in out, out
    # what stops those alone: `study cancel` would stop the grid's other jobs too
    said = next(line for line in out.splitlines() if "earlier version of this grid file" in line)
    assert "`scancel 101_0 102` stops them alone" in said, said
    # a submit of the edited grid names them too, before it queues the new jobs beside them (it said nothing)
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0 and ("study: warning: 2 Slurm job(s) queued by an earlier version of this grid file are still "
                          "queued or running (101_0, 102): the grid file no longer asks for their settings, so their "
                          "results will count for no job of it (`study status` names them); `scancel 101_0 102` "
                          "stops them alone") in err, err
    assert err.count("read from squeue instead") == 1, err
    grid.write_text(grid_text("noacct", seeds=(0, 1)))

    (slurm / "squeue").write_text("")  # MinJobAge later: slurmctld forgot them all; 101_0's probe never ran
    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "wd")])
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "0", "2", "0", "0"], out
    assert "4 it no longer lists ended, how is unknown" in err, err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), "--retry-failed"])
    assert code == 0 and "queued 4 job(s) in 3 array(s)" in err, err
    assert len([e for e in Ledger(env / "wd", "noacct").events() if e["event"] == "queued"]) == 8

    # squeue cannot be asked either: unknown, read pending, and not said to have been requeued
    (slurm / "bin" / "squeue").write_text("#!/bin/sh\necho 'squeue: error: Unable to contact slurm controller' >&2\n"
                                          "exit 1\n")
    for sid in ("104_0", "104_1"):
        _log(env / "wd", "noacct", sid).write_text("[pretrain] step 1/6 loss 2.0\n")
    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "wd")])
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "2", "0", "0", "0"], out
    assert "requeued, waiting" not in out and "squeue could not be asked either" in err, (out, err)


def test_where_sacct_fails_with_accounting_a_job_squeue_does_not_list_reads_pending(tmp_path, monkeypatch, capsys):
    """slurmdbd down (or sacct timing out) on a cluster with accounting: a job squeue does not list has ended, but
    how only sacct can tell once it answers (its result may still be on its way): it reads pending, never ENDED
    (failed, which `--retry-failed` would queue a second time); the jobs squeue lists still read its states."""
    bin_dir = tmp_path / "bin"
    fake_commands(bin_dir, sacct='echo "sacct: error: Problem talking to the database: Connection refused" >&2; '
                                 'exit 1',
                  squeue='printf "%s\\n" "101_0 RUNNING 2026-12-06T11:41:51" "101_1 FAILED 2026-12-06T11:31:51"')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    states = query(tmp_path, dict.fromkeys(("101_0", "101_1", "102"))).states
    assert {sid: slurm_state(raw) for sid, raw in states.items()} == {
        "101_0": "running", "101_1": "failed", "102": "pending"}
    assert states["102"] == "UNKNOWN"
    err = capsys.readouterr().err
    assert "read from squeue instead" in err and "1 it does not list read pending" in err, err
