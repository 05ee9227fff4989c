"""The manifests a plan reads that do not exist: the command that makes each, or, where they are whole in a manifests
folder near the grid file, the STUDY_MANIFESTS to set; and, where that command would be refused (a pool's share over
its source, a corrupted variant of a corrupted base, a size over what a pool not made yet will hold), why instead."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from study.configfields import is_int
from study.counts import format_count
from study.errors import StudyError, did_you_mean
from study.grids.checks.manifests import count_text, manifest_present, pool_shares_beyond_sources
from study.grids.checks.where import manifest_lines, value_at

if TYPE_CHECKING:
    from study.grids.plan import Plan


def missing_manifests(plan: Plan) -> list[str]:
    """Each manifest the jobs read that does not exist, at the line of the `datasets:` entry that names it (a
    corrupted variant: its dataset's), with the command that makes it; those whole in a manifests folder near the grid
    file (`_found_near_the_grid`), one line per folder instead: the STUDY_MANIFESTS to set, or, where that folder
    lacks others the plan reads from the folder in use, that STUDY_MANIFESTS names one folder."""
    from study.manifests import list_manifests, manifest_exists
    from study.manifests.store import half_manifest, not_writable_hint
    from study.paths import manifests_dir

    problems, known, lines = [], None, None  # both read at the first missing one: none missing, neither read
    missing = {name: command for name, command in plan.manifests().items() if not manifest_present(name)}
    near = _found_near_the_grid(plan, list(missing))
    for folder, names in near.items():
        quoted, said = shlex.quote(str(folder)), (f"{plan.path}: {len(names)} manifest(s) not found in "
                                                  f"{manifests_dir().resolve()}/ are in {folder}/, near the grid file "
                                                  f"({_some_names(names)})")
        # those the plan reads that pointing there would lose: found in the folder in use, or in the other one
        lost = [n for n in plan.manifests() if n not in names and not manifest_exists(n, folder)
                and (n not in missing or any(n in held for held in near.values()))]
        if lost:  # pointing there would only move the problem: STUDY_MANIFESTS names one folder
            problems.append(f"{said}, which lacks {len(lost)} other(s) the plan reads ({_some_names(lost)}): "
                            "STUDY_MANIFESTS names one folder, so link or copy them into one, then point "
                            "STUDY_MANIFESTS at it")
        else:
            problems.append(f"{said}: point STUDY_MANIFESTS there, `export STUDY_MANIFESTS={quoted}` (or "
                            f"`STUDY_MANIFESTS={quoted} study ...`)")
    for name in (n for held in near.values() for n in held):
        del missing[name]
    for name, command in missing.items():
        problems += _sizes_beyond_pool(plan, name)
        short = pool_shares_beyond_sources(plan, name) or _base_already_corrupted(plan, command)
        if short:
            if short not in problems:  # its command would be refused: say so, at the share's (dataset's) line
                problems.append(short)
        else:
            known = list_manifests() if known is None else known
            lines = manifest_lines(plan) if lines is None else lines
            corrupt = command.startswith("study manifest corrupt ")
            named_by = " a `corruption` value of the grid names it" if corrupt else " the grid's `datasets:` names it"
            half = half_manifest(name)  # one of its two files there: say which, not only "not found"
            hint = f": {half}" if half else did_you_mean(name, _variants_of_base(command, known) if corrupt else known,
                                                         cutoff=0.8, why=named_by)
            where = f"{plan.path}:{lines[name]}: " if name in lines else ""
            problems.append(f"{where}manifest {name!r} not found in {manifests_dir().resolve()}/{hint}; make it "
                            f"with:\n    {command}\n    (or point STUDY_MANIFESTS at the folder that holds it)")
    last = max((i for i, p in enumerate(problems) if "make it with:" in p), default=None)
    if last is not None:  # said once, after the last command
        roots = "set each $<DATASET>_ROOT above to that dataset's folder (manifests/README.md, its layout); " \
            if any("_ROOT" in p for p in problems) else ""
        roots += "each $<DATASET>_TAXONOMY to its taxonomy CSV (README.md, \"Your own image folders\"); " \
            if any("_TAXONOMY" in p for p in problems) else ""
        problems[last] += (f"\n{roots}a manifest's recorded sizes are part of its content hash (building it again "
                           "with others makes the results on it stale), so build a train manifest once with every size "
                           "you mean to use (for the paper's datasets the commands list the paper's sizes too); `study "
                           "plan --no-check` shows the plan without the manifests, `study submit --dry-run --no-check` "
                           "its sbatch scripts")
        hint = not_writable_hint()  # those commands would be refused there: where to make them instead
        problems[last] += f"\n{hint.removeprefix('; ')}" if hint else ""
    return problems


def _found_near_the_grid(plan: Plan, names: list[str]) -> dict[Path, list[str]]:
    """Folder -> the manifests of `names` it holds whole, of the manifests folders a grid file's own folder suggests
    (`manifests/` in it, as `study quickstart` writes its grid and manifests, and in the folder above it, as in this
    project's layout), other than the one in use: a user who runs `study` from another folder, or without the
    STUDY_MANIFESTS that a quickstart names, is told where they are rather than how to build them again."""
    from study.manifests import manifest_exists
    from study.paths import manifests_dir

    if not names or not plan.path:
        return {}
    here, found = Path(plan.path).absolute().parent, {}
    for folder in dict.fromkeys((here / "manifests", here.parent / "manifests")):
        if folder.resolve() == manifests_dir().resolve():
            continue
        held = [n for n in names if manifest_exists(n, folder) and n not in {m for ms in found.values() for m in ms}]
        if held:
            found[folder] = held
    return found


def _some_names(names: list[str], shown: int = 3) -> str:
    """The first `shown` names, and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _variants_of_base(command: str, known: list[str]) -> list[str]:
    """The manifests of `known` that are variants of the base a `study manifest corrupt` command names: the only
    names a corrupted variant's name may be a typo of (`<train>.<slug>` comes from the grid's corruption, so another
    dataset's variant of the same corruption is no remedy)."""
    base = _base_of(command)
    return [k for k in known if k.startswith(base + ".")]


def _base_of(command: str) -> str:
    """The manifest a `study manifest corrupt` command names as `--base`."""
    words = command.split()
    return words[words.index("--base") + 1]


def _sizes_beyond_pool(plan: Plan, name: str) -> list[str]:
    """For a pool `name` not made yet: each pretraining size on it larger than the images its `pool:` shares add up
    to (what the pool will hold), at the size's line, as check_manifest_contents says of a pool that is made."""
    ds = next((d for d in plan.grid.datasets.values() if d.pooled and d.train == name), None)
    if ds is None:
        return []
    total, out = sum(n for _, n in ds.pool), []
    for job in plan.by_stage("pretrain"):
        size = job.config["pretrain"].get("size", job.axes.get("size"))
        if job.axes.get("dataset") == ds.key and is_int(size) and size > total:
            where = value_at(plan.grid, "size", job.axes.get("size"), job.axes)
            said = (f"{where}: pretraining size {count_text(size)}: pool {name} will hold {total} images, the sum of "
                    f"its shares (datasets.{ds.key}.pool): a size of at most {format_count(total)}, or larger shares")
            if said not in out:
                out.append(said)
    return out


def _base_already_corrupted(plan: Plan, command: str) -> str | None:
    """For a corrupted variant not made yet: where its base (a dataset's `train`, one that exists) is a corrupted
    variant itself, which `study manifest corrupt` refuses (one corruption per manifest, made from a clean one), at
    that dataset's line; else None."""
    from study.manifests.store import load_meta

    if not command.startswith("study manifest corrupt "):
        return None
    base = _base_of(command)
    try:
        have = load_meta(base) if manifest_present(base) else {}
    except StudyError:  # its metadata unreadable: the jobs that read it name it
        return None
    if not have.get("corruption"):
        return None
    clean = (have.get("base") or {}).get("name") or "its clean base"
    ds = next((d for d in plan.grid.datasets.values() if d.train == base), None)
    where = f"{plan.path}:{ds.line}: datasets.{ds.key}.train" if ds is not None else f"{plan.path}: manifest"
    return (f"{where} {base} is a corrupted variant ({have['corruption']}), which the grid's corruptions other than "
            f"none would corrupt again: `study manifest corrupt` makes a variant of a clean manifest only; name the "
            f"clean one ({clean}) as the dataset's train, with each corruption in axes.corruption (`none`: the clean "
            f"images)")
