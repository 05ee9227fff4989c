"""`study cancel` (study/launch/cancel.py): the Slurm jobs it scancels and those it leaves, against stand-ins for
Slurm's commands (the `slurm` fixture, tests/launch/conftest.py), and the local commands it stops (real processes
holding their command locks)."""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

from study.grids import plan_grid
from study.launch.ledger import Ledger
from study.launch.locks import command_lock, try_lock

from launch_helpers import fake_commands, grid_text, run_cli
from test_status import HOLDS_ITS_LOCK, _queued, _sacct, _submit


def test_cancel_names_the_shared_jobs_it_leaves_also_beside_stale_ones(env, slurm):
    """`len(live) > len(ids)` counted the stale jobs it cancelled against the shared ones it left: here 2 shared,
    2 stale, and it said nothing of the shared ones."""
    a, b = env / "a.yaml", env / "b.yaml"
    a.write_text(grid_text("sha", seeds=(0,)))
    b.write_text(grid_text("shb", seeds=(0, 1)))
    _submit(a, env)  # 101, 102: seed 0's jobs
    _submit(b, env)  # 103, 104: seed 1's (seed 0's are a's, live)
    _sacct(slurm, {sid: "PENDING" for sid in ("101", "102", "103", "104")})
    b.write_text(grid_text("shb", seeds=(0,)))  # b's own jobs (seed 1) left the plan: stale
    code, out, err = run_cli(["cancel", str(b), "--workdir", str(env / "wd")])
    assert code == 0, err
    assert "cancelled 2 Slurm job(s) of grid shb (2 of them queued by an earlier version" in out, out
    assert "2 shared job(s) queued by another grid left running (101, 102; queued by grid sha)" in out, out
    assert (slurm / "scancelled").read_text().split() == ["103", "104"]


