"""study.cores: the cores a process may use, its affinity capped by its cgroup's CPU quota. The cgroup files are real
files in a folder laid out as /sys/fs/cgroup is."""
from __future__ import annotations

import os

from study.cores import cgroup_cpu_limit, usable_cores


def _cgroup(root, files: dict[str, str], self_cgroup: str = "0::/\n"):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "self").write_text(self_cgroup)
    return root, root / "self"


def test_a_cgroup_cpu_quota_caps_the_workers(tmp_path):
    """A container limited to N CPUs on a bigger host started one worker per host core (sched_getaffinity sees them
    all): the quota of cgroup v2's cpu.max (or v1's cfs files), rounded up, caps the count."""
    affinity = len(os.sched_getaffinity(0))
    root, me = _cgroup(tmp_path / "v2", {"cpu.max": "100000 100000\n"})
    assert usable_cores(root, me) == 1
    assert cgroup_cpu_limit(root, me) == 1
    root, me = _cgroup(tmp_path / "frac", {"cpu.max": "150000 100000\n"})
    assert cgroup_cpu_limit(root, me) == 2  # 1.5 CPUs: two workers share them
    root, me = _cgroup(tmp_path / "nolimit", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root, me) is None and usable_cores(root, me) == affinity
    # the process's own cgroup, below a parent with the quota (no cgroup namespace: its path from /proc/self/cgroup)
    root, me = _cgroup(tmp_path / "nested", {"job/cpu.max": "300000 100000\n", "job/step/cpu.max": "max 100000\n"},
                       "0::/job/step\n")
    assert cgroup_cpu_limit(root, me) == 3
    root, me = _cgroup(tmp_path / "v1", {"cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
                                         "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
                       "4:cpu,cpuacct:/docker/abc\n2:cpuset:/docker/abc\n")  # the container's cgroup is the root
    assert cgroup_cpu_limit(root, me) == 1 and usable_cores(root, me) == 1
    root, me = _cgroup(tmp_path / "v1none", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
                       "3:cpu:/\n")
    assert cgroup_cpu_limit(root, me) is None
    assert cgroup_cpu_limit(tmp_path / "absent", tmp_path / "absent" / "self") is None


def test_the_smallest_quota_on_the_way_up_and_cgroup_v1s_own_cpu_hierarchy_count(tmp_path):
    """A child's quota cannot lift its parent's: the smallest found counts. Cgroup v1: the path of the hierarchy
    whose controllers include `cpu` (not `cpuset`'s, which the name also starts), under `cpu,cpuacct` or `cpu`."""
    root, me = _cgroup(tmp_path / "v2min", {"job/cpu.max": "200000 100000\n", "job/step/cpu.max": "400000 100000\n"},
                       "0::/job/step\n")
    assert cgroup_cpu_limit(root, me) == 2
    root, me = _cgroup(tmp_path / "v1path", {"cpu,cpuacct/job/cpu.cfs_quota_us": "200000\n",
                                             "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n"},
                       "4:cpu,cpuacct:/job\n3:cpuset:/other\n")  # no cgroup namespace: the path from the file
    assert cgroup_cpu_limit(root, me) == 2
    root, me = _cgroup(tmp_path / "v1cpu", {"cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n"},
                       "3:cpu:/\n")  # cpu mounted on its own
    assert cgroup_cpu_limit(root, me) == 3


def test_a_cgroup_quota_above_the_cores_leaves_one_worker_per_core(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    root, me = _cgroup(tmp_path / "big", {"cpu.max": f"{(affinity + 4) * 100000} 100000\n"})
    assert cgroup_cpu_limit(root, me) == affinity + 4
    assert usable_cores(root, me) == affinity
