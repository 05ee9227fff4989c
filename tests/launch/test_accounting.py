"""What study reads of a site's QOS and association limits (study/launch/slurm/accounting.py), from stand-ins for
sacctmgr, scontrol and squeue answering as Slurm 22.05 does (tests/launch/test_slurm.py reads the real ones)."""
from __future__ import annotations

import os

import pytest
from launch_helpers import PROFILE, fake_commands, grid_text, run_cli, submit_argv

from study.grids.profile import Profile
from study.launch.slurm.accounting import (Accounting, Association, Qos, job_association, limits_enforced,
                                           qos_record, submit_room, user_associations)
from study.launch.slurm.params import slurm_config

# `sacctmgr show qos ... format=Name,Flags,MaxWall,MaxSubmitJobsPerUser`, as --parsable2 prints it
QOS = "normal|||\ncapped||1-00:00:00|5\nlong|DenyOnLimit,PartitionTimeLimit|00:20:00|\n"
# `sacctmgr show user ... withassoc format=DefaultAccount,...,MaxSubmitJobs,MaxWall,Cluster`: the user's associations
# on this cluster, c1 (scontrol's ClusterName), and on another cluster the database serves, c2
USER = ("lab|lab|||normal,capped|4||c1\nlab|lab|gpu|capped|capped|||c1\nlab|other|||long||02:00:00|c1\n"
        "lab|lab|||normal|1|00:10:00|c2\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Stand-ins first on PATH: sacctmgr lists the QOS named in `QOS` (of its `where name=...`) and `USER`'s
    associations, scontrol says the enforcement written to `enforce` (default limits) and ClusterName C1, squeue lists
    `squeue`."""
    d = tmp_path
    (d / "enforce").write_text("associations,limits,qos")
    (d / "squeue").write_text("")
    (d / "qos").write_text(QOS)
    bin_dir = fake_commands(
        d / "bin",
        sacctmgr=(f'case "$*" in *"show qos"*) n=$(echo "$*" | sed "s/.*name=\\([^ ]*\\).*/\\1/"); '
                  f'grep -i "^$n|" "{d}/qos"; exit 0;; *withassoc*) printf "{USER}"; exit 0;; esac; exit 1'),
        scontrol=f'echo "AccountingStorageEnforce = $(cat {d}/enforce)"; echo "ClusterName = C1"; '
                 'echo "MaxArraySize = 1001"',
        squeue=f'cat "{d}/squeue"')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return d


def test_a_qos_and_the_users_associations_are_read_as_sacctmgr_lists_them(site):
    """MaxWall in Slurm's spellings, MaxSubmitJobsPerUser, flags; limits inherited from the account as sacctmgr shows
    them, of one cluster where named; a QOS it does not list, or a user without associations: None."""
    assert qos_record("Capped") == Qos("capped", frozenset(), 1440, 5)
    assert qos_record("long") == Qos("long", frozenset({"DenyOnLimit", "PartitionTimeLimit"}), 20, None)
    assert qos_record("nonesuch") is None
    default, rows = user_associations("me", "C1")
    assert default == "lab" and rows[0] == Association("lab", "", "", ("normal", "capped"), 4, None)
    assert rows[2] == Association("other", "", "", ("long",), None, 120) and len(rows) == 3
    assert len(user_associations("me")[1]) == 4 and user_associations("me", "c3") is None
    (site / "enforce").write_text("associations,qos")
    assert limits_enforced(slurm_config()) is False
    (site / "enforce").write_text("safe")
    assert limits_enforced(slurm_config()) is True


def test_the_qos_a_stage_gets_without_one_is_its_associations_default_else_its_only_one_else_normal():
    """As Slurm chooses it: the association's DefaultQOS, else its one QOS, else normal. A partition with an
    association of its own takes that one; a list whose partitions differ: cannot tell."""
    assert Association("a", default_qos="gold", qos=("gold", "normal")).job_qos() == "gold"
    assert Association("a", qos=("long",)).job_qos() == "long"
    assert Association("a", qos=("long", "short")).job_qos() == "normal"
    rows = [Association("lab", qos=("normal", "capped")), Association("lab", "gpu", "capped", ("capped",)),
            Association("other", qos=("long",))]
    def of(**keys):
        return job_association(Profile(**{"partition": "debug", **keys}).placement("pretrain"), "lab", rows)

    assert of() == rows[0] and of(partition="gpu") == rows[1] and of(partition="gpu,debug") is None
    assert of(account="Other") == rows[2] and of(account="nobody") is None


def test_how_many_jobs_a_submit_may_queue_counts_the_users_queued_jobs_of_each_limit(site):
    """The QOS's MaxSubmitJobsPerUser counts the user's jobs in that QOS; without one, the association's
    MaxSubmitJobs counts the user's jobs on its account (on partitions without an association of their own). Stages
    under one limit share its room, also where another limit decides for one of them (the association counts jobs
    of every QOS); the submit stops at the first job refused, so the stages after it count none."""
    prof = Profile(partition="debug", qos="capped")
    (site / "squeue").write_text("lab|capped|debug\nlab|capped|debug\nlab|normal|debug\n")
    assert submit_room(prof, {"pretrain": 2, "evaluate": 2}, Accounting("me")) == (
        3, "QOS 'capped' (`qos`, sacctmgr) lets you have 5 jobs in Slurm's queue at once (its MaxSubmitJobsPerUser), "
           "and you have 2 there now (squeue -u me) besides this submit's 2 pretrain job(s) queued before them")
    assert submit_room(prof, {"pretrain": 1, "evaluate": 2}, Accounting("me")) is None  # all 3 fit
    plain = Profile(partition="debug")  # QOS normal (the default: two QOS, none the default), no MaxSubmitJobsPerUser
    (site / "squeue").write_text("lab|normal|debug\nlab|capped|gpu\nother|long|debug\n")  # gpu: its own association
    fits, said = submit_room(plain, {"pretrain": 4}, Accounting("me"))
    assert fits == 3 and said.startswith("your association with account 'lab' (sacctmgr) lets you have 4 jobs")
    assert "and you have 1 there now" in said
    # pretraining under QOS capped's limit (5), the evaluations under the association's (4), which also counts the
    # pretraining jobs (Slurm's AssocMaxSubmitJobLimit): 3 fit where each limit alone lets all 5 in
    (site / "squeue").write_text("")
    split = Profile(partition="debug", stage_placement={"pretrain": {"qos": "capped"}})
    assert submit_room(split, {"pretrain": 3, "evaluate": 2}, Accounting("me")) == (
        4, "your association with account 'lab' (sacctmgr) lets you have 4 jobs in Slurm's queue at once (its "
           "MaxSubmitJobs), and you have 0 there now (squeue -u me) besides this submit's 3 pretrain job(s) queued "
           "before them")
    assert submit_room(split, {"pretrain": 2, "evaluate": 2}, Accounting("me")) is None
    long = Profile(partition="debug", account="other")  # QOS long: no limit; nor has its association
    assert submit_room(long, {"pretrain": 100}, Accounting("me")) is None
    # c2's association of lab (MaxSubmitJobs 1, MaxWall 10 min) is not this cluster's
    assert Accounting("me").max_wall(plain.placement("pretrain")) is None
    assert Accounting("me").max_wall(prof.placement("pretrain"))[0] == 1440
    (site / "enforce").write_text("none")  # limits not enforced: every job fits
    assert submit_room(prof, {"pretrain": 100}, Accounting("me")) is None
    (site / "enforce").write_text("limits")
    (site / "qos").write_text("")  # sacctmgr does not list the QOS: cannot tell
    assert Accounting("me").submit_limit(prof.placement("pretrain")) is None


def test_a_dry_run_says_how_many_jobs_the_queue_limit_lets_in_and_a_time_over_the_qos_maxwall(env, slurm):
    """Before submitting: the dry run says that 3 of the 4 jobs fit under the QOS's MaxSubmitJobsPerUser (5, with 2
    of the user's queued), and that the submit goes on when run again; a time above the QOS's MaxWall (pending for
    ever) is refused before any sbatch, and warned of by a dry run."""
    fake_commands(slurm / "bin",
                  sacctmgr=(f'case "$*" in *"show qos"*) printf "{QOS}" | grep "^capped|"; exit 0;; '
                            f'*withassoc*) printf "{USER}"; exit 0;; esac; exit 1'),
                  scontrol='echo "AccountingStorageEnforce = associations,limits,qos"; echo "ClusterName = c1"; '
                           'echo "MaxArraySize = 1001"')
    (slurm / "squeue").write_text("lab|capped|debug\nlab|capped|debug\n")
    grid = env / "g.yaml"
    grid.write_text(grid_text("room", seeds=(0, 1)))
    (env / "profile.yaml").write_text(PROFILE + "qos: capped\n")
    code, _, err = run_cli(submit_argv(grid, env / "wd", "--dry-run"))
    assert code == 0 and ("[study] note: Slurm's limit on your jobs in its queue lets in 3 of this submit's 4 job(s): "
                          "QOS 'capped' (`qos`, sacctmgr) lets you have 5 jobs") in err, err
    assert "A submit queues those 3, then stops: run it again once some of your jobs have left the queue" in err
    (env / "profile.yaml").write_text(PROFILE.replace("time: 10m}\n", "time: 25h}\n", 1) + "qos: capped\n")
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    assert code == 2 and ("pretrain jobs ask for up to 25h (`time`), more than the 24h MaxWall of QOS 'capped' "
                          "(`qos`, sacctmgr): ask for at most that") in err, err
    assert err.rstrip().endswith("nothing was queued") and not (slurm / "counter").exists(), err
    code, _, err = run_cli(submit_argv(grid, env / "wd", "--dry-run"))
    assert code == 0 and "study: warning: " in err and "24h MaxWall of QOS 'capped'" in err, err


# `scontrol --oneliner show partition`, as Slurm 22.05 prints it (fields cut): debug takes QOS capped only, gpu
# does not take account lab
PARTITIONS = ("PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=capped,Long AllocNodes=ALL Default=YES "
              "QoS=N/A MaxTime=UNLIMITED State=UP\n"
              "PartitionName=gpu AllowGroups=ALL DenyAccounts=lab AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A "
              "MaxTime=UNLIMITED State=UP\n")


def test_a_partition_that_does_not_take_the_stages_qos_or_account_is_refused_before_any_sbatch(env, slurm):
    """A job of a QOS or account its partition does not take (AllowQos, DenyAccounts) pends for ever where the
    cluster's EnforcePartLimits is NO ("Job's QOS not permitted to use this partition"): refused before the first
    sbatch, saying which and where to look, and warned of by a dry run; a list of partitions of which one takes it
    goes on. The stage's QOS without `qos` is its association's (two QOS, no default: normal)."""
    from study.launch.slurm.params import PartitionAccess, partition_access

    fake_commands(slurm / "bin",
                  sacctmgr=(f'case "$*" in *"show qos"*) printf "{QOS}" | grep -i "^$(echo "$*" | '
                            f'sed "s/.*name=\\([^ ]*\\).*/\\1/")|"; exit 0;; *withassoc*) printf "{USER}"; exit 0;; '
                            f'esac; exit 1'),
                  scontrol=(f'case "$*" in *partition*) printf "{PARTITIONS}";; *) echo "AccountingStorageEnforce = '
                            f'associations"; echo "ClusterName = c1"; echo "MaxArraySize = 1001";; esac'))
    assert partition_access() == {"debug": PartitionAccess(allow_qos=frozenset({"capped", "long"})),
                                  "gpu": PartitionAccess(deny_accounts=frozenset({"lab"}))}
    grid = env / "g.yaml"
    grid.write_text(grid_text("access"))
    (env / "profile.yaml").write_text(PROFILE)  # partition debug, no qos: normal, which debug does not take
    code, _, err = run_cli(submit_argv(grid, env / "wd"))
    assert code == 2 and ("pretrain and evaluate jobs: partition 'debug' takes only QOS capped, long (AllowQos), not "
                          "'normal' (scontrol show partition): set `qos` or `account` to one it takes, or another "
                          "`partition`; nothing was queued") in err, err
    assert err.rstrip().endswith("nothing was queued") and not (slurm / "counter").exists(), err
    code, _, err = run_cli(submit_argv(grid, env / "wd", "--dry-run"))
    assert code == 0 and "study: warning: " in err and "takes only QOS capped, long (AllowQos)" in err, err
    (env / "profile.yaml").write_text(PROFILE + "qos: Capped\n")  # taken: no word of it
    code, _, err = run_cli(submit_argv(grid, env / "wd", "--dry-run"))
    assert code == 0 and "AllowQos" not in err, err
    (env / "profile.yaml").write_text(PROFILE.replace("partition: debug", "partition: gpu") + "qos: capped\n")
    code, _, err = run_cli(submit_argv(grid, env / "wd", "--dry-run"))  # the default account, lab, denied
    assert "partition 'gpu' does not take account 'lab' (DenyAccounts)" in err, err
    (env / "profile.yaml").write_text(PROFILE.replace("partition: debug", "partition: gpu,debug") + "qos: capped\n")
    code, _, err = run_cli(submit_argv(grid, env / "wd", "--dry-run"))  # debug takes it: Slurm runs it there
    assert code == 0 and "DenyAccounts" not in err, err


def test_a_hidden_partition_is_checked_and_a_list_with_a_partition_scontrol_does_not_show_is_not(slurm):
    """`scontrol show partition` leaves hidden partitions out unless given --all (sinfo --all lists them): one was
    not checked. A list with a partition scontrol does not show may run its jobs there: nothing said of it. A list
    spelt `(null)` sets none: it took no QOS at all."""
    from study.launch.slurm.params import PartitionAccess, partition_access, partitions_not_taking

    hidden = ("PartitionName=hidden AllowGroups=ALL AllowAccounts=ALL AllowQos=long Hidden=YES State=UP\\n"
              "PartitionName=old AllowAccounts=(null) AllowQos=(null) DenyQos=(null) State=UP\\n")  # none set
    fake_commands(slurm / "bin", scontrol=(f'case "$*" in *--all*partition*) printf "{PARTITIONS}{hidden}";; '
                                           f'*partition*) printf "{PARTITIONS}";; esac'))
    access = partition_access()
    assert access["old"] == PartitionAccess()  # takes every QOS and account

    def refused(partition: str) -> list[str]:
        return partitions_not_taking(Profile(partition=partition, qos="capped"), ["pretrain"], access,
                                     lambda p: p.qos, lambda p: "lab")

    assert refused("hidden") == ["pretrain jobs: partition 'hidden' takes only QOS long (AllowQos), not 'capped' "
                                 "(scontrol show partition): set `qos` or `account` to one it takes, or another "
                                 "`partition`"]
    assert refused("gpu") and refused("gpu,hidden") and not refused("gpu,debug")
    assert refused("gpu,other") == []  # other: not shown by scontrol, may take them


def test_a_list_of_partitions_of_which_one_takes_the_time_and_another_the_account_but_none_both_is_refused():
    """`partition: short,noroot`, 1h jobs: short's MaxTime is 30 min, noroot denies the account. The time check (the
    list's longest MaxTime) and the access check (a partition that takes the account) each passed it; Slurm pends it
    for ever (checked on the real cluster: tests/launch/test_slurm.py). Under EnforcePartLimits=ALL, one partition that
    does not take the account refuses it (sbatch: "Invalid account or account/partition combination")."""
    from study.launch.slurm.params import PartitionAccess, partitions_not_taking, partitions_split

    limits = {"short": 30, "noroot": None, "debug": None}
    access = {"short": PartitionAccess(), "noroot": PartitionAccess(deny_accounts=frozenset({"root"})),
              "debug": PartitionAccess()}
    qos, root = (lambda p: p.qos), (lambda p: "root")

    def split(partition: str, minutes: int = 60, lifts: bool | None = False) -> list[str]:
        return partitions_split(Profile(partition=partition), {"evaluate": minutes}, limits, access, lambda p: lifts,
                                qos, root)

    assert split("short,noroot") == [
        "evaluate jobs, up to 1h long (`time`): no partition of partition 'short,noroot' takes them: 'short' has a "
        "MaxTime of 30m (sinfo); 'noroot' does not take account 'root' (DenyAccounts) (scontrol show partition): "
        "change their time, `qos` or `account` so that one of these partitions takes their time, QOS and account "
        "together, or set another `partition`"]
    assert split("short,noroot", minutes=30) == []  # short takes them
    assert split("short,noroot,debug") == []  # debug takes them
    assert split("short,noroot", lifts=True) == [] and split("short,noroot", lifts=None) == []  # lifted; not told
    assert split("noroot") == [] and split("short,other") == []  # one partition; one sinfo and scontrol do not show
    limits["hidden"] = None  # sinfo lists it, scontrol does not show it: it may take them
    assert split("short,noroot,hidden") == []
    limits["short"], access["short"] = 30, PartitionAccess(deny_accounts=frozenset({"root"}))
    assert split("short,noroot") == []  # neither takes the account: partitions_not_taking says so, alone
    assert partitions_not_taking(Profile(partition="debug,noroot"), ["evaluate"], access, qos, root) == []
    (every,) = partitions_not_taking(Profile(partition="debug,noroot"), ["evaluate"], access, qos, root, every=True)
    assert every == ("evaluate jobs: partition 'noroot' does not take account 'root' (DenyAccounts) (scontrol show "
                     "partition; EnforcePartLimits=ALL: each partition of its list must take the job): set `qos` or "
                     "`account` to one it takes, or another `partition`"), every


def test_the_users_accounts_are_those_of_this_cluster(tmp_path, monkeypatch):
    """One accounting database may serve several clusters: the accounts a refusal lists and the warning compares
    with are the user's on this one (ClusterName), as are the associations."""
    calls = tmp_path / "calls"
    bin_dir = fake_commands(tmp_path / "bin",
                            sacctmgr=f'echo "$*" >> {calls}; echo lab',
                            scontrol='echo "ClusterName = ci"; echo "AccountingStorageEnforce = associations"')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert Accounting("me").accounts == ["lab"]
    assert "show assoc where user=me cluster=ci format=Account" in calls.read_text()
