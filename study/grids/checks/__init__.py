"""The pre-run checks of a plan: `check_plan(plan, manifests=True, images_here=False)`, which `Plan.check` runs.

It is the look-before-you-leap step `study plan` and `study submit` run: methods and corruptions known, every distinct
pretrain / evaluate section valid (PretrainConfig / EvalConfig.from_dict, and `defaults.evaluate` even with no
evaluation entry), no entry's `params` key that its protocol never reads, no method's own settings
(`defaults.pretrain.moco`) where no job runs that method, every manifest present (or the exact
`study manifest ...` command that makes it) and what the grid says it is (from its metadata; for image-folder
manifests also their paths: no test image among the labeled ones), and each manifest's recorded root a folder on this
machine (a warning, or a problem where the jobs run here), and each encoder file here (`init_encoder`,
`pretrained.encoder_file`) of the backbone and width of the jobs that read it, and each frozen-feature evaluation's
`feature_layer` a stage of its encoders' backbone. Each check gives its lines, each
naming the grid's file and line (or the profile's); `check_plan` raises them as one StudyError, or returns the warnings.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING

from study.errors import StudyError
from study.grids.checks.advice import (cpus_per_gpu_warnings, image_size_warnings, schedule_warnings,
                                      unequal_pool_warnings, unevaluated_pretraining_warnings,
                                      unprobed_concat_warnings, untrained_sizes_warnings)
from study.grids.checks.config import check_devices, check_feature_layers, check_names, check_sections
from study.grids.checks.files import encoder_file_mismatches, files_not_here
from study.grids.checks.manifests import (check_manifest_contents, corrupted_evaluation_warnings, cost_hint_notes,
                                          counts_from_manifests, metadata_once, one_value_level_warnings,
                                          roots_not_here, whole_size_twice_warnings)
from study.grids.checks.missing import missing_manifests

if TYPE_CHECKING:
    from study.grids.plan import Plan


def config_warnings(plan: Plan) -> list[str]:
    """The problems `check_plan` finds in what the grid asks (names, sections: a mistyped key), as warnings for the
    commands that read a grid's jobs without running them (`study status`, `study report`): their jobs' ids hash
    settings no submit ran, so every job would read missing without a word of why. Not raised there: a key an
    earlier version of study took still names the jobs that version ran."""
    return [_named(plan, p) + "\n  (`study submit` refuses this grid as it stands: its jobs as planned here were "
            "never run, so they read missing)" for p in _config_problems(plan)]


def _config_problems(plan: Plan) -> list[str]:
    """What the grid asks that no config takes: its names, else (an unknown method would fail every section too:
    reported once) its sections."""
    return check_names(plan) or check_sections(plan)


def _named(plan: Plan, problem: str) -> str:
    """`problem` naming its file, as every error does: the grid's, unless it names the profile's already."""
    named = (f"{plan.path}:",) + ((f"{plan.profile.path}:",) if plan.profile.path else ())
    return problem if problem.startswith(named) else f"{plan.path}: {problem}"


def check_plan(plan: Plan, manifests: bool = True, images_here: bool = False,
               todo: Collection[str] | None = None) -> list[str]:
    """Raise one StudyError listing every problem found before anything runs (see the module docstring); return
    the warnings: pretraining jobs no evaluation uses, a size that is every image of its manifest beside `all`, a
    method that trains nothing at several sizes, pools of
    unequal shares, evaluations scored at another image size than their encoders were pretrained at, pretraining
    schedules a setting does not fit (`schedule_warnings`), granularity levels of one value in their test manifest
    (accuracy 1.0 whatever the encoder), evaluations that read a corrupted variant (the paper's are on clean
    images), and each manifest whose recorded root is not a folder on this machine (the
    dataset moved, or only the nodes that run the jobs mount it), and each file the pretraining jobs read that is not
    a file here: those two a problem instead with `images_here` (the jobs run on this machine). `todo`: the ids of
    the jobs that will run (not those done), where the caller knows them: a root, or an encoder file, that only done
    jobs read is not looked at. With `manifests`, the estimate's notes gain each cost hint the manifests contradict."""
    problems = _config_problems(plan) or check_devices(plan) + check_feature_layers(plan)
    roots: list[str] = []
    meta = metadata_once() if manifests else None
    if manifests:
        missing = missing_manifests(plan)
        problems += missing or check_manifest_contents(plan, meta)
        here = plan if todo is None else replace(plan, jobs=[j for j in plan.jobs if j.id in todo],
                                                 whole=plan.grid_jobs)
        roots = ([] if missing else roots_not_here(here, meta)) + files_not_here(here)
        problems += encoder_file_mismatches(here)
    if images_here:
        problems, roots = problems + roots, []
    if len(problems) > 1:
        raise StudyError("\n".join([f"{plan.path}: {len(problems)} problem(s) found before anything runs:",
                                    *problems]))
    if problems:  # one: it names its file as every error does
        raise StudyError(_named(plan, problems[0]))
    if manifests and plan.estimate:  # the manifests are there: the estimate counts what the grid leaves out from
        # them, and says where its hints are not theirs
        plan.grid, filled = counts_from_manifests(plan, meta)
        if filled:
            from study.grids.where import plan_of  # (where imports plan, which imports this)

            plan.estimate = plan_of(plan, plan.jobs).estimate
        notes = plan.estimate.setdefault("notes", [])
        notes += [n for n in [*filled, *cost_hint_notes(plan, meta)] if n not in notes]
    contents = (schedule_warnings(plan, meta) + one_value_level_warnings(plan, meta)
                + whole_size_twice_warnings(plan, meta)
                + corrupted_evaluation_warnings(plan, meta)) if manifests else []
    return (unevaluated_pretraining_warnings(plan) + untrained_sizes_warnings(plan) + unequal_pool_warnings(plan)
            + unprobed_concat_warnings(plan) + image_size_warnings(plan) + cpus_per_gpu_warnings(plan) + contents
            + roots)