def test_cancel_where_scancels_the_selected_jobs_alone(env, slurm):
    """`study cancel --where seed=1`: seed 1's jobs alone are scancelled, not those an edit of the grid file removed
    (seed 0's); without --where, those."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("cw", seeds=(0, 1)))
    _submit(grid, env)
    queued, plan = _queued(env / "wd", "cw"), plan_grid(grid)
    _sacct(slurm, {sid: "PENDING" for sid in queued.values()})
    seed0, seed1 = (sorted(queued[j.id] for j in plan.jobs if j.axes["seed"] == s) for s in (0, 1))
    grid.write_text(grid_text("cw", seeds=(1, 2)))  # seed 0's jobs left the plan: live, queued by an earlier version
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(env / "wd"), "--where", "seed=1"])
    assert code == 0 and f"cancelled {len(seed1)} Slurm job(s) of grid cw\n" in out, out + err
    assert sorted((slurm / "scancelled").read_text().split()) == seed1
    (slurm / "scancelled").unlink()
    _sacct(slurm, {**{sid: "PENDING" for sid in seed0}, **{sid: "CANCELLED" for sid in seed1}})
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(env / "wd")])
    assert code == 0 and "(2 of them queued by an earlier version of the grid file)" in out, out + err
    assert sorted((slurm / "scancelled").read_text().split()) == seed0
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(env / "wd"), "--where", "seed=3"])
    assert code == 2 and "--where seed=3: no job of grid cw has seed '3'; it has: 1, 2" in err


def test_cancel_waits_for_a_submit_in_progress_and_cancels_what_it_queued(env, slurm):
    """Without an open intent, cancel took no lock: run while a submit was between its states and its `queued`
    lines, it cancelled nothing of what that submit then queued."""
    from study.launch.locks import try_lock

    grid = env / "g.yaml"
    grid.write_text(grid_text("inflight"))
    wd = env / "wd"
    jobs = plan_grid(grid).jobs
    fd = try_lock(wd / "ledgers" / ".submit.lock")  # the submit in flight
    assert fd is not None
    got: dict = {}
    canceller = threading.Thread(target=lambda: got.update(zip(("code", "out", "err"), run_cli(
        ["cancel", str(grid), "--workdir", str(wd)]))))
    try:
        canceller.start()
        canceller.join(1.5)
        assert canceller.is_alive(), got  # waits for the submit
        Ledger(wd, "inflight").append([{"event": "queued", "batch": "b", "job": j.id, "stage": j.stage,
                                        "slurm_job_id": str(201 + i), "array_job_id": str(201 + i), "folder": "f"}
                                       for i, j in enumerate(jobs)])
        _sacct(slurm, {"201": "RUNNING", "202": "PENDING"})
    finally:
        os.close(fd)
    canceller.join(30)
    assert not canceller.is_alive()
    assert got["code"] == 0 and "cancelled 2 Slurm job(s)" in got["out"], got
    assert (slurm / "scancelled").read_text().split() == ["201", "202"]


def test_cancel_stops_only_the_live_local_commands_of_this_grid_file(env):
    """`study cancel` stops this grid file's local command also while all its jobs are still pending (waiting for a
    worker or a dependency), and returns once it has ended (its lock let go: a `study submit` right after finds its
    jobs stopped, not running); it leaves alone a command that ended long ago (its lock free, its pid since reused
    by another process) and a live command of another file under the same grid name. The commands' processes are
    stand-ins, each with its `pending` lines and its command lock as a real one has."""
    import sys

    from study.launch.locks import lock_held

    grid = env / "g.yaml"
    grid.write_text(grid_text("stopg"))
    plan = plan_grid(grid)
    wd = env / "wd"
    (wd / "locks").mkdir(parents=True)
    host = socket.gethostname()
    ended, other_file = procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    ours = subprocess.Popen([sys.executable, "-c", HOLDS_ITS_LOCK, str(wd / "locks" / "command-ours.lock")],
                            stdout=subprocess.PIPE, text=True)
    procs.append(ours)
    try:
        assert ours.stdout.readline() == "held\n"
        with command_lock(wd) as other_lock:
            Ledger(wd, "stopg").append([
                {"event": "local", "job": j.id, "stage": j.stage, "state": "pending", "log": None, "pid": p.pid,
                 "host": host, "lock": lock, "grid_file": file}
                for p, lock, file in ((ended, "command-ended.lock", str(grid.resolve())),
                                      (other_file, other_lock, str(env / "copy.yaml")),
                                      (ours, "command-ours.lock", str(grid.resolve())))
                for j in plan.jobs])
            # --where stops no command (one runs the grid's jobs together): it names it
            code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd), "--where", "stage=pretrain"])
            assert code == 0 and ("1 selected job(s) run in a `study submit --cluster local` command, which stops as "
                                  "a whole, not by --where") in out, out + err
            assert ours.poll() is None and lock_held(wd / "locks" / "command-ours.lock")
            code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
            assert not lock_held(wd / "locks" / "command-ours.lock")  # ended before cancel returned
        assert code == 0, err
        assert f"stopping 1 `study submit --cluster local` of grid stopg (pid {ours.pid} on {host})" in out, out
        assert (f"stopped 1 `study submit --cluster local` of grid stopg (pid {ours.pid} on {host}); `study submit` "
                "resumes its jobs") in out, out
        assert ours.wait(timeout=10) == 143
        assert ended.poll() is None and other_file.poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_cancel_names_a_local_command_still_stopping_after_its_wait(env, monkeypatch):
    """A command that has not ended within the wait (a worker slow to checkpoint) is named as still stopping."""
    import sys

    import study.launch.cancel as cancel
    from study.launch.local.scheduler import STOP_GRACE_S

    monkeypatch.setattr(cancel, "STOP_WAIT_MARGIN_S", 0.5 - STOP_GRACE_S)  # a wait of half a second
    grid = env / "g.yaml"
    grid.write_text(grid_text("slowg"))
    wd = env / "wd"
    (wd / "locks").mkdir(parents=True)
    ours = subprocess.Popen([sys.executable, "-c", HOLDS_ITS_LOCK, str(wd / "locks" / "command-slow.lock")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert ours.stdout.readline() == "held\n"
        Ledger(wd, "slowg").append([
            {"event": "local", "job": j.id, "stage": j.stage, "state": "pending", "log": None, "pid": ours.pid,
             "host": socket.gethostname(), "lock": "command-slow.lock", "grid_file": str(grid.resolve())}
            for j in plan_grid(grid).jobs])
        code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
        assert code == 0, err
        assert f"still stopping after 0 s: pid {ours.pid} on " in out and "`study status` says when" in out, out
        assert ours.wait(timeout=10) == 143
    finally:
        ours.kill()
        ours.wait()


def test_cancel_names_a_local_command_on_another_host_for_the_user_to_stop_and_only_that(env):
    """A live command of this grid on another host sharing the workdir cannot be signalled from here: `study cancel`
    names it to stop where it runs, and does not also say the jobs are run by another grid's command."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("hostg"))
    wd = env / "wd"
    held = try_lock(wd / "locks" / "command-there.lock")  # as that command holds it, seen through the workdir
    try:
        Ledger(wd, "hostg").append([
            {"event": "local", "job": j.id, "stage": j.stage, "state": "pending", "log": None, "pid": 4242,
             "host": "another-host.invalid", "lock": "command-there.lock", "grid_file": str(grid.resolve())}
            for j in plan_grid(grid).jobs])
        code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
    finally:
        os.close(held)
    assert code == 0, err
    assert ("stop these `study submit --cluster local` of grid hostg where they run (Ctrl-C or kill): pid 4242 on "
            "another-host.invalid\n") in out, out
    assert "stopping" not in out and "another grid" not in out, out


