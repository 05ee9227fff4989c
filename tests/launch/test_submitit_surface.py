"""The parts of submitit that study uses beyond its documented API, each as study calls it: a submitit release that
moves or changes one fails here, by name (pyproject bounds submitit to the releases these hold for). Real submitit;
nothing runs on Slurm here (tests/launch/test_slurm.py does that)."""
import importlib.util
import inspect
from pathlib import Path

from submitit.core.utils import JobPaths
from submitit.helpers import DelayedSubmission
from submitit.slurm import slurm


def test_the_sbatch_generator_takes_what_study_passes():
    """study.launch.slurm.sbatch.sbatch_script writes a recovered array's script with submitit's own generator."""
    accepted = set(inspect.signature(slurm._make_sbatch_string).parameters)
    assert {"command", "folder", "map_count", "job_name", "partition", "time", "nodes", "ntasks_per_node",
            "cpus_per_task", "mem", "signal_delay_s", "setup", "additional_parameters", "srun_args", "wckey", "gres",
            "gpus_per_node", "account", "qos", "constraint", "dependency"} <= accepted
    script = slurm._make_sbatch_string(command="python -u -m submitit.core._submit /f", folder="/f", map_count=3,
                                       wckey=None)
    assert "#SBATCH --array=0-2" in script and "--wckey" not in script


def test_the_task_entry_point_and_memory_format():
    assert importlib.util.find_spec("submitit.core._submit") is not None  # what each task runs
    assert slurm._convert_mem(2.5) == "2560MB" and slurm._convert_mem(64) == "64GB"  # params.slurm_mem's GB


def test_where_a_task_reads_its_call_and_writes_its_log(tmp_path):
    """submit._write_task_pickles writes `<id>_submitted.pkl` where the task waits for it; status reads the log."""
    paths = JobPaths(tmp_path, job_id="12_3", task_id=0)
    assert paths.submitted_pickle == Path(tmp_path) / "12_3_submitted.pkl"
    assert paths.stderr == Path(tmp_path) / "12_3_0_log.err"
    delayed = DelayedSubmission(print, "x")
    delayed.set_timeout(5, 3)
    delayed.dump(tmp_path / "call.pkl")
    assert DelayedSubmission.load(tmp_path / "call.pkl").args == ("x",)


def test_sacct_lines_parse_into_task_records():
    """state._sacct hands `sacct --parsable2` output to submitit's parser: arrays expanded to their tasks, each column
    kept (the Account that status compares with the profile's)."""
    out = ("JobID|State|NodeList|End|Account\n12_[0-1]|PENDING|None assigned|Unknown|proj_a\n"
           "13_0|COMPLETED|n1|2024-01-01T00:00:00|proj_b\n")
    records = slurm.SlurmInfoWatcher().read_info(out)
    assert records["12_0"]["State"] == records["12_1"]["State"] == "PENDING"
    assert records["13_0"]["State"] == "COMPLETED"
    assert records["12_1"]["Account"] == "proj_a" and records["13_0"]["Account"] == "proj_b"
