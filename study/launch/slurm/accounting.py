"""What Slurm's accounting tells of the user's jobs before they are queued: the user's associations and the QOS a
stage's jobs get (`sacctmgr`), whether the cluster enforces their limits (`scontrol show config`) and how many of the
user's jobs are queued now (`squeue`). Each answer is None where it cannot be told (no sacctmgr, no accounting
database, a QOS or association it does not list): nothing is checked then, and sbatch decides. The associations read
are this cluster's (`ClusterName`): a database that serves several clusters lists each one's.

- A stage's QOS: the profile's, else the one Slurm gives a job that names none, its association's DefaultQOS, else
  the association's only QOS, else `normal`.
- Its flag PartitionTimeLimit lets its jobs ask more than the partition's MaxTime (Slurm honours it where the cluster
  enforces no limit, too).
- The longest time it lets a job ask, MaxWall (of the QOS, else of the association: the first set is Slurm's), and
  how many jobs the user may have in the queue at once, MaxSubmitJobsPerUser of the QOS, else MaxSubmitJobs of the
  association (each array task one job; the association's counts its jobs of every QOS): both only where the
  cluster enforces limits (AccountingStorageEnforce with `limits` or `safe`); a job over MaxWall pends for ever
  (QOSMaxWallDurationPerJobLimit), and sbatch refuses an array that would pass MaxSubmitJobs.
Not read: the limits shared with other users (GrpSubmitJobs, MaxSubmitJobsPerAccount: squeue may not show their
jobs) and a partition's own QOS; where one of them refuses, `study submit` halves its arrays (submit.py) as it does
for any limit of queued jobs."""
from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from typing import Any, Iterable

from study.launch.slurm.params import ask_slurm, max_time_minutes, slurm_config


def user_accounts(name: str, cluster: str | None = None) -> list[str] | None:
    """The accounts user `name` has an association with on `cluster` (None: on any cluster of the accounting
    database), as `sacctmgr show assoc` lists them (lower case, sorted); None where it cannot tell (no sacctmgr, no
    accounting database)."""
    run = _sacctmgr("show", "assoc", "where", f"user={name}", *([f"cluster={cluster}"] if cluster else []),
                    "format=Account")
    if run is None:
        return None
    return sorted({line.strip().lower() for line in run.stdout.splitlines() if line.strip()})


@dataclass(frozen=True)
class Qos:
    """A QOS as `sacctmgr show qos` lists it: its flags, MaxWall (minutes) and MaxSubmitJobsPerUser (None: none)."""

    name: str
    flags: frozenset[str] = frozenset()
    max_wall_min: int | None = None
    max_submit_per_user: int | None = None


def qos_record(name: str) -> Qos | None:
    """QOS `name` as `sacctmgr show qos` lists it; None where it cannot tell (no sacctmgr, no accounting database, no
    such QOS)."""
    # `where` a word of its own: sacctmgr refuses "where name=..." ("Unknown condition")
    run = _sacctmgr("show", "qos", "where", f"name={name}", "format=Name,Flags,MaxWall,MaxSubmitJobsPerUser")
    for line in run.stdout.splitlines() if run is not None else []:
        fields = line.strip().split("|")
        if len(fields) == 4 and fields[0].lower() == name.lower():
            return Qos(fields[0], frozenset(f for f in fields[1].split(",") if f), max_time_minutes(fields[2]),
                       _count(fields[3]))
    return None


@dataclass(frozen=True)
class Association:
    """One association of the user as `sacctmgr show user withassoc` lists it (limits inherited from its accounts
    included): its account, partition ("" for every partition), default QOS, QOS, MaxSubmitJobs and MaxWall."""

    account: str
    partition: str = ""
    default_qos: str = ""
    qos: tuple[str, ...] = ()
    max_submit: int | None = None
    max_wall_min: int | None = None

    def job_qos(self) -> str:
        """The QOS Slurm gives a job of this association that names none: its default (one inherited from an account
        above it, up to the cluster's root association, included: sacctmgr lists it on the user's association), else
        its only one, else normal."""
        return self.default_qos or (self.qos[0] if len(self.qos) == 1 else "normal")


def user_associations(name: str, cluster: str | None = None) -> tuple[str, list[Association]] | None:
    """User `name`'s default account and associations (lower case) on `cluster` (None: on every cluster of the
    accounting database), as `sacctmgr show user withassoc` lists them; None where it cannot tell (no sacctmgr, no
    accounting database, a user it does not list there)."""
    run = _sacctmgr("show", "user", "where", f"name={name}", "withassoc",
                    "format=DefaultAccount,Account,Partition,DefaultQOS,QOS,MaxSubmitJobs,MaxWall,Cluster")
    default, rows = "", []
    for line in run.stdout.splitlines() if run is not None else []:
        fields = line.strip().lower().split("|")
        if len(fields) != 8 or not fields[1] or (cluster and fields[7] != cluster.lower()):
            continue
        default = default or fields[0]
        rows.append(Association(fields[1], fields[2], fields[3], tuple(q for q in fields[4].split(",") if q),
                                _count(fields[5]), max_time_minutes(fields[6])))
    return (default, rows) if rows else None


