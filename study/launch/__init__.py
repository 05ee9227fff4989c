"""Layer 2, the launcher: run a planned grid on Slurm (submitit job arrays with `afterok` dependencies) or on this
machine, keep a ledger of what was submitted, and say where a grid stands.

    study submit GRID --cluster slurm|local [--profile FILE] [--dry-run] [--retry-failed] [--workers N]
                 [--only ID[,ID...]] [--where COLUMN=VALUE ...] [--set-aside-stale] [--workdir DIR]
    study status GRID [--format table|json] [--where COLUMN=VALUE ...]
    study cancel GRID [--where COLUMN=VALUE ...]

Inside a worker (a Slurm task, or study.launch.local.worker), `study.launch.runner.run_job(job, workdir)` runs one job
and writes its result record.
"""
