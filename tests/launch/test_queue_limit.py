"""`study submit --cluster slurm` under a limit on how many jobs a user may have in Slurm's queue (MaxSubmitJobs of a
QOS or association, each array task one job): sbatch refuses the array that would pass it.

The CI cluster enforces no accounting limit (AccountingStorageEnforce=none), so these tests use a stand-in sbatch
that answers as a real one at the limit, with the text Slurm prints there (its reason line, then the error)."""
from __future__ import annotations

from launch_helpers import fake_commands, fake_test_only, grid_text, run_cli, submit_argv

from study.launch.ledger import Ledger

REASON = "sbatch: error: QOSMaxSubmitJobPerUserLimit"
POLICY = "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"
REFUSAL = f"sbatch: error: Batch job submission failed: {POLICY}"
# an older Slurm's: no reason line, and "accounting policy" without "/QOS"
OLD_POLICY = "Job violates accounting policy (job submit limit, user's size and/or time limits)"


def _capped_sbatch(slurm, limit: int, refusal: tuple[str, ...] = (REASON, REFUSAL)) -> None:
    """The stand-in sbatch, with a limit of `limit` queued jobs: `slurm/live` counts the tasks it queued (a test
    empties the queue by writing 0 there); an array that would pass the limit is refused as Slurm refuses it, with the
    lines `refusal` on stderr."""
    d = str(slurm)
    said = "; ".join(f'echo "{line}" >&2' for line in refusal)
    fake_commands(slurm / "bin", sbatch=(
        f'{fake_test_only(slurm)}\n'
        f'a=$(sed -n "s/^#SBATCH --array=0-\\([0-9]*\\).*/\\1/p" "$1"); t=$(( ${{a:-0}} + 1 ))\n'
        f'live=$(cat "{d}/live" 2>/dev/null || echo 0)\n'
        f'if [ $((live + t)) -gt {limit} ]; then {said}; exit 1; fi\n'
        f'echo $((live + t)) > "{d}/live"\n'
        f'n=$(cat "{d}/counter" 2>/dev/null || echo 100); n=$((n+1)); echo $n > "{d}/counter"\n'
        f'cp "$1" "{d}/sbatch_script_$n"\necho "Submitted batch job $n"'))


def _study_error(err: str) -> str:
    """study's own error line (submitit echoes sbatch's stderr before it)."""
    return next(line for line in err.splitlines() if line.startswith("study: error:"))


def test_a_submit_limit_reached_partway_says_how_many_were_queued_and_the_next_submit_queues_the_rest(env, slurm):
    """Limit 6, a grid of 4 pretraining jobs (one array) and 4 evaluations (an array each, waiting on its own
    pretraining): the pretraining and two evaluations are queued, the third evaluation is refused. The error told
    "fix the profile" and dropped Slurm's reason line; it names the limit, what was queued and what was not, and that
    the same submit goes on later. The ledger holds no job queued that sbatch refused; once the queue has room, the
    next submit queues the two evaluations left, each waiting on its own pretraining, nothing twice."""
    _capped_sbatch(slurm, 6)
    grid = env / "g.yaml"
    grid.write_text(grid_text("capped", seeds=(0, 1, 2, 3)))
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    said = _study_error(err)
    assert code == 2, err
    assert "QOSMaxSubmitJobPerUserLimit" in said and "MaxSubmitJobs" in said, said
    assert "Queued by this submit: 6 job(s) in 3 array(s); not queued: 2." in said, said
    assert "Run the same `study submit` again" in said and "fix the profile" not in said, said
    ledger = Ledger(env / "wd", "capped")
    queued = {j: e["slurm_job_id"] for j, e in ledger.replay().latest.items() if e["event"] == "queued"}
    assert len(queued) == 6 and not ledger.replay().open_intents
    assert sorted(queued.values()) == ["101_0", "101_1", "101_2", "101_3", "102", "103"]
    # the jobs queued are pending; the queue has room again
    (slurm / "sacct").write_text("".join(f"{sid}|PENDING|None assigned|Unknown\n" for sid in queued.values()))
    (slurm / "live").write_text("0\n")
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    assert code == 0 and "queued 2 job(s) in 2 array(s); skipped: 6 pending or running" in err, err
    deps = sorted(line for n in (104, 105) for line in (slurm / f"sbatch_script_{n}").read_text().splitlines()
                  if line.startswith("#SBATCH --dependency="))
    assert deps == ["#SBATCH --dependency=afterok:101_2", "#SBATCH --dependency=afterok:101_3"], deps
    latest = Ledger(env / "wd", "capped").replay().latest
    assert len({e["slurm_job_id"] for e in latest.values()}) == 8
    assert all(e["event"] == "queued" for e in latest.values())


