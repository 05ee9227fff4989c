"""What Slurm would refuse of a submit, asked before its first sbatch (`check_before_queueing`), so that no stage's
jobs are queued without the jobs that wait on them:

- a partition sinfo does not list, or whose MaxTime is below a stage's `time` (its jobs would pend for ever,
  PartitionTimeLimit): `cluster_partitions`, `unknown_partitions`, `over_time_limits`;
- a placement the controller refuses, asked by `sbatch --test-only` (nothing queued) once per stage and resources:
  an account or QOS the user is not associated with (an account: the refusal lists the user's, `sacctmgr show
  assoc`), a GPU type or count, memory or CPUs that no node of the partition has (an answer it also gives where the
  partition's nodes are down or drained now, NODES_NOT_UP: then, unless sinfo says every node of the partition is
  up, a warning, and sbatch decides). An account the user has no association with that a cluster not enforcing
  associations accepts: a warning (Slurm puts the jobs on the user's default account).
  Its refusal on the accounting policy ("Job violates accounting/QOS policy") is a limit of the QOS or association
  per job or on how many jobs the user may have queued (MaxSubmitJobs, reached): it does not say which, and the
  refusal names both, with the user's count of queued jobs (squeue).

A dry run asks sinfo only, and warns; where Slurm cannot be asked (no sinfo, a controller that does not answer),
nothing is checked (a warning where `sbatch --test-only` does not answer) and sbatch decides."""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Iterable, TextIO

from study.errors import StudyError
from study.grids.profile import option_name
from study.launch.ledger import user
from study.launch.slurm import state as slurm_state
from study.launch.slurm.params import (ask_slurm, cluster_partitions, over_time_limits, partition_nodes_up,
                                       qos_lifts_time_limit, slurm_parameters, unknown_partitions, user_accounts)
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
# what --test-only also answers where the partition's nodes are down, drained or reserved now (it weighs only the nodes
# up now; sbatch queues such a job to wait): a warning, and sbatch decides (it refuses a size no node has, with the
# first of these)
INVALID_ACCOUNT = "Invalid account"  # sbatch's "Invalid account or account/partition combination specified"
NODES_NOT_UP = ("Requested node configuration is not available", "Requested partition configuration not available now",
                "Required node not available", "Requested nodes are busy")


def check_before_queueing(plan: Any, workdir: Path, jobs: list[Any], dry_run: bool, err: TextIO) -> None:
    """StudyError (nothing queued yet) where Slurm would refuse some of `jobs`, or never start them; for a dry run, a
    warning on `err` of what sinfo tells."""
    _check_partitions(plan.profile, _stage_times(jobs), dry_run, err)
    if not dry_run:
        _test_only(plan, workdir, jobs, err)


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


def _check_partitions(profile: Any, stage_times: dict[str, int], dry_run: bool, err: TextIO) -> None:
    """A partition of the stages to queue that sinfo does not list, or whose MaxTime is below the time a stage's jobs
    ask for (`stage_times`: stage -> minutes): a StudyError; a warning for a dry run. Nothing where sinfo cannot
    tell."""
    known = cluster_partitions() if stage_times else None  # nothing to queue: nothing to ask
    if known is None:
        return
    unknown = unknown_partitions(profile, stage_times, known)
    over, unsure = over_time_limits(profile, stage_times, known,  # sacctmgr asked once per QOS, not per stage
                                    functools.lru_cache(maxsize=None)(qos_lifts_time_limit))
    problems = ([f"{'; '.join(unknown)}: not a partition of this cluster (sinfo lists {', '.join(sorted(known))})"]
                if unknown else []) + over
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


def _test_only(plan: Any, workdir: Path, jobs: list[Any], err: TextIO) -> None:
    """`sbatch --test-only` of one job script per (stage, resources) of `jobs`: a StudyError naming the profile keys
    and what Slurm said where it refuses one; a warning on `err` where the refusal may only be nodes down now
    (NODES_NOT_UP); where it cannot be asked (sbatch fails to start, times out, or reaches no controller), a warning and
    no further asking."""
    profile, seen, accounts_said = plan.profile, set(), set()
    mine = functools.lru_cache(maxsize=None)(lambda: user_accounts(user()))  # sacctmgr asked once, where needed
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
            account, key = placement.account, placement.key("account")
            if account and (key, account) not in accounts_said and mine() is not None \
                    and account.lower() not in mine():
                accounts_said.add((key, account))
                print(f"study: warning: profile {profile.path or 'built-in default'}: account {account!r} (`{key}`) is "
                      f"not one you have an association with ({_accounts_text(mine())}); this cluster does not "
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
            raise StudyError(f"{what}; {_invalid_account_said(profile.placement(job.stage).account, mine())}; "
                             "nothing was queued")
        raise StudyError(f"{what}; change the profile (or the grid's resources); nothing was queued")


def _accounts_text(accounts: list[str] | None) -> str:
    """The user's Slurm accounts as a refusal or warning says them (`accounts`: `user_accounts`)."""
    asked = f"sacctmgr show assoc user={user()}"
    if accounts is None:
        return f"`{asked}` lists your accounts"
    return f"yours: {', '.join(accounts)} ({asked})" if accounts else f"`{asked}` lists none of yours"


def _invalid_account_said(account: str | None, accounts: list[str] | None) -> str:
    """What to do of sbatch's "Invalid account or account/partition combination": another account, or, for one of
    the user's, a partition or QOS its association covers."""
    if account and accounts and account.lower() in accounts:
        return (f"{account} is one of yours, but not with this partition or QOS: `sacctmgr show assoc user={user()} "
                "format=Account,Partition,QOS` lists what each of your accounts may use")
    if accounts == []:
        return f"{_accounts_text(accounts)}: you have no Slurm account yet; your cluster's admins add one"
    return f"{_accounts_text(accounts)}: set the profile's account to one of them (or leave it out for your default)"


def _accounting_policy_said() -> str:
    """What Slurm's refusal on its accounting policy (`ACCOUNTING_POLICY`) may mean, with the count of the user's
    jobs in its queue now where squeue tells it."""
    listed = ask_slurm(["squeue", "--noheader", "--array", "--user", user(), "--format", "%i"])
    queued = (f"; {len(listed.stdout.split())} of yours are queued now, squeue -u {user()}"
              if listed is not None and listed.returncode == 0 else "")
    return ("that is a limit of your QOS or association, either per job (time, CPUs, memory, GPUs: change the profile "
            "or the grid's resources) or on how many jobs you may have in Slurm's queue at once (MaxSubmitJobs; each "
            f"array task counts as one{queued}): for that one, submit again once some have left the queue")
