"""What Slurm would refuse of a submit, asked before its first sbatch (`check_before_queueing`), so that no stage's
jobs are queued without the jobs that wait on them:

- a partition sinfo does not list, or whose MaxTime is below a stage's `time` (its jobs would pend for ever,
  PartitionTimeLimit) and the stage's QOS does not lift: `cluster_partitions`, `unknown_partitions`,
  `over_time_limits`; partitions none of which takes the stage's QOS or account (AllowQos, DenyAccounts, ...: pending
  for ever under EnforcePartLimits=NO), as `scontrol show partition` says: `partition_access`,
  `partitions_not_taking`; a list of partitions of which one takes the time and another the QOS and account but none
  both (squeue names one partition's reason; `sbatch --test-only` says the job would start): `partitions_split`; a
  `time` above the MaxWall of the stage's QOS or association, where the cluster enforces it (pending for ever,
  QOSMaxWallDurationPerJobLimit): `accounting.Accounting.max_wall`;
- a placement the controller refuses, asked by `sbatch --test-only` (nothing queued) once per stage and resources:
  an account or QOS the user is not associated with (an account: the refusal lists the user's, `sacctmgr show
  assoc`), a GPU type or count, memory or CPUs that no node of the partition has (an answer it also gives where the
  partition's nodes are down or drained now, NODES_NOT_UP: then, unless sinfo says every node of the partition is
  up, a warning, and sbatch decides). An account the user has no association with that a cluster not enforcing
  associations accepts: a warning (Slurm puts the jobs on the user's default account).
  Its refusal on the accounting policy ("Job violates accounting/QOS policy") is a limit of the QOS or association
  per job or on how many jobs the user may have queued (MaxSubmitJobs, reached): it does not say which, and the
  refusal names both, with the user's count of queued jobs (squeue).

A dry run asks sinfo, scontrol and sacctmgr only, and warns; it also says how many of its jobs the limit on the
user's jobs in the queue (MaxSubmitJobs) lets in, where that is fewer than all (`accounting.submit_room`). Where Slurm
cannot be asked (no sinfo, a controller that does not answer), nothing is checked (a warning where `sbatch
--test-only` does not answer) and sbatch decides."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, TextIO

from study.errors import StudyError
from study.grids.profile import option_name
from study.launch.ledger import user
from study.launch.slurm import state as slurm_state
from study.launch.slurm.accounting import Accounting, submit_room
from study.launch.slurm.params import (OTHER_CLUSTERS_VARIABLES, ask_slurm, cluster_partitions,
                                       every_partition_enforced, over_time_limits, partition_access, partition_names,
                                       partition_nodes_up, partitions_not_taking, partitions_split, slurm_parameters,
                                       unknown_partitions)
from study.launch.slurm.sbatch import sbatch_script, submission_env

TEST_ONLY_TIMEOUT_S = 60.0  # an sbatch --test-only that waits on a busy controller longer: not asked, sbatch decides
# how `sbatch --test-only` says no: its "allocation failure: <why>", an option value sbatch or the controller refuses,
# or an option sbatch does not take (unknown, ambiguous or missing its value: each followed by BAD_OPTION's line)
BAD_OPTION = 'Try "sbatch --help"'
REFUSED = ("allocation failure", "sbatch: error", BAD_OPTION)
# the controller said nothing, or could not tell who asks (munge down): no answer on the placement, sbatch decides
UNANSWERED = ("Unable to contact", "timed out", "Zero Bytes", "Connection refused", "authentication error")
# what sbatch (--test-only too) answers for any limit of a QOS or association it enforces, per job (MaxWall, MaxTRES)
# or on how many jobs the user may have queued (MaxSubmitJobs): --test-only's answer does not say which; older Slurm
# versions said "Job violates accounting policy (job submit limit, ...)", without "/QOS"
ACCOUNTING_POLICY = re.compile(r"Job violates accounting(/QOS)? policy")
INVALID_ACCOUNT = "Invalid account"  # sbatch's "Invalid account or account/partition combination specified"
INVALID_QOS = "Invalid qos specification"  # a QOS the association does not allow, or the partition does not take
# what --test-only also answers where the partition's nodes are down, drained or reserved now (it weighs only the nodes
# up now; sbatch queues such a job to wait): a warning, and sbatch decides (it refuses a size no node has, with the
# first of these)
NODES_NOT_UP = ("Requested node configuration is not available", "Requested partition configuration not available now",
                "Required node not available", "Requested nodes are busy")


def check_before_queueing(plan: Any, workdir: Path, jobs: list[Any], dry_run: bool, err: TextIO) -> None:
    """StudyError (nothing queued yet) where Slurm would refuse some of `jobs`, or never start them; for a dry run, a
    warning on `err` of what sinfo and sacctmgr tell, and how many of `jobs` the user's limit of queued jobs lets
    in where not all."""
    accounting = Accounting(user())  # sacctmgr, scontrol and squeue asked once each, where needed
    here = (accounting.config.get("ClusterName") or "").lower()  # a variable naming this cluster alone changes nothing
    elsewhere = [f"{k}={os.environ[k]}" for k in OTHER_CLUSTERS_VARIABLES if os.environ.get(k, here).lower() != here]
    if elsewhere:
        print(f"study: warning: {', '.join(elsewhere)} set in this shell, which study's Slurm commands run without: "
              f"it queues, reads and cancels its jobs on this host's cluster "
              f"({accounting.config.get('ClusterName') or 'its ClusterName'}) alone; to queue on another cluster, run "
              f"study on a login node of that cluster", file=err, flush=True)
    _check_partitions(plan.profile, _stage_times(jobs), accounting, dry_run, err)
    if dry_run:
        _say_submit_room(plan.profile, jobs, accounting, err)
    else:
        _test_only(plan, workdir, jobs, accounting, err)


def placement_said(profile: Any, stage: str) -> str:
    """The profile keys that place `stage`'s jobs, as a refusal names them (`; stages.evaluate.qos: 'short',
    account: 'lab'`), or nothing."""
    placement = profile.placement(stage)
    keys = [f"{placement.key(k)}: {getattr(placement, k)!r}"
            for k in ("partition", "account", "qos", "constraint", "gpu_type") if getattr(placement, k)]
    return f"; {', '.join(keys)}" if keys else ""


def _stage_times(jobs: Iterable[Any]) -> dict[str, int]:
    """Each stage of `jobs` (in order) -> the longest time limit its jobs ask for, in minutes."""
    times: dict[str, int] = {}
    for job in jobs:
        times[job.stage] = max(times.get(job.stage, 0), int(job.resources.time_min))
    return times


def _check_partitions(profile: Any, stage_times: dict[str, int], accounting: Accounting, dry_run: bool,
                      err: TextIO) -> None:
    """A partition of the stages to queue that sinfo does not list, or whose MaxTime is below the time a stage's jobs
    ask for (`stage_times`: stage -> minutes) and their QOS does not lift, or that does not take their QOS or account
    (AllowQos, DenyAccounts, ...: `scontrol show partition`), or a time above the MaxWall of their QOS or association:
    a StudyError; a warning for a dry run. Nothing where sinfo (of a MaxWall, sacctmgr) cannot tell."""
    known = cluster_partitions() if stage_times else None  # nothing to queue: nothing to ask
    problems, unsure = [], []
    if known is not None:
        unknown = unknown_partitions(profile, stage_times, known)
        if unknown:
            problems.append(f"{'; '.join(unknown)}: not a partition of this cluster (sinfo lists "
                            f"{', '.join(sorted(known))})")
        every = any(len(partition_names(profile.placement(stage))) > 1 for stage in stage_times) and \
            bool(every_partition_enforced(accounting.config))  # asked only of a list of partitions
        over, unsure = over_time_limits(profile, stage_times, known, accounting.lifts_time_limit, every)
        problems += over
        access = partition_access()
        if access is not None:
            problems += partitions_not_taking(profile, stage_times, access, accounting.job_qos,
                                              accounting.job_account, every)
            if not every:
                problems += partitions_split(profile, stage_times, known, access, accounting.lifts_time_limit,
                                             accounting.job_qos, accounting.job_account)
    problems += _over_max_wall(profile, stage_times, accounting)
    for said in unsure:
        print(f"study: warning: profile {profile.path or 'built-in default'}: {said}; unless the stage's QOS has the "
              f"flag PartitionTimeLimit, which lifts it (sacctmgr could not tell)", file=err, flush=True)
    if not problems:
        return
    said = f"profile {profile.path or 'built-in default'}: {'; '.join(problems)}"
    if dry_run:
        print(f"study: warning: {said}: sbatch would refuse its jobs, or Slurm never start them", file=err,
              flush=True)
        return
    raise StudyError(f"{said}; nothing was queued")


def _over_max_wall(profile: Any, stage_times: dict[str, int], accounting: Accounting) -> list[str]:
    """Each stage whose longest job (`stage_times`: stage -> minutes) asks more than the MaxWall of its QOS or
    association (where the cluster enforces it: such a job pends for ever, QOSMaxWallDurationPerJobLimit, or sbatch
    refuses it), said with what to change."""
    from study.grids.profile import minutes_text

    over = []
    for stage, time_min in stage_times.items():
        placement = profile.placement(stage)
        wall = accounting.max_wall(placement)
        if wall is not None and time_min > wall[0]:
            over.append(f"{stage} jobs ask for up to {minutes_text(time_min)} (`time`), more than the "
                        f"{minutes_text(wall[0])} MaxWall of {wall[1]}: ask for at most that (the profile's "
                        f"stages.{stage}.time, or the grid's resources), or give them a QOS that allows it "
                        f"(`{placement.key('qos')}`)")
    return over


def _say_submit_room(profile: Any, jobs: list[Any], accounting: Accounting, err: TextIO) -> None:
    """Where the limit on the user's jobs in Slurm's queue lets in fewer of `jobs` than all (`submit_room`): how
    many it lets in, and that the same submit, run again later, queues the rest."""
    counts = {stage: sum(1 for job in jobs if job.stage == stage) for stage in ("pretrain", "evaluate")}
    room = submit_room(profile, {stage: n for stage, n in counts.items() if n}, accounting) if jobs else None
    if room is None:
        return
    fits, said = room
    then = (f"A submit queues those {fits}, then stops: run it again once some of your jobs have left the queue, it "
            f"queues the rest" if fits else
            "A submit now queues none: run it once some of your jobs have left the queue")
    print(f"[study] note: Slurm's limit on your jobs in its queue lets in {fits or 'none'} of this submit's "
          f"{len(jobs)} job(s): {said}. {then}", file=err, flush=True)


def _additional_said(profile: Any, stage: str, said: str) -> str:
    """Where the profile sets the sbatch option that `said` (sbatch's answer to an option it does not take: unknown,
    ambiguous, value missing) names first: ` (set by the profile's `stages.<stage>.additional`: `<key>`)`, or the
    top-level `additional`'s; where it names none of the stage's options, the keys that give them; "" where the
    profile gives `stage` none (the option is one study writes)."""
    options = profile.placement(stage).additional
    own = profile.stage_placement.get(stage, {}).get("additional") or {}
    named = re.search(r"option '--?([A-Za-z0-9][\w-]*)", said)
    hit = [k for k in options if named and option_name(k) == named.group(1)]
    if hit:
        return f" (set by the profile's `{f'stages.{stage}.' if hit[0] in own else ''}additional`: `{hit[0]}`)"
    keys = sorted({f"stages.{stage}.additional" if k in own else "additional" for k in options})
    return f" (the profile's own sbatch options are its `{'` and `'.join(keys)}`)" if keys else ""


def _test_only(plan: Any, workdir: Path, jobs: list[Any], accounting: Accounting, err: TextIO) -> None:
    """`sbatch --test-only` of one job script per (stage, resources) of `jobs`: a StudyError naming the profile keys
    and what Slurm said where it refuses one; a warning on `err` where the refusal may only be nodes down now
    (NODES_NOT_UP); where it cannot be asked (sbatch fails to start, times out, or reaches no controller), a warning and
    no further asking."""
    profile, seen, accounts_said = plan.profile, set(), set()
    for job in jobs:
        if (job.stage, job.resources) in seen:
            continue
        seen.add((job.stage, job.resources))
        params = slurm_parameters(profile, job.stage, job.resources, job_name=f"study-{plan.name}-test-only")
        script = sbatch_script(params, slurm_state.submitit_folder(workdir, "test-only"), 1, profile.python)
        with submission_env():
            run = ask_slurm(["sbatch", "--test-only"], input=script, timeout=TEST_ONLY_TIMEOUT_S)
        said = "" if run is None else " ".join(line.strip() for line in (run.stderr + run.stdout).splitlines()
                                               if line.strip())
        if run is None or any(w in said for w in UNANSWERED):  # asking again would wait as long: sbatch decides
            print("study: warning: sbatch --test-only "
                  + (f"did not answer (within {TEST_ONLY_TIMEOUT_S:g} s, or could not start)" if run is None
                     else f"said: {said}")
                  + f": the placement of the {job.stage} jobs and the stages after is not checked; submitting, "
                  "sbatch decides", file=err, flush=True)
            return
        if run.returncode == 0 or not any(w in said for w in REFUSED):
            placement = profile.placement(job.stage)
            account, key, mine = placement.account, placement.key("account"), accounting.accounts
            if account and (key, account) not in accounts_said and mine is not None and account.lower() not in mine:
                accounts_said.add((key, account))
                print(f"study: warning: profile {profile.path or 'built-in default'}: account {account!r} (`{key}`) is "
                      f"not one you have an association with ({_accounts_text(mine)}); this cluster does not "
                      f"enforce associations, so Slurm queues the jobs of the stages `{key}` places on your default "
                      f"account: set one of yours to have them on it", file=err, flush=True)
            continue
        bad_option = BAD_OPTION in said
        said = said.split(BAD_OPTION)[0].strip()  # the option and why: the rest is "... for more information"
        asked = [f"--{key.replace('_', '-')}={params[key]}" for key in ("gres", "gpus_per_node") if key in params]
        asked += [f"--cpus-per-task={params['cpus_per_task']}", f"--mem={params['mem']}", f"--nodes={params['nodes']}",
                  f"--time={params['time']}"]
        what = (f"profile {profile.path or 'built-in default'}: Slurm refuses the {job.stage} jobs "
                f"({', '.join(asked)}{placement_said(profile, job.stage)}): sbatch --test-only said: {said}"
                + (_additional_said(profile, job.stage, said) if bad_option else ""))
        if any(w in said for w in NODES_NOT_UP) and (not params["partition"]
                                                    or partition_nodes_up(params["partition"]) is not True):
            print(f"study: warning: {what}; it says so too where the partition's nodes are down or drained now "
                  f"(sinfo -p {params['partition']}), which sbatch queues to wait: submitting, sbatch decides",
                  file=err, flush=True)
            continue
        if ACCOUNTING_POLICY.search(said):  # a limit per job, or the count of queued jobs: Slurm does not say which
            raise StudyError(f"{what}; {_accounting_policy_said()}; nothing was queued")
        if INVALID_ACCOUNT in said:
            raise StudyError(f"{what}; {_invalid_account_said(profile.placement(job.stage), accounting)}; nothing "
                             "was queued")
        if INVALID_QOS in said:
            raise StudyError(f"{what}; {_invalid_qos_said(profile.placement(job.stage), accounting)}; nothing was "
                             "queued")
        raise StudyError(f"{what}; change the profile (or the grid's resources); nothing was queued")


def _accounts_text(accounts: list[str] | None) -> str:
    """The user's Slurm accounts as a refusal or warning says them (`accounts`: `user_accounts`)."""
    asked = f"sacctmgr show assoc user={user()}"
    if accounts is None:
        return f"`{asked}` lists your accounts"
    return f"yours: {', '.join(accounts)} ({asked})" if accounts else f"`{asked}` lists none of yours"


def _invalid_account_said(placement: Any, accounting: Accounting) -> str:
    """What to do of sbatch's "Invalid account or account/partition combination" (`placement`: the refused stage's):
    another account; for one of the user's, or the default one where the profile sets none, a partition or QOS its
    association covers and the partition takes."""
    account, key, accounts = placement.account, placement.key("account"), accounting.accounts
    if (account and accounts and account.lower() in accounts) or (not account and accounts):
        default = (f"your default account, {accounting.associations[0]!r}" if accounting.associations else
                   f"your default account ({_accounts_text(accounts)})")
        which = f"{account} is one of yours" if account else f"the profile sets no `{key}`, so Slurm took {default}"
        return (f"{which}, but its association does not cover this partition or QOS, or the partition does not take "
                f"it: `sacctmgr show assoc user={user()} format=Account,Partition,QOS` lists what each of your "
                f"accounts may use, {_partition_said(placement)} the accounts it takes (AllowAccounts, DenyAccounts)")
    if accounts == []:
        return f"{_accounts_text(accounts)}: you have no Slurm account yet; your cluster's admins add one"
    return f"{_accounts_text(accounts)}: set the profile's account to one of them (or leave it out for your default)"


def _invalid_qos_said(placement: Any, accounting: Accounting) -> str:
    """What to do of sbatch's "Invalid qos specification" (`placement`: the refused stage's): a QOS the user's
    association allows (sacctmgr lists them) and the partition takes."""
    association, key = accounting.association(placement), placement.key("qos")
    name = placement.qos.lower() if placement.qos else association.job_qos() if association is not None else None
    qos = f"QOS {placement.qos!r} (`{key}`)" if placement.qos else \
        f"{f'QOS {name!r}, ' if name else 'the QOS Slurm gave the jobs, '}your association's default (the profile " \
        f"sets no `{key}`)"
    partition = f"{_partition_said(placement)} the QOS it takes (AllowQos, DenyQos)"
    if association is not None and name in association.qos:
        return f"{qos} is one your association may use, but the partition does not take it: {partition}"
    yours = f" (yours: {', '.join(association.qos)})" if association is not None and association.qos else ""
    return (f"{qos} is not one your association may use{yours}: `sacctmgr show assoc user={user()} "
            f"format=Account,Partition,QOS`, or one the partition takes: {partition}; set one that both allow")


def _partition_said(placement: Any) -> str:
    """`scontrol show partition <its partition>` lists ... (a list of partitions: each)."""
    names = partition_names(placement)
    return " and ".join(f"`scontrol show partition {name}`" for name in names) + (" list" if len(names) > 1 else
                                                                                   " lists")


def _accounting_policy_said() -> str:
    """What Slurm's refusal on its accounting policy (`ACCOUNTING_POLICY`) may mean, with the count of the user's
    jobs in its queue now where squeue tells it."""
    listed = ask_slurm(["squeue", "--noheader", "--array", "--user", user(), "--format", "%i"])
    queued = (f"; {len(listed.stdout.split())} of yours are queued now, squeue -u {user()}"
              if listed is not None and listed.returncode == 0 else "")
    return ("that is a limit of your QOS or association, either per job (time, CPUs, memory, GPUs: change the profile "
            "or the grid's resources) or on how many jobs you may have in Slurm's queue at once (MaxSubmitJobs; each "
            f"array task counts as one{queued}): for that one, submit again once some have left the queue")