def job_association(placement: Any, default_account: str, rows: Iterable[Association]) -> Association | None:
    """The association a stage's jobs are queued under (`placement`: Profile.placement; its account, else the user's
    default one; of each partition of its list, that partition's own association, else the account's): None where
    the user has none with the account, or the partitions of its list have different ones."""
    account = (placement.account or default_account).lower()
    mine = {row.partition: row for row in rows if row.account == account}
    found = {mine.get(p.lower(), mine.get("")) for p in (placement.partition or "").split(",")}
    return found.pop() if len(found) == 1 else None


def limits_enforced(config: dict[str, str]) -> bool | None:
    """Whether the cluster enforces the limits of QOS and associations (AccountingStorageEnforce holds `limits` or
    `safe` in `config`, `slurm_config`); None where it says nothing."""
    value = config.get("AccountingStorageEnforce")
    return bool({"limits", "safe"} & set(value.lower().split(","))) if value is not None else None


def queued_jobs(name: str) -> list[tuple[str, str, str]] | None:
    """(account, QOS, partition) of each job of user `name` in Slurm's queue now (each array task one), lower case,
    as squeue lists them; None where squeue does not answer."""
    run = ask_slurm(["squeue", "--noheader", "--array", "--user", name, "--format", "%a|%q|%P"])
    if run is None or run.returncode != 0:
        return None
    rows = [line.strip().lower().split("|") for line in run.stdout.splitlines()]
    return [(row[0], row[1], row[2]) for row in rows if len(row) == 3]


@dataclass(frozen=True)
class SubmitLimit:
    """A limit on how many jobs the user may have in Slurm's queue at once: its key (the QOS or association it is
    of), the most it lets in (None: no limit), how many of the user's queued jobs it counts now, and what sets it."""

    key: tuple[str, ...]
    most: int | None
    used: int
    said: str


NO_LIMIT = SubmitLimit((), None, 0, "")


class Accounting:
    """What the readers above tell of user `name`'s jobs, each asked once, when first needed (one submit's)."""

    def __init__(self, name: str):
        self.name = name
        self.qos = functools.lru_cache(maxsize=None)(qos_record)

    @functools.cached_property
    def config(self) -> dict[str, str]:
        return slurm_config()

    @functools.cached_property
    def cluster(self) -> str | None:  # ClusterName: the associations read are this cluster's
        return self.config.get("ClusterName") or None

    @functools.cached_property
    def accounts(self) -> list[str] | None:
        return user_accounts(self.name, self.cluster)

    @functools.cached_property
    def associations(self) -> tuple[str, list[Association]] | None:
        return user_associations(self.name, self.cluster)

    @functools.cached_property
    def enforced(self) -> bool | None:
        return limits_enforced(self.config)

    @functools.cached_property
    def queued(self) -> list[tuple[str, str, str]] | None:
        return queued_jobs(self.name)

    def association(self, placement: Any) -> Association | None:
        """The association a stage's jobs are queued under (`job_association`); None where it cannot tell."""
        return None if self.associations is None else job_association(placement, *self.associations)

    def stage_qos(self, placement: Any) -> tuple[str, str] | None:
        """The QOS of a stage's jobs and how a message says it (`QOS 'x' (`qos`, sacctmgr)`); None where it cannot
        tell."""
        if placement.qos:
            return placement.qos.lower(), f"QOS {placement.qos.lower()!r} (`{placement.key('qos')}`, sacctmgr)"
        association = self.association(placement)
        if association is None:
            return None
        return association.job_qos(), (f"QOS {association.job_qos()!r} (your association's default: the profile sets "
                                       f"no `{placement.key('qos')}`; sacctmgr)")

    def job_qos(self, placement: Any) -> str | None:
        """The QOS of a stage's jobs (`stage_qos`), lower case; None where it cannot tell."""
        qos = self.stage_qos(placement)
        return None if qos is None else qos[0]

    def job_account(self, placement: Any) -> str | None:
        """The account of a stage's jobs: its own, else the user's default one (sacctmgr); None where it cannot
        tell."""
        if placement.account:
            return placement.account.lower()
        return self.associations[0] or None if self.associations is not None else None

    def lifts_time_limit(self, placement: Any) -> bool | None:
        """Whether a stage's QOS has the flag PartitionTimeLimit. A stage that names no QOS, where sacctmgr cannot
        tell its association's: False (a cluster without accounting has no QOS)."""
        qos = self.stage_qos(placement)
        if qos is None:
            return None if placement.qos else False
        record = self.qos(qos[0])
        return None if record is None else "PartitionTimeLimit" in record.flags

    def max_wall(self, placement: Any) -> tuple[int, str] | None:
        """The longest time a stage's jobs may ask where the cluster enforces it, in minutes, and whose MaxWall it is
        (`QOS 'x' (`qos`, sacctmgr)`); None where nothing limits it or it cannot tell."""
        qos = self.stage_qos(placement) if self.enforced else None
        record = self.qos(qos[0]) if qos is not None else None
        if qos is None or record is None:
            return None
        if record.max_wall_min is not None:
            return record.max_wall_min, qos[1]
        association = self.association(placement)
        if association is None or association.max_wall_min is None:
            return None
        return association.max_wall_min, f"your association with account {association.account!r} (sacctmgr)"

    def submit_limit(self, placement: Any) -> SubmitLimit | None:
        """The limit on how many jobs the user may have queued that a stage's jobs count against (`most` None where
        none does, or the cluster enforces none); None where it cannot tell."""
        if self.enforced is False:
            return NO_LIMIT
        qos = self.stage_qos(placement) if self.enforced else None
        record = self.qos(qos[0]) if qos is not None else None
        if qos is None or record is None or self.queued is None:
            return None
        if record.max_submit_per_user is not None:
            return SubmitLimit(_qos_key(qos[0]), record.max_submit_per_user,
                               sum(1 for _, q, _ in self.queued if q == qos[0]),
                               f"{qos[1]} lets you have {record.max_submit_per_user} jobs in Slurm's queue at once "
                               f"(its MaxSubmitJobsPerUser)")
        association = self.association(placement)
        if association is None or association.max_submit is None:
            return None if association is None else NO_LIMIT
        return SubmitLimit(_association_key(association), association.max_submit,
                           sum(1 for job in self.queued if self._counted(association, *job)),
                           f"your association with account {association.account!r} (sacctmgr) lets you have "
                           f"{association.max_submit} jobs in Slurm's queue at once (its MaxSubmitJobs)")

    def counted_under(self, placement: Any) -> list[tuple[str, ...]]:
        """The keys (`SubmitLimit.key`) of every limit on queued jobs that counts a stage's jobs, whether or not it
        decides for them: their QOS's (MaxSubmitJobsPerUser counts the user's jobs of the QOS) and their association's
        (MaxSubmitJobs counts its jobs of every QOS)."""
        qos, association = self.stage_qos(placement), self.association(placement)
        return ([_qos_key(qos[0])] if qos is not None else []) + \
            ([_association_key(association)] if association is not None else [])

    def _counted(self, association: Association, account: str, qos: str, partition: str) -> bool:
        """Whether a queued job (its account, QOS and partition) is one of `association`'s: its account's, on its
        partition, or (an association of every partition) on one without an association of its own."""
        if account != association.account:
            return False
        if association.partition:
            return partition == association.partition
        assert self.associations is not None
        return partition not in {row.partition for row in self.associations[1] if row.account == account}


