"""From a cluster profile and a job's Resources to submitit's SlurmExecutor parameters; array sizes; dependencies.

Profile key -> sbatch option (through submitit): partition -> --partition, account -> --account, qos -> --qos,
constraint -> --constraint, stage gpus -> --gpus-per-node (a pretraining job with g > 1 GPUs runs g tasks of
cpus/g CPUs each: one process per GPU, torch.distributed; `gpu_type: a100` -> --gpus-per-node=a100:g, and
`gpu_option: gres` -> --gres=gpu[:a100]:g where the cluster has no cons_tres), cpus -> --cpus-per-task,
mem -> --mem (a whole node's, `mem: node` or as much as the profile's mem_per_node, -> --mem=0: all of the node's
memory, since Slurm's schedulable RealMemory is usually below the nominal size, which it would refuse: "Requested
node configuration is not available"; the plan's cost still counts mem_per_node), time -> --time, nodes -> --nodes,
signal_delay_s -> --signal=USR2@<s> (the time a job has to checkpoint and requeue itself; capped at a tenth of a
short job's time limit, not below 10 s), setup -> lines run before the job, additional -> any other option;
a stage's own partition, account, qos, constraint, gpu_type and additional (`stages.<stage>.partition`, ...:
Profile.placement) replace the profile's for its jobs (a partition sinfo does not list: `unknown_partitions`, or
whose MaxTime there a stage's time exceeds and its QOS does not lift: `over_time_limits`, or none of whose list
takes the stage's QOS or account: `partitions_not_taking`, or a list of which none takes both: `partitions_split`,
refused by study submit before sbatch);
max_parallel_gpus (its GPUs / a job's) and max_parallel_jobs -> each array's throttle (--array=0-N%k), the smaller
where both apply. Always added:
--kill-on-invalid-dep=yes (a job whose dependency failed is cancelled, never pends forever), --requeue (a preempted
job is requeued also where the cluster's JobRequeue is 0) and --dependency; and `srun --cpus-per-task=<n>`, which
srun of Slurm 22.05-23.02 does not take from sbatch (a task would get one CPU where tasks are bound to CPUs).
Left out: submitit's `--wckey=submitit`, which a site that checks wckeys refuses (`additional: {wckey: ...}` sets one).
A job of several tasks also runs `srun --kill-on-bad-exit=1`: when one rank dies the others are killed at once
instead of waiting in NCCL collectives until the watchdog's timeout.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Container, Iterable, Sequence

from submitit.slurm.slurm import _convert_mem


def slurm_parameters(profile: Any, stage: str, resources: Any, *, job_name: str, dependency: str | None = None,
                     array_size: int = 1, code: Path | None = None) -> dict[str, Any]:
    """SlurmExecutor.update_parameters(**this) (also valid for submitit's _make_sbatch_string); `code`: the folder of
    the copy of study's code the jobs import (`snapshot.setup_lines`, after the profile's `setup`)."""
    from study.launch.snapshot import setup_lines

    gpus = int(resources.gpus)
    placement = profile.placement(stage)  # partition, account, qos, ...: the stage's own over the profile's
    tasks = resources.tasks_per_node(stage)
    cpus = max(1, int(resources.cpus) // tasks)
    params: dict[str, Any] = {
        "job_name": job_name,
        "partition": placement.partition,
        "time": int(resources.time_min),
        "nodes": int(resources.nodes),
        "ntasks_per_node": tasks,
        "cpus_per_task": cpus,
        "mem": slurm_mem(profile, resources),
        "signal_delay_s": min(profile.signal_delay_s, max(10, int(resources.time_min) * 60 // 10)),
        "setup": [*profile.setup, *(setup_lines(code) if code is not None else [])],
        "additional_parameters": {**dict(placement.additional), "kill-on-invalid-dep": "yes", "requeue": True},
        "srun_args": [f"--cpus-per-task={cpus}"],
        "wckey": None,  # submitit writes --wckey=submitit, which a site that checks wckeys refuses: the site's default
    }
    if tasks * int(resources.nodes) > 1:  # torch.distributed ranks: one that dies takes the others down
        params["srun_args"].append("--kill-on-bad-exit=1")
    if gpus:
        count = f"{placement.gpu_type}:{gpus}" if placement.gpu_type else gpus
        if profile.gpu_option == "gres":
            params["gres"] = f"gpu:{count}"
        else:
            params["gpus_per_node"] = count
    for key in ("account", "qos", "constraint"):
        value = getattr(placement, key)
        if value:
            params[key] = value
    if dependency:
        params["dependency"] = dependency
    caps = [max(1, profile.max_parallel_gpus // (gpus * int(resources.nodes)))] if (
        getattr(profile, "max_parallel_gpus", None) and gpus) else []
    if getattr(profile, "max_parallel_jobs", None):  # jobs at once, GPU or not, as the plan's estimate counts them
        caps.append(profile.max_parallel_jobs)
    params["array_parallelism"] = min(caps) if caps else max(1, array_size)
    return params


def slurm_mem(profile: Any, resources: Any) -> str:
    """--mem of a job: "0" (all of the node's memory) for a whole node's (as much as the profile's mem_per_node),
    else its amount ("60GB", "512MB")."""
    node = getattr(profile, "mem_per_node_gb", None)
    if node is not None and float(resources.mem_gb) >= float(node):
        return "0"
    return _convert_mem(float(resources.mem_gb))


def dependency_string(slurm_ids: Iterable[str]) -> str | None:
    """`afterok:<id>:<id>...` over the given Slurm (array task) ids, or None when there are none."""
    ids = list(dict.fromkeys(slurm_ids))
    return "afterok:" + ":".join(ids) if ids else None


# what sends a Slurm command to other clusters than this host's (as -M does): study queues, reads and cancels its jobs
# on this host's cluster alone (a job id names a job of one cluster), so its commands run without them (sbatch runs
# without any SLURM_* or SBATCH_* variable: sbatch.submission_env)
OTHER_CLUSTERS_VARIABLES = ("SLURM_CLUSTERS", "SBATCH_CLUSTERS")
# what changes how sacct and squeue print times, which study reads as ISO 8601 (a job's end: how long ago it ended)
TIME_FORMAT_VARIABLES = ("SLURM_TIME_FORMAT",)


def slurm_env() -> dict[str, str]:
    """This process's environment without OTHER_CLUSTERS_VARIABLES and TIME_FORMAT_VARIABLES: what study runs Slurm's
    commands in."""
    return {k: v for k, v in os.environ.items() if k not in OTHER_CLUSTERS_VARIABLES + TIME_FORMAT_VARIABLES}


def ask_slurm(command: list[str], *, env: dict[str, str] | None = None, input: str | None = None,
              timeout: float = 30.0) -> subprocess.CompletedProcess | None:
    """`command` run (text, output captured) in `env`, else `slurm_env()`, or None where its program is not on PATH,
    cannot start or does not answer within `timeout`: nothing can be told then."""
    if not shutil.which(command[0]):
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=slurm_env() if env is None else env, input=input)
    except (OSError, subprocess.SubprocessError):
        return None


def slurm_config() -> dict[str, str]:
    """`scontrol show config`'s settings, name -> value as printed (`MaxArraySize`: "1001"); empty where scontrol is
    absent or does not answer. Asked once per command that reads several of them."""
    run = ask_slurm(["scontrol", "show", "config"])
    settings: dict[str, str] = {}
    for line in run.stdout.splitlines() if run is not None else []:
        name, sep, value = line.partition("=")
        if sep and name.strip():
            settings.setdefault(name.strip(), value.strip())
    return settings


def cluster_max_array_size(config: dict[str, str]) -> int | None:
    """MaxArraySize of `config` (`slurm_config`), or None where it says nothing."""
    m = re.match(r"\d+", config.get("MaxArraySize", ""))
    return int(m.group(0)) if m else None


def cluster_partitions() -> dict[str, int | None] | None:
    """The partitions this cluster has (`sinfo --all`: hidden ones too; a shell's SINFO_PARTITION, which would list
    its own only, removed), each with its MaxTime in minutes (None: infinite, or not told), or None when sinfo is
    absent, fails or lists none (nothing can be told then: sbatch decides)."""
    run = _sinfo("--format=%R %l")
    if run is None:
        return None
    limits: dict[str, int | None] = {}
    for line in run.stdout.splitlines():
        name, _, limit = line.strip().partition(" ")
        if name:
            limits[name] = max_time_minutes(limit.strip())
    return limits if run.returncode == 0 and limits else None


def _sinfo(*args: str, every_partition: bool = True) -> subprocess.CompletedProcess | None:
    """`sinfo --all --noheader ARGS` (`every_partition` false: without --all, which sinfo refuses beside --partition,
    "Conflicting options, -a and -p", and which a partition named needs not: hidden ones are shown then), with the
    shell's SINFO_* variables removed (SINFO_PARTITION would list its own partition only); None where sinfo is absent
    or does not answer."""
    env = {k: v for k, v in slurm_env().items() if not k.startswith("SINFO_")}
    return ask_slurm(["sinfo", *(["--all"] if every_partition else []), "--noheader", *args], env=env)


# sinfo's compact node states (%t) of a node up now; one with a flag (`*` not responding, `~` powered off, `$` in a
# maintenance reservation, ...) or in any other state (down, drain, maint, resv, ...) is not
UP_STATES = ("idle", "mix", "alloc", "comp", "plnd")


def partition_nodes_up(partition: str) -> bool | None:
    """Whether every node of `partition` (a comma list: of each) is up now, as sinfo's compact states say; None where
    sinfo cannot tell."""
    run = _sinfo(f"--partition={partition}", "--format=%t", every_partition=False)
    states = [line.strip() for line in run.stdout.splitlines() if line.strip()] if run is not None else []
    if run is None or run.returncode != 0 or not states:
        return None
    return all(state in UP_STATES for state in states)


def max_time_minutes(limit: str) -> int | None:
    """A partition's MaxTime as sinfo's `%l` spells it (`2-00:00:00`, `4:00:00`, `30:00`) in minutes; None for
    `infinite` or a spelling it does not read (no limit is checked then)."""
    from study.grids.values import parse_minutes

    try:
        return parse_minutes(limit) if limit and ":" in limit else None  # a bare number would read as minutes
    except ValueError:
        return None


def partition_names(placement: Any) -> list[str]:
    """The partitions a stage's jobs may run on (`Profile.placement`: its `partition`, a comma list; empty where it
    sets none): Slurm starts a job on whichever of them takes it first."""
    return [name for name in (placement.partition or "").split(",") if name]


def _told_partitions(placement: Any, *tables: Container[str]) -> list[str]:
    """`partition_names` of a stage where each of `tables` (sinfo's MaxTimes, scontrol's access, ...) has every one
    of them, else none: a partition a table lacks may take the jobs, so nothing is told of the list."""
    names = partition_names(placement)
    return names if all(name in table for table in tables for name in names) else []


def unknown_partitions(profile: Any, stages: Iterable[str], known: Container[str]) -> list[str]:
    """Each stage's partition (`Profile.placement`; each name of a list) that `known` lacks, said with the profile
    key that sets it (`stages.<stage>.partition` or `partition`)."""
    said: dict[str, list[str]] = {}  # what is said of a key -> the stages whose jobs it places
    for stage in stages:
        placement = profile.placement(stage)
        unknown = [name for name in partition_names(placement) if name not in known]
        if unknown:
            said.setdefault(f"{placement.key('partition')}: {', '.join(map(repr, unknown))}", []).append(stage)
    return [f"{text} ({', '.join(stages)} jobs)" for text, stages in said.items()]


def every_partition_enforced(config: dict[str, str]) -> bool | None:
    """Whether the cluster refuses a job that some partition of its list cannot take (EnforcePartLimits=ALL in
    `config`, `slurm_config`; ANY or NO: one that takes it is enough); None where it says nothing."""
    value = config.get("EnforcePartLimits")
    return value.upper() == "ALL" if value else None


def over_time_limits(profile: Any, stage_times: dict[str, int], limits: dict[str, int | None],
                     qos_lifts: Callable[[Any], bool | None] | None = None,
                     every: bool = False) -> tuple[list[str], list[str]]:
    """Each stage whose longest job (`stage_times`: stage -> its jobs' longest `time`, minutes) asks more than the
    MaxTime `limits` gives its partition (of a list: the longest, or with `every`, `every_partition_enforced`, the
    shortest; a partition `limits` lacks or without a limit: none checked), said with the profile keys to change:
    such a job pends for ever (PartitionTimeLimit) unless the cluster's EnforcePartLimits makes sbatch refuse it.
    None of a stage whose QOS lifts the partition's MaxTime (`qos_lifts`: of the stage's placement,
    `Accounting.lifts_time_limit`: the profile's QOS, else the one Slurm gives its jobs; without it, none does).
    Returns (over, unsure): unsure, the stages whose QOS `qos_lifts` cannot tell of (None)."""
    from study.grids.profile import minutes_text

    over: list[str] = []
    unsure: list[str] = []
    for stage, time_min in stage_times.items():
        placement = profile.placement(stage)
        names = _told_partitions(placement, limits)
        if not names:
            continue
        finite = [int(limits[name]) for name in names if limits[name] is not None]  # type: ignore[arg-type]
        if not finite or not every and len(finite) < len(names):  # a partition without a limit takes any time
            continue
        limit = min(finite) if every else max(finite)
        if time_min <= limit:
            continue
        lifts = qos_lifts(placement) if qos_lifts is not None else False
        if lifts:
            continue
        kept = (f", which its QOS {placement.qos!r} does not lift (no flag PartitionTimeLimit, sacctmgr)"
                if qos_lifts is not None and lifts is False and placement.qos else "")
        if every and len(names) > 1:
            kept += "; EnforcePartLimits=ALL: each partition of its list must take the job"
        (unsure if lifts is None else over).append(
            f"{stage} jobs ask for up to {minutes_text(time_min)} (`time`), more than the MaxTime of "
            f"{placement.key('partition')} {placement.partition!r} ({minutes_text(limit)}, sinfo){kept}: ask for at "
            f"most that (the profile's stages.{stage}.time, or the grid's resources), and set "
            f"{placement.key('partition')[:-len('partition')]}max_time: {minutes_text(limit)} so that `study plan` "
            f"checks it")
    return over, unsure


@dataclass(frozen=True)
class PartitionAccess:
    """The QOS and accounts a partition takes, as `scontrol show partition` says: AllowQos and AllowAccounts (None:
    ALL), DenyQos and DenyAccounts (lower case, as Slurm reads slurm.conf's `AllowAccounts=Lab`). A job of another
    pends for ever where the cluster does not make sbatch refuse it (EnforcePartLimits=NO: squeue's "Job's QOS not
    permitted to use this partition")."""

    allow_qos: frozenset[str] | None = None
    deny_qos: frozenset[str] = frozenset()
    allow_accounts: frozenset[str] | None = None
    deny_accounts: frozenset[str] = frozenset()

    def refuses(self, qos: str | None, account: str | None) -> str | None:
        """Why the partition does not take a job of `qos` and `account` (None: not known, not checked); None where
        it takes it."""
        for kind, name, allow, deny, key in (("QOS", qos, self.allow_qos, self.deny_qos, "Qos"),
                                             ("account", account, self.allow_accounts, self.deny_accounts, "Accounts")):
            if name is None:
                continue
            if allow is not None and name.lower() not in allow:
                return f"takes only {kind} {', '.join(sorted(allow))} (Allow{key}), not {name.lower()!r}"
            if name.lower() in deny:
                return f"does not take {kind} {name.lower()!r} (Deny{key})"
        return None


def partition_access() -> dict[str, PartitionAccess] | None:
    """Each partition's `PartitionAccess`, as `scontrol --all --oneliner show partition` lists them (hidden ones too,
    which scontrol leaves out without --all, as sinfo does); None where scontrol is absent or does not answer."""
    run = ask_slurm(["scontrol", "--all", "--oneliner", "show", "partition"])
    if run is None or run.returncode != 0:
        return None
    out = {}
    for line in run.stdout.splitlines():
        fields = dict(token.partition("=")[::2] for token in line.split() if "=" in token)
        if not fields.get("PartitionName"):
            continue

        names = {key: frozenset(n.lower() for n in fields.get(key, "").split(",") if n and n != "(null)")
                 for key in ("AllowQos", "DenyQos", "AllowAccounts", "DenyAccounts")}
        allow = {key: None if fields.get(key, "ALL") == "ALL" or not names[key] else names[key]  # (null): none set
                 for key in ("AllowQos", "AllowAccounts")}
        out[fields["PartitionName"]] = PartitionAccess(allow["AllowQos"], names["DenyQos"], allow["AllowAccounts"],
                                                       names["DenyAccounts"])
    return out


def partitions_not_taking(profile: Any, stages: Iterable[str], access: dict[str, PartitionAccess],
                          qos_of: Callable[[Any], str | None], account_of: Callable[[Any], str | None],
                          every: bool = False) -> list[str]:
    """Each stage none of whose partitions (`access`: `partition_access`; with `every`, `every_partition_enforced`:
    one of them) takes its jobs' QOS and account (`qos_of`, `account_of`: of its placement; None where not known, not
    checked), said with the keys to change: such a job pends for ever, or sbatch refuses it (EnforcePartLimits). None
    of a stage with a partition `access` lacks (it may take the jobs: Slurm runs them on whichever partition of the
    list does)."""
    said: dict[str, list[str]] = {}  # what to say -> the stages it is said of
    for stage in stages:
        placement = profile.placement(stage)
        names = _told_partitions(placement, access)
        if not names:
            continue
        qos, account = qos_of(placement), account_of(placement)
        why = [access[name].refuses(qos, account) for name in names]
        if any(why) if every else all(why):
            text = ("; ".join(f"partition {name!r} {w}" for name, w in zip(names, why) if w)
                    + " (scontrol show partition"
                    + ("; EnforcePartLimits=ALL: each partition of its list must take the job" if every and
                       len(names) > 1 else "")
                    + f"): set `{placement.key('qos')}` or `{placement.key('account')}` to one it takes, or another "
                      f"`{placement.key('partition')}`")
            said.setdefault(text, []).append(stage)
    return [f"{' and '.join(stages)} jobs: {text}" for text, stages in said.items()]


def partitions_split(profile: Any, stage_times: dict[str, int], limits: dict[str, int | None],
                     access: dict[str, PartitionAccess], qos_lifts: Callable[[Any], bool | None],
                     qos_of: Callable[[Any], str | None], account_of: Callable[[Any], str | None]) -> list[str]:
    """Each stage whose list of partitions has one whose MaxTime (`limits`) its jobs' time fits and one that takes
    their QOS and account (`access`, `qos_of`, `account_of`), but none that does both: `over_time_limits` and
    `partitions_not_taking` each pass it. Under EnforcePartLimits=NO Slurm pends it for ever (squeue gives one
    partition's reason; `sbatch --test-only` says it would start); under ANY sbatch refuses it, as no partition takes
    it whole. Not asked where EnforcePartLimits is ALL (each partition must take the job: those two refuse it), nor
    of a stage whose QOS lifts the MaxTime or cannot be told of (`qos_lifts` not False: every partition takes its
    time, or none is known to refuse it), nor of one with a partition `limits` or `access` lacks. A QOS or account
    `qos_of` or `account_of` cannot tell (None) is taken."""
    from study.grids.profile import minutes_text

    out = []
    for stage, time_min in stage_times.items():
        placement = profile.placement(stage)
        names = _told_partitions(placement, limits, access)
        if len(names) < 2:  # one partition that takes neither: over_time_limits and partitions_not_taking say so
            continue
        if qos_lifts(placement) is not False:  # lifted: time refuses nowhere; unknown: not told
            continue
        qos, account = qos_of(placement), account_of(placement)
        short = {name for name in names if limits[name] is not None and time_min > limits[name]}  # type: ignore
        refused = {name: why for name in names if (why := access[name].refuses(qos, account))}
        if len(short) == len(names) or len(refused) == len(names) or short | set(refused) != set(names):
            continue
        why = []
        for name in names:
            said = [f"has a MaxTime of {minutes_text(int(limits[name]))} (sinfo)"] if name in short else []
            said += [f"{refused[name]} (scontrol show partition)"] if name in refused else []
            why.append(f"{name!r} {' and '.join(said)}")
        out.append(f"{stage} jobs, up to {minutes_text(time_min)} long (`time`): no partition of "
                   f"{placement.key('partition')} {placement.partition!r} takes them: {'; '.join(why)}: change their "
                   f"time, `{placement.key('qos')}` or `{placement.key('account')}` so that one of these partitions "
                   f"takes their time, QOS and account together, or set another `{placement.key('partition')}`")
    return out


def max_array_size(profile: Any, cluster_max: int | None) -> int:
    """Tasks per array: the profile's limit, and below the cluster's MaxArraySize (task indices < MaxArraySize; 0
    disables arrays: one job each)."""
    limit = int(profile.max_array_size)
    if cluster_max is not None:
        limit = min(limit, cluster_max)
    return max(1, limit)


def array_chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """`items` in consecutive chunks of at most `size` (array task ids 0..size-1)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
