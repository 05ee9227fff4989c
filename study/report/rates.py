"""`rates`: the throughput the grid's finished jobs measured, as a profile's cost section reads it (`cost.throughput`
images/s per device for pretrain, finetune and extract; `cost.method_factor`), so that `study plan` estimates the
rest of a study from this cluster's own rates instead of the default guesses (grids/README.md, "Cost model").

A job's rate is its record's `images_per_s` over its `devices` (GPUs; one process on a CPU): a pretraining job's
over its steps (a two-view step counts one image), a fine-tune's or scratch run's at its largest labeled size, an
evaluation's feature extraction over the images it extracted (none where every feature came from the cache). Rates
hold for the backbone, width, image size and device they were measured at: each is a column, and the profile
snippet (`profile_snippet`) takes the device with the most jobs and, per backbone, its most measured width and size,
which it writes beside the rates (`width`, `image_size`, `device`: `study plan` notes each job that runs otherwise,
whose estimate would not hold), with the methods' factors measured on that backbone (not as the profile's
`cost.method_factor`, which would price every backbone's jobs by them). `job_seconds`: the median wall time of the
jobs behind a rate; a rate of jobs shorter than SHORT_JOB_S is mostly their start-up and first steps, which the
snippet says.
"""
from __future__ import annotations

import json
import re

import pandas as pd

from study.evaluate.protocols import names_where
from study.results.table import PROTOCOL_PREFIX, is_null

NAME = "rates"
SNIPPET = "rates.yaml"  # the profile snippet's file in the report folder
TITLE = "Measured throughput: rates for your profile's cost section"
COLUMNS = ["kind", "method", "backbone", "width", "image_size", "device", "jobs", "images_per_s", "lowest", "highest",
           "job_seconds"]
SHORT_JOB_S = 60.0  # ours: a rate of jobs shorter than this is mostly start-up and first steps (noted in the snippet)
FINETUNE_PROTOCOLS = names_where(trains=True)
# an extraction's images/s: one encoder's features (concat's two are timed together)
EXTRACT_PROTOCOLS = names_where(trains=False, encoders=1)
KINDS = ("pretrain", "finetune", "extract")  # cost.throughput's order


def _column(jobs: pd.DataFrame, *names: str) -> pd.Series:
    """The first non-null of `jobs`' protocol columns `names` (dotted protocol keys), row by row."""
    out = pd.Series([None] * len(jobs), index=jobs.index, dtype=object)
    for name in names:
        col = PROTOCOL_PREFIX + name
        if col in jobs:
            out = out.where(out.notna(), jobs[col].astype(object))
    return out


def _finetune_rate(jobs: pd.DataFrame) -> pd.Series:
    """A fine-tune's or scratch run's images/s at its largest labeled size (`protocol.images_per_s.<size>`)."""
    prefix = PROTOCOL_PREFIX + "images_per_s."
    sizes = sorted((int(c[len(prefix):]), c) for c in jobs.columns
                   if c.startswith(prefix) and c[len(prefix):].isdigit())
    out = pd.Series([None] * len(jobs), index=jobs.index, dtype=object)
    for _, col in sizes:  # ascending: a larger size's rate replaces a smaller one's
        out = jobs[col].astype(object).where(jobs[col].notna(), out)
    return out


