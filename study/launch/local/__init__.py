"""`--cluster local`: the grid's job graph on this machine, one worker process per core (or per GPU)."""
from study.launch.local.scheduler import default_workers, run_local

__all__ = ["default_workers", "run_local"]
