"""Grids: YAML study files -> typed grid -> jobs with stable ids -> a plan with counts and a cost estimate.

    from study.grids import plan_grid, Job, Plan, load_profile
    plan = plan_grid("grids/data_quantity.yaml", profile="grids/profiles/example_gpu.yaml")
    plan.check()                      # manifests, methods, corruptions, configs; StudyError listing problems
    for job in plan.jobs: job.id, job.stage, job.config, job.depends_on, job.resources
"""
from study.grids.jobs import Job, corrupted_manifest
from study.grids.plan import Plan, plan_grid
from study.grids.profile import Profile, Resources, load_profile
from study.grids.schema import AXES, PROTOCOLS, Grid, load_grid

__all__ = ["Job", "Plan", "plan_grid", "Profile", "Resources", "load_profile", "Grid", "load_grid", "AXES",
           "PROTOCOLS", "corrupted_manifest"]
