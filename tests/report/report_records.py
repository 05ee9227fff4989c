"""Result records with known values (mean over seeds = the given value, std = 0.01*sqrt(2)) and small fake plans."""
from __future__ import annotations

from dataclasses import dataclass, field

from study.grids import Job
from study.hashing import config_hash
from study.results import records_to_table, write_result

STD = 0.0141421356237  # std (ddof 1) of v-0.01, v+0.01


@dataclass
class FakePlan:
    name: str
    jobs: list = field(default_factory=list)


def eval_axes(**axes) -> dict:
    base = {"method": "simclr", "dataset": "a", "size": 1_000_000, "corruption": "none", "protocol": "linear",
            "eval_dataset": "a"}
    base.update(axes)
    return base


CODE_VERSION = "0.1.0+git.test"  # one clean version: the report warns about a cell of several or a dirty one


def records(axes: dict, values: dict, seeds=(0, 1), protocol=None, finished_at="2024-01-01T00:00:00+00:00"):
    """One evaluate record per seed; `values` maps (labeled_size, level) -> mean over seeds."""
    out = []
    for i, seed in enumerate(seeds):
        a = {**axes, "seed": seed}
        delta = 0.0 if len(seeds) == 1 else (-0.01 if i == 0 else 0.01)
        out.append({"job_id": config_hash(a), "stage": "evaluate", "grid": "g", "axes": a,
                    "metrics": [{"metric": "top1", "value": v + delta, "labeled_size": ls, "level": lv}
                                for (ls, lv), v in values.items()],
                    "protocol": {"lr": 0.1, "epochs": 90, "seed": seed, **(protocol or {})},
                    "code_version": CODE_VERSION, "wall_time_s": 1.0, "finished_at": finished_at})
    return out


def quantity_records():
    recs = []
    for proto, base in (("linear", 0.30), ("finetune", 0.40)):
        for size, bump in ((50_000, 0.0), (1_000_000, 0.1)):
            recs += records(eval_axes(protocol=proto, size=size),
                            {(1000, None): base + bump, (10000, None): base + bump + 0.05})
    recs += records({"method": "random", "protocol": "scratch", "eval_dataset": "a", "corruption": "none"},
                    {(1000, None): 0.10, (10000, None): 0.20})
    return recs


def domain_records():
    recs = []
    for ds, ev, v in (("a", "a", 0.45), ("b", "a", 0.25), ("a", "b", 0.35), ("b", "b", 0.55), ("a+b", "a", 0.40),
                      ("a+b", "b", 0.50)):
        recs += records(eval_axes(dataset=ds, eval_dataset=ev), {(10000, None): v})
    recs += records(eval_axes(dataset="a|b", protocol="concat"), {(10000, None): 0.48})
    return recs


def quality_records():
    recs = []
    for method, clean, corrupted in (("simclr", 0.45, 0.30), ("supervised", 0.70, 0.65)):
        recs += records(eval_axes(method=method), {(10000, None): clean})
        recs += records(eval_axes(method=method, corruption="downsample:factor=2"), {(10000, None): corrupted})
    return recs


LEVELS = ["kingdom", "order", "species"]


def granularity_records():
    recs = []
    for method, vals in (("simclr", (0.95, 0.7, 0.5)), ("supervised", (0.99, 0.9, 0.8))):
        # listed fine -> coarse on purpose: the protocol's `levels` gives the order
        recs += records(eval_axes(method=method, protocol="granularity", dataset="inat", eval_dataset="inat"),
                        {(None, lv): v for lv, v in reversed(list(zip(LEVELS, vals)))},
                        protocol={"levels": LEVELS})
    return recs


def table_of(recs):
    from study.results.record import protocol_fingerprint
    return records_to_table([{**r, "schema_version": 1, "protocol_fingerprint": protocol_fingerprint(r["protocol"])}
                             for r in recs])


def plan_for(recs, name="g", extra_jobs=()):
    """A fake plan: one pretrain job per (method, dataset, size, seed) and one evaluate job per record."""
    jobs, seen = [], {}
    for r in recs:
        a = r["axes"]
        pre_axes = {k: a.get(k) for k in ("method", "dataset", "size", "corruption", "seed")}
        pid = "pre-" + config_hash(pre_axes)
        if pid not in seen and a.get("protocol") != "scratch":
            seen[pid] = Job(pid, "pretrain", {"stage": "pretrain", "axes": pre_axes})
        deps = (pid,) if a.get("protocol") != "scratch" else ()
        jobs.append(Job(r["job_id"], "evaluate", {"stage": "evaluate", "axes": a}, deps))
    return FakePlan(name, [*seen.values(), *jobs, *extra_jobs])


def write_all(workdir, recs, with_pretrain_for=None):
    for r in recs:
        write_result(workdir, r)
    if with_pretrain_for is not None:
        for job in with_pretrain_for.jobs:
            if job.stage == "pretrain":
                write_result(workdir, {"job_id": job.id, "stage": "pretrain", "grid": "g", "axes": job.config["axes"],
                                       "metrics": [{"metric": "loss", "value": 1.0}], "protocol": {"epochs": 1},
                                       "code_version": CODE_VERSION})


ALL_RECORDS = quantity_records() + domain_records() + quality_records() + granularity_records()


def luminance(colour) -> float:
    """WCAG relative luminance of a matplotlib colour (a name, hex, or RGB(A) tuple): contrast against white is
    1.05 / (luminance + 0.05), against black (luminance + 0.05) / 0.05."""
    from matplotlib.colors import to_rgb

    lin = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in to_rgb(colour)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