def measured_rates(table: pd.DataFrame) -> pd.DataFrame:
    """COLUMNS, one row per (kind, method for pretraining, backbone, width, image size, device): the median images/s
    per device of its jobs, and the lowest and highest; empty where no job recorded a rate."""
    if table.empty or "stage" not in table:
        return pd.DataFrame(columns=COLUMNS)
    jobs = table.drop_duplicates("job_id")
    protocol = jobs["protocol"] if "protocol" in jobs else pd.Series([None] * len(jobs), index=jobs.index)
    kind = pd.Series([None] * len(jobs), index=jobs.index, dtype=object)
    kind[jobs["stage"] == "pretrain"] = "pretrain"
    kind[(jobs["stage"] == "evaluate") & protocol.isin(FINETUNE_PROTOCOLS)] = "finetune"
    kind[(jobs["stage"] == "evaluate") & protocol.isin(EXTRACT_PROTOCOLS)] = "extract"
    rate = _column(jobs, "images_per_s").where(kind != "finetune", _finetune_rate(jobs))
    devices = pd.to_numeric(_column(jobs, "devices"), errors="coerce").fillna(1).clip(lower=1)
    rows = pd.DataFrame({
        "kind": kind,
        "method": jobs["method"].where(kind == "pretrain", "").fillna("") if "method" in jobs else "",
        "backbone": _column(jobs, "backbone", "pretrain.backbone").fillna(
            jobs["backbone"] if "backbone" in jobs else None),
        "width": _column(jobs, "width", "pretrain.width"),
        "image_size": _column(jobs, "augmentation.image_size", "transform.image_size"),
        "device": _column(jobs, "device_kind"),
        "rate": pd.to_numeric(rate, errors="coerce") / devices,
        "seconds": pd.to_numeric(_column(jobs, "wall_time_s"), errors="coerce"),
    })
    rows = rows[rows["kind"].notna() & rows["rate"].notna() & (rows["rate"] > 0) & rows["backbone"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["kind", "method", "backbone", "width", "image_size", "device"]
    rows = rows.assign(**{k: rows[k].map(_text) for k in ("width", "image_size", "device")})
    grouped = rows.groupby(keys, sort=False)
    out = grouped["rate"].agg(jobs="count", images_per_s="median", lowest="min", highest="max")
    out = out.join(grouped["seconds"].median().rename("job_seconds")).reset_index()
    out["_kind"] = out["kind"].map(KINDS.index)
    return out.sort_values(["_kind", "backbone", "method", "device"], kind="stable")[COLUMNS].reset_index(drop=True)


def _text(value) -> str:
    """A key column's value as text: "" for a null, an integral number without its ".0"."""
    if is_null(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _round(rate: float) -> float | int:
    """Three significant figures, as a profile would write a rate."""
    value = float(f"{rate:.3g}")
    return int(value) if value >= 100 else value


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain where it is a simple word, else quoted (a GPU's name holds spaces)."""
    return value if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", value) else json.dumps(value)


def profile_snippet(rates: pd.DataFrame, grid: str) -> str:
    """The YAML of a profile's `cost` section from `rates` (measured_rates): `throughput` per backbone of the device
    with the most jobs, at the backbone's most measured width and image size: SimCLR's pretraining rate, the
    fine-tune and extraction rates, where they were measured (`width`, `image_size`, `device`) and, as its own
    `method_factor`, each other pretraining method's cost against SimCLR's measured alike (SimCLR's images/s over the
    method's). "" without rates."""
    if rates.empty:
        return ""
    device = rates.groupby("device")["jobs"].sum().sort_values(ascending=False, kind="stable").index[0]
    here = rates[rates["device"] == device]
    lines = [f"# measured by {int(here['jobs'].sum())} finished job(s) of grid {grid} on {device or 'one device'}: "
             "median images/s per GPU (a CPU job: per job; rates.csv).",
             "# Into your profile: replace its cost.throughput entries of these backbones with these (keep its other",
             "# cost keys: job_overhead_min, probe_min, ...); a profile without `cost:` takes this section as it is.",
             "# A rate holds at the width, image size and device it was measured at (written beside it): `study plan`",
             "# notes the jobs that run otherwise, and counts them at these rates unscaled.",
             "cost:", "  throughput:"]
    short = []
    for backbone, rows in here.groupby("backbone", sort=True):
        shapes = rows.groupby(["width", "image_size"], sort=False)["jobs"].sum()
        shape = shapes.sort_values(ascending=False, kind="stable").index[0]
        rows = rows[(rows["width"] == shape[0]) & (rows["image_size"] == shape[1])]
        rate, factors = {}, {}
        simclr = rows[(rows["kind"] == "pretrain") & (rows["method"] == "simclr")]
        if not simclr.empty:
            rate["pretrain"] = simclr["images_per_s"].iloc[0]
            for _, r in rows[(rows["kind"] == "pretrain") & (rows["method"] != "simclr")].iterrows():
                factors.setdefault(r["method"], rate["pretrain"] / r["images_per_s"])
        for kind in ("finetune", "extract"):
            hit = rows[rows["kind"] == kind]
            if not hit.empty:
                rate[kind] = float((hit["images_per_s"] * hit["jobs"]).sum() / hit["jobs"].sum())
        if not rate:
            continue
        lines.append(f"    {backbone}:")
        lines += [f"      {k}: {_round(v)}" for k, v in rate.items()]
        lines += [f"      {k}: {v}" for k, v in zip(("width", "image_size"), shape) if v]
        if device:
            lines.append(f"      device: {_scalar(device)}")
        if factors:
            lines.append(f"      method_factor: {{{', '.join(f'{m}: {_round(f)}' for m, f in factors.items())}}}"
                         f"   # SimCLR's pretraining images/s over each method's, on {backbone}")
        seconds = rows["job_seconds"].dropna()
        if not seconds.empty and float(seconds.max()) < SHORT_JOB_S:
            short.append(f"{backbone} ({float(seconds.max()):.0f} s)")
    if short:
        at = lines.index("cost:")
        lines[at:at] = [f"# Measured on short jobs (the longest: {', '.join(short)}): their rates are mostly start-up",
                        "# and first steps; measure on jobs of a minute or more for an estimate that holds."]
    return "\n".join(lines) + "\n"
