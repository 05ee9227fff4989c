"""A profile's Slurm account switched while some of a grid's jobs are queued (study/launch/grid_states.py:
`other_accounts`, said by `study status` and `study submit`), against stand-ins for Slurm's commands (fake_slurm):
the account is not part of a job's id, so the jobs queued on the earlier account are neither queued again nor
moved, and both commands name them with the `scontrol update` that moves the pending ones."""
from __future__ import annotations

import json

from study.grids import plan_grid
from study.launch.ledger import Ledger

from launch_helpers import PROFILE, grid_text, run_cli


def _profile(env, name: str, text: str):
    path = env / name
    path.write_text(text)
    return path


def _queued(wd, grid: str) -> dict[str, str]:
    return {e["job"]: e["slurm_job_id"] for e in Ledger(wd, grid).events() if e["event"] == "queued"}


def test_jobs_queued_on_an_account_the_profile_no_longer_names_are_said_left_and_not_queued_again(env, slurm):
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("acct", seeds=(0, 1)))
    prof_a = _profile(env, "a.yaml", PROFILE + "account: proj_a\n")
    prof_b = _profile(env, "b.yaml", PROFILE + "account: proj_b\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof_a), "--workdir", str(wd)])
    assert code == 0, err  # pretraining array 101 (2 tasks), probes 102 and 103
    assert all("#SBATCH --account=proj_a\n" in (slurm / f"sbatch_script_{n}").read_text() for n in (101, 102, 103))
    (slurm / "sacct").write_text("101_0|RUNNING|n1|Unknown|proj_a\n101_1|PENDING|None|Unknown|proj_a\n"
                                 "102|PENDING|None|Unknown|proj_a\n103|PENDING|None|Unknown|proj_a\n")
    # the same job ids: the account is not part of a job's id
    assert [j.id for j in plan_grid(grid, prof_a).jobs] == [j.id for j in plan_grid(grid, prof_b).jobs]

    out = run_cli(["status", str(grid), "--profile", str(prof_b), "--workdir", str(wd)])[1]
    assert (f"4 queued or running Slurm job(s) are not on account proj_b (`account` of profile {prof_b}): ") in out, out
    assert "`scontrol update JobId=101_1,102,103 Account=proj_b` moves the pending one(s)" in out, out  # not 101_0
    rows = json.loads(run_cli(["status", str(grid), "--profile", str(prof_b), "--workdir", str(wd), "--format",
                               "json"])[1])["jobs"]
    assert {r["account"] for r in rows} == {"proj_a"}

    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof_b), "--workdir", str(wd)])
    assert code == 0, err
    assert "study: warning: 4 queued or running Slurm job(s) are not on account proj_b" in err, err
    assert "queued 0 job(s)" in err and (slurm / "counter").read_text().strip() == "103"  # no sbatch: none twice
    assert sorted(_queued(wd, "acct").values()) == ["101_0", "101_1", "102", "103"]

    # Slurm keeps account names in lower case: the profile's `Proj_A` is the account the jobs are on
    same = _profile(env, "same.yaml", PROFILE + "account: Proj_A\n")
    out = run_cli(["status", str(grid), "--profile", str(same), "--workdir", str(wd)])[1]
    assert "not on account" not in out, out


def test_a_stage_whose_own_account_changed_names_its_key_and_its_jobs_alone(env, slurm):
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("acct2", seeds=(0,)))
    prof = _profile(env, "p.yaml", PROFILE + "account: proj_a\n")
    assert run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])[0] == 0
    (slurm / "sacct").write_text("101|RUNNING|n1|Unknown|proj_a\n102|PENDING|None|Unknown|proj_a\n")
    split = _profile(env, "split.yaml", PROFILE.replace("evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}",
                                                        "evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m, "
                                                        "account: proj_b}") + "account: proj_a\n")
    out = run_cli(["status", str(grid), "--profile", str(split), "--workdir", str(wd)])[1]
    ids = {sid: job for job, sid in _queued(wd, "acct2").items()}
    assert (f"1 queued or running Slurm job(s) are not on account proj_b (`stages.evaluate.account` of profile "
            f"{split}): evaluate {ids['102']} (slurm 102, pending) on proj_a.") in out, out
    assert ids["101"] not in out.split("not on account")[1]  # the pretraining job is on its stage's account
    # sacct says no account (a cluster without accounting): nothing to compare, nothing said
    (slurm / "sacct").write_text("101|RUNNING|n1|Unknown\n102|PENDING|None|Unknown\n")
    assert "not on account" not in run_cli(["status", str(grid), "--profile", str(split), "--workdir", str(wd)])[1]


INVALID = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"