def test_cancel_says_what_scancel_refused(env, slurm):
    grid = env / "g.yaml"
    grid.write_text(grid_text("refused"))
    _submit(grid, env)
    _sacct(slurm, {"101": "RUNNING", "102": "PENDING"})
    fake_commands(slurm / "bin", scancel='echo "scancel: error: Kill job error on job id 101: Job/step already '
                                         'completing or completed" >&2; exit 1')
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(env / "wd")])
    assert code == 0, err
    assert ("scancel refused some (a job that ended since its state was read needs no cancel):\n"
            "  scancel: error: Kill job error on job id 101: Job/step already completing or completed\n") in out, out
    assert "shared" not in out, out  # its own jobs, cancelled: none left to another grid


def test_cancels_wait_ends_once_each_command_has_let_go_of_its_lock(tmp_path):
    """`study cancel`'s wait for the commands it signalled: over as soon as each has let go of its command lock (not
    at the end of the timeout), and those still holding theirs when it runs out are returned, to be named."""
    from study.launch.local.stop import LocalCommand, wait_stopped

    ended, stopping = LocalCommand(1, "h", tmp_path / "ended.lock"), LocalCommand(2, "h", tmp_path / "stopping.lock")
    held = try_lock(tmp_path / "stopping.lock")
    try:
        t0 = time.monotonic()
        assert wait_stopped([ended], 60.0) == [] and time.monotonic() - t0 < 10
        assert wait_stopped([ended, stopping], 0.3) == [stopping]
    finally:
        os.close(held)
    assert wait_stopped([stopping], 60.0) == []


def test_cancel_of_a_grid_file_finds_its_commands_and_those_that_name_no_file_but_not_another_files(tmp_path):
    """A command of the grid's name that says it runs another grid file is not this file's to stop; one whose lines
    name no file (a program's run_local) may be, and is found; a command whose lock is free has ended."""
    from study.launch.local.stop import LocalCommand, live_commands

    wd, host, held = tmp_path / "wd", socket.gethostname(), []
    lines = []
    for pid, lock, grid_file_ in ((11, "c-mine", "/g/this.yaml"), (12, "c-none", None),
                                  (13, "c-other", "/g/other.yaml"), (14, "c-ended", "/g/this.yaml")):
        if lock != "c-ended":
            held.append(try_lock(wd / "locks" / lock))
        lines.append({"event": "local", "job": f"j{pid}", "stage": "pretrain", "state": "pending", "log": None,
                      "pid": pid, "host": host, "lock": lock, "grid_file": grid_file_})
    Ledger(wd, "g").append(lines)
    try:
        assert live_commands(wd, "g", "/g/this.yaml") == [LocalCommand(11, host), LocalCommand(12, host)]
        assert live_commands(wd, "g") == [LocalCommand(11, host), LocalCommand(12, host), LocalCommand(13, host)]
    finally:
        for fd in held:
            os.close(fd)
    assert live_commands(wd, "g") == []