def test_an_array_larger_than_the_room_left_is_queued_in_halves_and_no_dependent_waits_on_a_job_not_queued(env, slurm):
    """Limit 3 and an array of 4 pretraining jobs: the array was refused whole, on every submit (an array larger than
    the limit is never accepted), nothing queued. It is tried again in halves: 3 of the 4 are queued (arrays of 2 and
    1); the fourth, refused alone, stops the submit before any evaluation is queued (one queued without a dependency
    would run before its pretraining), and every refused try is recorded lost."""
    _capped_sbatch(slurm, 3)
    grid = env / "g.yaml"
    grid.write_text(grid_text("halved", seeds=(0, 1, 2, 3)))
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    said = _study_error(err)
    assert code == 2 and "Queued by this submit: 3 job(s) in 2 array(s); not queued: 5." in said, err
    scripts = [p.read_text() for p in sorted(slurm.glob("sbatch_script_*"))]
    assert len(scripts) == 2 and all("study-halved-pretrain-" in s for s in scripts)
    assert ["#SBATCH --array=0-1%2" in s for s in scripts] == [True, False]
    ledger = Ledger(env / "wd", "halved")
    events = [e["event"] for e in ledger.events()]
    assert events.count("queued") == 3 and events.count("lost") == 3 and not ledger.replay().open_intents, events
    assert all(e["stage"] == "pretrain" for e in ledger.events() if e["event"] in ("intent", "queued"))


def test_a_preflight_refused_on_the_accounting_policy_names_the_submit_limit_not_only_the_profile(env, slurm):
    """At the limit already, `sbatch --test-only` answers "Job violates accounting/QOS policy", which Slurm gives for
    a limit per job as for the count of queued jobs: study said only "change the profile". It names both, with how
    many jobs the user has queued now (squeue), and nothing is queued."""
    (slurm / "test_only_refuse").write_text(f"#SBATCH --job-name=study-\nallocation failure: {POLICY}\n")
    (slurm / "squeue").write_text("201\n202_0\n202_1\n")
    grid = env / "g.yaml"
    grid.write_text(grid_text("full"))
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    said = _study_error(err)
    assert code == 2 and "sbatch --test-only said: allocation failure: Job violates accounting/QOS policy" in said, err
    assert "(MaxSubmitJobs; each array task counts as one; 3 of yours are queued now, squeue -u " in said, said
    assert "submit again once some have left the queue; nothing was queued" in said, said
    assert not (slurm / "counter").exists()


def test_an_older_slurms_refusal_without_its_reason_line_is_taken_as_the_submit_limit_too(env, slurm):
    """An older Slurm sends no reason line and says "Job violates accounting policy" (no "/QOS"): the array was
    refused whole with "change the profile", nothing queued. It is halved as for a newer one's text, the message
    naming the accounting policy as the likely limit; the preflight's refusal in that text names both causes too."""
    _capped_sbatch(slurm, 3, (f"sbatch: error: Batch job submission failed: {OLD_POLICY}",))
    grid = env / "g.yaml"
    grid.write_text(grid_text("old", seeds=(0, 1, 2, 3)))
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    said = _study_error(err)
    assert code == 2 and "Queued by this submit: 3 job(s) in 2 array(s); not queued: 5." in said, err
    assert "Slurm's accounting policy, most likely its limit on how many jobs" in said, said
    assert "a limit of yours per job" not in said, said  # 3 were queued: no limit per job refuses the others
    _capped_sbatch(slurm, 0, (f"sbatch: error: Batch job submission failed: {OLD_POLICY}",))
    (env / "g0.yaml").write_text(grid_text("none"))
    code, _, err = run_cli(submit_argv(env / "g0.yaml", env / "wd"))
    said = _study_error(err)
    assert code == 2 and "Queued by this submit: 0 job(s) in 0 array(s); not queued: " in said, err
    assert "else a limit of yours per job (time, CPUs, memory, GPUs: change the profile" in said, said
    (slurm / "test_only_refuse").write_text(f"#SBATCH --job-name=study-\nallocation failure: {OLD_POLICY}\n")
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    said = _study_error(err)
    assert code == 2 and "or on how many jobs you may have in Slurm's queue at once (MaxSubmitJobs" in said, said


def test_a_qos_limit_per_account_is_read_as_a_limit_of_queued_jobs_by_its_reason_line(env, slurm):
    """Slurm 22.05 words a QOS's MaxSubmitJobsPerAccount reached "MaxSubmitJobsPerAccount", without the QOS prefix and
    Limit suffix of the others: the message took it for the bare accounting policy ("most likely"), as where no reason
    came at all. It is read as the limit it is."""
    _capped_sbatch(slurm, 3, ("sbatch: error: MaxSubmitJobsPerAccount", REFUSAL))
    grid = env / "g.yaml"
    grid.write_text(grid_text("peraccount", seeds=(0, 1, 2, 3)))
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    said = _study_error(err)
    assert code == 2 and "Queued by this submit: 3 job(s) in 2 array(s); not queued: 5." in said, err
    assert "MaxSubmitJobsPerAccount" in said and "most likely" not in said, said
    assert "): a limit on how many jobs you may have in Slurm's queue at once" in said, said
