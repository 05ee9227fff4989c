"""`--cluster local`: the grid's job graph on this machine (scheduler.run_local), one worker process
(study.launch.local.worker) per core or per GPU."""