def test_an_account_slurm_refuses_is_said_with_the_user_s_accounts(env, slurm):
    """A cluster that enforces associations refuses an account the user has none with (sbatch --test-only, before
    anything is queued): the refusal lists the user's accounts (sacctmgr), or, for one of them, says that its
    association does not cover the partition or QOS."""
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("acct3", seeds=(0,)))
    prof = _profile(env, "p.yaml", PROFILE + "account: proj_x\n")
    (slurm / "test_only_refuse").write_text(f"#SBATCH --account=proj_x\n{INVALID}\n")
    (slurm / "sacctmgr_assoc").write_text("proj_a\nProj_B\nproj_a\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])
    assert code == 2 and "account: 'proj_x'" in err and INVALID in err, err
    assert "yours: proj_a, proj_b (sacctmgr show assoc user=" in err and "nothing was queued" in err, err
    assert not (slurm / "counter").exists()
    (slurm / "test_only_refuse").write_text(f"#SBATCH --account=proj_a\n{INVALID}\n")
    prof.write_text(PROFILE + "account: proj_a\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])
    assert code == 2 and "proj_a is one of yours, but its association does not cover this partition or QOS" in err
    assert "`scontrol show partition debug` lists the accounts it takes (AllowAccounts, DenyAccounts)" in err, err
    (slurm / "sacctmgr_assoc").write_text("")  # no account at all: not "one of them"
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])
    assert code == 2 and "lists none of yours: you have no Slurm account yet" in err, err
    (slurm / "sacctmgr_assoc").unlink()  # sacctmgr cannot tell: the command that can is named
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])
    assert code == 2 and "`sacctmgr show assoc user=" in err and "` lists your accounts" in err, err


def test_an_account_a_non_enforcing_cluster_would_replace_is_warned_of_before_queueing(env, slurm):
    """Where associations are not enforced, sbatch takes an account the user has none with and Slurm puts the jobs
    on the default account: said once before the first sbatch; nothing said of one of the user's (in any case), nor
    where sacctmgr cannot tell."""
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("acct4", seeds=(0,)))
    (slurm / "sacctmgr_assoc").write_text("proj_a\n")
    prof = _profile(env, "p.yaml", PROFILE + "account: proj_x\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd),
                            "--dry-run"])
    assert code == 0 and "not one you have an association with" not in err, err  # a dry run asks sinfo only
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])
    assert code == 0, err
    warning = (f"study: warning: profile {prof}: account 'proj_x' (`account`) is not one you have an association "
               f"with (yours: proj_a (sacctmgr show assoc user=")
    assert err.count(warning) == 1, err
    assert "Slurm queues the jobs of the stages `account` places on your default account" in err, err
    # the same account at a stage's own key too: each key said once (it was the first stage's key alone)
    evaluate = "evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m"
    prof.write_text(PROFILE.replace(evaluate, f"{evaluate}, account: proj_x") + "account: proj_x\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir",
                            str(env / "wd_keys")])
    assert code == 0 and err.count(warning) == 1, err
    assert err.count("account 'proj_x' (`stages.evaluate.account`) is not one you have an association") == 1, err
    for text, assoc in (("account: Proj_A\n", "proj_a\n"), ("account: proj_x\n", None)):
        (slurm / "sacctmgr_assoc").unlink(missing_ok=True)
        if assoc:
            (slurm / "sacctmgr_assoc").write_text(assoc)
        prof.write_text(PROFILE + text)
        other = env / f"wd_{len(text)}_{assoc is None}"
        code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir",
                                str(other)])
        assert code == 0 and "association" not in err, err


def test_a_default_account_or_a_qos_the_partition_does_not_take_says_where_to_look(env, slurm):
    """A partition that denies the user's default account (DenyAccounts, under EnforcePartLimits=ALL) is refused
    as "Invalid account ...": for a profile that sets no account, study said to set the profile's account to one
    of the user's, or to leave it out, as it was. It says the default account was taken, and names the partition's
    listing. A QOS the association or the partition does not take ("Invalid qos specification") said only "change
    the profile": it names the QOS, the user's (sacctmgr) and the partition's listing."""
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("acct5", seeds=(0,)))
    (slurm / "test_only_refuse").write_text(f"#SBATCH --partition=debug\n{INVALID}\n")
    (slurm / "sacctmgr_assoc").write_text("lab\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(wd)])
    assert code == 2 and ("the profile sets no `account`, so Slurm took your default account (yours: lab "
                          "(sacctmgr show assoc user=") in err, err
    assert "`scontrol show partition debug` lists the accounts it takes (AllowAccounts, DenyAccounts)" in err, err
    assert "set the profile's account to one of them" not in err, err
    qos = "sbatch: error: Batch job submission failed: Invalid qos specification"
    (slurm / "test_only_refuse").write_text(f"#SBATCH --qos=gold\n{qos}\n")
    prof = _profile(env, "p.yaml", PROFILE + "qos: gold\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof), "--workdir", str(wd)])
    assert code == 2 and ("QOS 'gold' (`qos`) is not one your association may use: `sacctmgr show assoc user=") in err
    assert "`scontrol show partition debug` lists the QOS it takes (AllowQos, DenyQos); set one that both allow" in err
    assert err.rstrip().endswith("nothing was queued") and not (slurm / "counter").exists(), err
