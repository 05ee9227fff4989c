"""Settings that change how a job runs, not what it computes: job ids leave them out (changing the loader's workers
mid-study does not restart anything), and a pretraining checkpoint may be resumed with other values.

`device` is not among them for job ids: "cpu" and "auto" on a GPU node compute differently (precision, random
streams); a resumed run checks what the device resolved to (study.train.resume.run_fingerprint).
"""
PRETRAIN_RUN_ONLY = ("num_workers", "checkpoint_every_steps", "checkpoint_every_minutes", "log_every_steps")
EVALUATE_RUN_ONLY = ("num_workers", "checkpoint_every_minutes")
# set to "1" by the local launcher for its workers' processes: a SIGTERM sent to one (`kill <pid>`) ends its training
# after the checkpoint it makes (study.train.checkpoint.SignalFlag); a Slurm job's trains on (a SIGKILL follows)
TERM_ENDS_ENV = "STUDY_TERM_ENDS_RUN"