def submit_room(profile: Any, stage_counts: dict[str, int], accounting: Accounting) -> tuple[int, str] | None:
    """How many of a submit's jobs (`stage_counts`: stage -> its jobs to queue, in the order they are queued) the limits
    on the user's queued jobs let into Slurm's queue, and what stops the rest (the limit, and how many of the user's
    jobs it counts now): the submit stops at the first job sbatch refuses. A stage's jobs count against each limit
    they are under (`Accounting.counted_under`), also one that does not decide for them: an association's
    MaxSubmitJobs counts a stage's jobs that their QOS's MaxSubmitJobsPerUser decides for. None where every job fits,
    or it cannot tell."""
    here: dict[tuple[str, ...], int] = {}  # limit key -> this submit's jobs before the stage that it counts
    before: dict[tuple[str, ...], list[str]] = {}  # limit key -> the stages of those jobs
    fits = 0
    for stage, count in stage_counts.items():
        placement = profile.placement(stage)
        limit = accounting.submit_limit(placement)
        if limit is None:
            return None
        left = count if limit.most is None else max(0, limit.most - limit.used - here.get(limit.key, 0))
        fits += min(count, left)
        if count > left:
            ahead = (f" besides this submit's {here[limit.key]} {' and '.join(before[limit.key])} job(s) queued "
                     f"before them" if here.get(limit.key) else "")
            return fits, (f"{limit.said}, and you have {limit.used} there now (squeue -u {accounting.name})"
                          f"{ahead}")
        for key in accounting.counted_under(placement):
            here[key] = here.get(key, 0) + count
            before.setdefault(key, []).append(stage)
    return None


def _qos_key(qos: str) -> tuple[str, ...]:
    return ("qos", qos)


def _association_key(association: Association) -> tuple[str, ...]:
    return ("association", association.account, association.partition)


def _sacctmgr(*args: str) -> subprocess.CompletedProcess | None:
    """`sacctmgr --noheader --parsable2 ARGS` that answered; None where it did not (absent, failed, timed out)."""
    run = ask_slurm(["sacctmgr", "--noheader", "--parsable2", *args])
    return run if run is not None and run.returncode == 0 else None


def _count(text: str) -> int | None:
    """A limit as sacctmgr prints it: a count, or None where it sets none (empty)."""
    return int(text) if text.strip().isdigit() else None
