"""The CPU cores this process may use: those of its CPU affinity, no more than its cgroup's CPU quota allows (a
container limited to 4 CPUs on a 64-core host sees all 64 in its affinity). The local launcher's workers and the
data loaders' default count of workers are sized by it."""
from __future__ import annotations

import os
from pathlib import Path


def usable_cores(cgroup_root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The cores this process may use: those of its CPU affinity, and no more than its cgroup's CPU quota allows
    (a container limited to 4 CPUs on a 64-core host: 4)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_limit(cgroup_root, self_cgroup)
    return max(1, min(cores, quota)) if quota is not None else cores


def cgroup_cpu_limit(root: Path, self_cgroup: Path) -> int | None:
    """The CPU quota of this process's cgroup and its ancestors, in whole CPUs rounded up (cgroup v2 `cpu.max`
    "<quota> <period>", v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), the smallest found; None without a quota.
    The cgroup's folder is `root` joined with its path in `self_cgroup` (/proc/self/cgroup), or `root` itself
    where that path is not mounted there (a container sees its own cgroup as the root)."""
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    v2, v1 = "/", "/"
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif len(parts) == 3 and "cpu" in parts[1].split(","):
            v1 = parts[2]
    limits = []
    for folder in _cgroup_folders(root, v2):
        q = _read_words(folder / "cpu.max")
        if len(q) == 2 and q[0] != "max":
            limits.append(_cpus(q[0], q[1]))
    for base in (root / "cpu", root / "cpu,cpuacct"):
        for folder in _cgroup_folders(base, v1):
            q, per = _read_words(folder / "cpu.cfs_quota_us"), _read_words(folder / "cpu.cfs_period_us")
            if q and per and q[0] != "-1":
                limits.append(_cpus(q[0], per[0]))
    found = [n for n in limits if n is not None]
    return min(found) if found else None


def _cgroup_folders(root: Path, path: str) -> list[Path]:
    """`root`/`path` and each of its ancestors up to `root`, those that exist (at least `root`, if it does)."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    folders = [root.joinpath(*parts[:i]) for i in range(len(parts), 0, -1)] + [root]
    return [f for f in folders if f.is_dir()]


def _read_words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _cpus(quota: str, period: str) -> int | None:
    try:
        q, per = int(quota), int(period)
    except ValueError:
        return None
    return max(1, -(-q // per)) if q > 0 and per > 0 else None
