"""Slurm through submitit: job arrays per (stage, resources, dependencies), `afterok` chains, ledger, sacct."""
from study.launch.slurm.params import (array_chunks, cluster_max_array_size, dependency_string, max_array_size,
                                       slurm_parameters)
from study.launch.slurm.submit import submit_slurm

__all__ = ["array_chunks", "cluster_max_array_size", "dependency_string", "max_array_size", "slurm_parameters",
           "submit_slurm"]
