"""Profile -> submitit parameters, array splitting below MaxArraySize, dependency strings, the sbatch golden file."""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from study.errors import StudyError
from study.grids import Resources, load_profile
from study.grids.profile import Profile
from study.launch.slurm.params import (array_chunks, dependency_string, max_array_size, max_time_minutes,
                                       over_time_limits, partition_nodes_up, slurm_parameters,
                                       unknown_partitions)
from study.launch.slurm.sbatch import sbatch_script

from launch_helpers import PROFILE, fake_commands, grid_text, run_cli

HERE = Path(__file__).parent
GPU_PROFILE = HERE / "fixtures" / "gpu_profile.yaml"
GOLDEN = HERE / "golden" / "sbatch_gpu_dry_run.txt"


def test_arrays_are_split_below_the_smaller_of_profile_and_cluster_limits():
    prof = load_profile(GPU_PROFILE)  # max_array_size 500
    assert max_array_size(prof, None) == 500
    assert max_array_size(prof, 1001) == 500
    assert max_array_size(prof, 300) == 300
    assert max_array_size(prof, 0) == 1  # MaxArraySize = 0: arrays disabled, one job each
    chunks = array_chunks(list(range(1201)), max_array_size(prof, 1001))
    assert [len(c) for c in chunks] == [500, 500, 201]
    assert sum(chunks, []) == list(range(1201))
    assert array_chunks([], 10) == []


def test_dependency_string_lists_each_task_once_in_order():
    assert dependency_string([]) is None
    assert dependency_string(["12_3"]) == "afterok:12_3"
    assert dependency_string(["12_3", "12_0", "12_3", "15"]) == "afterok:12_3:12_0:15"


def test_gpu_pretraining_runs_one_task_per_gpu_and_always_kills_on_invalid_dependency():
    prof = load_profile(GPU_PROFILE)
    pre = slurm_parameters(prof, "pretrain", Resources(gpus=8, cpus=64, mem_gb=480, time_min=2880), job_name="x",
                           dependency=None, array_size=3)
    assert (pre["ntasks_per_node"], pre["cpus_per_task"], pre["gpus_per_node"]) == (8, 8, 8)
    assert pre["partition"] == "gpu" and pre["account"] == "my_lab" and pre["qos"] == "normal"
    assert pre["constraint"] == "a100" and pre["time"] == 2880 and pre["mem"] == "0"  # a whole node's: --mem=0
    assert pre["additional_parameters"] == {"mail-type": "FAIL", "kill-on-invalid-dep": "yes", "requeue": True}
    assert pre["srun_args"] == ["--cpus-per-task=8", "--kill-on-bad-exit=1"]  # srun 22.05-23.02 does not inherit it
    assert "dependency" not in pre
    ev = slurm_parameters(prof, "evaluate", Resources(gpus=1, cpus=8, mem_gb=60, time_min=720), job_name="y",
                          dependency="afterok:7_1")
    assert (ev["ntasks_per_node"], ev["cpus_per_task"], ev["gpus_per_node"]) == (1, 8, 1)
    assert ev["dependency"] == "afterok:7_1" and ev["srun_args"] == ["--cpus-per-task=8"]
    cpu = slurm_parameters(load_profile(None).__class__(partition="debug"), "evaluate",
                           Resources(gpus=0, cpus=1, mem_gb=0.5, time_min=10), job_name="z")
    assert "gpus_per_node" not in cpu and cpu["mem"] == "512MB"


def test_a_typed_gpu_request_and_a_gres_request_for_clusters_without_cons_tres(tmp_path):
    """`gpu_type` types the GPUs a job asks for; `gpu_option: gres` asks through --gres (sites whose select plugin
    has no --gpus-per-node); submitit's --wckey=submitit is never written (sites that check wckeys refuse it)."""
    res = Resources(gpus=8, cpus=64, mem_gb=480, time_min=60)
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\ngpu_type: a100\n")
    typed = slurm_parameters(load_profile(p), "pretrain", res, job_name="t")
    assert typed["gpus_per_node"] == "a100:8" and "gres" not in typed and typed["ntasks_per_node"] == 8
    p.write_text("partition: gpu\ngpu_type: a100\ngpu_option: gres\n")
    gres = slurm_parameters(load_profile(p), "pretrain", res, job_name="g")
    assert gres["gres"] == "gpu:a100:8" and "gpus_per_node" not in gres and gres["ntasks_per_node"] == 8
    script = sbatch_script(gres, tmp_path / "submitit" / "g", 1)
    assert "#SBATCH --gres=gpu:a100:8\n" in script and "--gpus-per-node" not in script and "wckey" not in script
    p.write_text("partition: gpu\ngpu_option: gres\n")
    assert slurm_parameters(load_profile(p), "pretrain", res, job_name="u")["gres"] == "gpu:8"


def test_the_array_throttle_counts_every_node_of_a_job_against_max_parallel_gpus():
    """max_parallel_gpus 16: 8-GPU one-node jobs run two at a time, 8-GPU-per-node two-node jobs one at a time."""
    prof = load_profile(None).__class__(partition="gpu", max_parallel_gpus=16)
    throttle = [slurm_parameters(prof, "pretrain", Resources(gpus=8, nodes=n, cpus=64, mem_gb=100, time_min=60),
                                 job_name="x", array_size=4)["array_parallelism"] for n in (1, 2)]
    assert throttle == [2, 1]


def test_whether_a_partitions_nodes_are_up_is_asked_without_all_which_sinfo_refuses_beside_partition(
        tmp_path, monkeypatch):
    """`sinfo --all --partition=P` exits 1 ("Conflicting options, -a and -p"): the answer was always unknown, so
    `sbatch --test-only`'s "Requested node configuration is not available" for a job no node set can hold (nodes: 3 on
    a partition of two) read as nodes maybe down, a warning, and the job was queued to pend for ever
    (PartitionConfig). Asked as the real sinfo takes it (a stand-in that refuses the pair as it does)."""
    sinfo = ('case " $* " in *" --all "*--partition*) echo "sinfo: error: Conflicting options, -a and -p, specified. '
             'Please choose one or the other." >&2; exit 1;; esac\ncat "$(dirname "$0")/states"')
    bin_dir = fake_commands(tmp_path / "bin", sinfo=sinfo)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    (bin_dir / "states").write_text("idle\nmix\n")
    assert partition_nodes_up("gpu") is True
    (bin_dir / "states").write_text("idle\ndrain\n")
    assert partition_nodes_up("gpu") is False


def test_a_whole_nodes_memory_is_asked_as_mem_0_which_slurm_reads_as_all_of_the_nodes(env):
    """`mem: node` (every paper grid's pretraining) became --mem=<mem_per_node>GB, the node's nominal size, above
    the RealMemory Slurm schedules: "Requested node configuration is not available". Less than a node is asked as
    it is."""
    from study.grids import plan_grid
    from study.launch.slurm.sbatch import sbatch_script

    grid = env / "g.yaml"
    grid.write_text(grid_text("wholenode").replace(
        "stages:\n", "stages:\n  pretrain:\n    resources: {gpus: node, cpus: node, mem: node}\n"))
    pre = next(j for j in plan_grid(grid, GPU_PROFILE).jobs if j.stage == "pretrain")
    assert pre.resources.mem_gb == 480  # the plan (and its cost) still counts the node's nominal memory
    prof = load_profile(GPU_PROFILE)
    params = slurm_parameters(prof, "pretrain", pre.resources, job_name="w")
    assert params["mem"] == "0"
    assert "#SBATCH --mem=0\n" in sbatch_script(params, env, 1)
    part = slurm_parameters(prof, "pretrain", Resources(gpus=8, cpus=64, mem_gb=479.5, time_min=60), job_name="p")
    assert part["mem"] == "491008MB"


def _normalise(text: str, workdir: Path) -> str:
    text = text.replace(str(workdir.resolve()), "<WORKDIR>").replace(sys.executable, "<PYTHON>")
    text = re.sub(r"<WORKDIR>/code/[0-9a-f]{12}", "<WORKDIR>/code/<DIGEST>", text)  # of the code under test
    return re.sub(r"(study-\w+-\w+)-[0-9a-f]{8}", r"\1-<BATCH>", text)


def test_dry_run_prints_submitits_real_sbatch_scripts_golden(env, slurm):  # slurm: its scontrol, not the host's
    grid = env / "g.yaml"
    grid.write_text(grid_text("golden", seeds=(0, 1)))
    code, out, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE),
                              "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0, err
    assert "would queue 4 job(s) in 3 array(s)" in err
    assert not (env / "wd" / "ledgers").exists()  # nothing submitted, nothing recorded
    text = _normalise(out, env / "wd")
    if not GOLDEN.exists():  # first run writes it; review it, then it guards every later change
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_a_dry_run_with_no_check_prints_the_scripts_before_the_manifests_exist(env, slurm, monkeypatch):
    """Building the paper's manifests takes hours: `--dry-run --no-check` shows a new profile's scripts first (the
    same scripts as with the manifests), where a dry run alone stops at the first missing manifest."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(env / "none-yet"))
    grid = env / "g.yaml"
    grid.write_text(grid_text("golden", seeds=(0, 1)))
    argv = ["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE), "--workdir", str(env / "wd"),
            "--dry-run"]
    code, out, err = run_cli(argv)
    assert code == 2 and "manifest 'toy_train' not found" in err and out == ""
    code, out, err = run_cli(argv + ["--no-check"])
    assert code == 0, err
    assert _normalise(out, env / "wd") == GOLDEN.read_text()
    assert not (env / "wd").exists()


def _arrays(text: str) -> list[tuple[str, Counter]]:
    """A dry run's arrays: (stage, the lines of its script)."""
    parts = re.split(r"^# ---- array \d+: (\w+),.*$", text, flags=re.MULTILINE)[1:]
    return [(stage, Counter(script.splitlines())) for stage, script in zip(parts[::2], parts[1::2])]


def test_a_stages_own_partition_qos_account_and_additional_reach_its_scripts_alone(env, slurm):
    """Short 1-GPU evaluations on a short partition and QOS, whole-node pretraining on a long one with --exclusive:
    each stage's scripts carry its own placement (the rest of each script as in the golden file); a profile whose
    stages repeat the top-level values prints the golden scripts byte for byte."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("golden", seeds=(0, 1)))
    base = GPU_PROFILE.read_text().split("stages:\n")[0]
    profile = env / "placed.yaml"
    argv = ["submit", str(grid), "--cluster", "slurm", "--profile", str(profile), "--workdir", str(env / "wd"),
            "--dry-run"]
    profile.write_text(base + "stages:\n"
                       "  pretrain: {gpus: 8, cpus: 64, mem: 480G, time: 48h, partition: gpu, qos: normal}\n"
                       "  evaluate: {gpus: 1, cpus: 8, mem: 60G, time: 12h, account: my_lab,\n"
                       "             additional: {mail_type: FAIL}}\n")
    code, out, err = run_cli(argv)
    assert code == 0, err
    assert _normalise(out, env / "wd") == GOLDEN.read_text()
    profile.write_text(base + "max_time: 12h\nstages:\n"
                       "  pretrain: {gpus: 8, cpus: 64, mem: 480G, time: 48h, partition: gpu-long, qos: long,\n"
                       "             max_time: 7-00:00:00, additional: {exclusive: true}}\n"
                       "  evaluate:\n    gpus: 1\n    cpus: 8\n    mem: 60G\n    time: 12h\n"
                       "    partition: gpu-short\n    qos: short\n    account: null\n"
                       "    additional: {mail-type: null, comment: eval}\n")
    code, out, err = run_cli(argv)
    assert code == 0, err
    placed, golden = _arrays(_normalise(out, env / "wd")), _arrays(GOLDEN.read_text())
    assert [stage for stage, _ in placed] == [stage for stage, _ in golden] == ["pretrain", "evaluate", "evaluate"]
    changed = {"pretrain": ({"#SBATCH --partition=gpu-long", "#SBATCH --qos=long", "#SBATCH --exclusive"},
                            {"#SBATCH --partition=gpu", "#SBATCH --qos=normal"}),
               "evaluate": ({"#SBATCH --partition=gpu-short", "#SBATCH --qos=short", "#SBATCH --comment=eval"},
                            {"#SBATCH --partition=gpu", "#SBATCH --qos=normal", "#SBATCH --account=my_lab",
                             "#SBATCH --mail-type=FAIL"})}
    for (stage, lines), (_, before) in zip(placed, golden):
        added, removed = changed[stage]
        assert set(lines - before) == added and set(before - lines) == removed, stage


def test_a_stages_own_constraint_and_gpu_type_reach_its_scripts_alone(env, slurm):
    """Pretraining on typed A100 nodes (`gpu_type`, `constraint`), evaluations on any GPU (`constraint: null`
    drops the profile's): each stage's scripts carry its own."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("golden", seeds=(0, 1)))
    base = GPU_PROFILE.read_text().split("stages:\n")[0]
    profile = env / "typed.yaml"
    profile.write_text(base + "stages:\n"
                       "  pretrain: {gpus: 8, cpus: 64, mem: 480G, time: 48h, gpu_type: a100, constraint: a100&ib}\n"
                       "  evaluate: {gpus: 1, cpus: 8, mem: 60G, time: 12h, constraint: null}\n")
    code, out, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(profile), "--workdir",
                              str(env / "wd"), "--dry-run"])
    assert code == 0, err
    placed, golden = _arrays(_normalise(out, env / "wd")), _arrays(GOLDEN.read_text())
    changed = {"pretrain": ({"#SBATCH --gpus-per-node=a100:8", "#SBATCH --constraint='a100&ib'"},
                            {"#SBATCH --gpus-per-node=8", "#SBATCH --constraint=a100"}),
               "evaluate": (set(), {"#SBATCH --constraint=a100"})}
    for (stage, lines), (_, before) in zip(placed, golden):
        added, removed = changed[stage]
        assert set(lines - before) == added and set(before - lines) == removed, stage
    profile.write_text(base + "stages:\n  pretrain: {gpu_type: 'a100 x'}\n")
    with pytest.raises(StudyError, match=f"{profile}:[0-9]+: stages.pretrain.gpu_type: expected a GPU type such as "
                                         "a100, got 'a100 x'"):
        load_profile(profile)


def test_a_profiles_python_runs_every_job_a_container_for_instance(env, slurm):
    """`python:` in a profile is the command that runs Python in each job (e.g. inside a container): in the
    scripts a dry run prints and in those sbatch is given; without it, the interpreter of `study submit`."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("contained"))
    profile = env / "contained.yaml"
    python = "apptainer exec --nv --bind /shared /shared/study.sif python"
    profile.write_text(GPU_PROFILE.read_text() + f"python: {python}\n")
    (slurm / "sinfo").write_text("gpu\n")  # the profile's partition
    cmd = ["submit", str(grid), "--cluster", "slurm", "--profile", str(profile), "--workdir", str(env / "wd")]
    code, out, err = run_cli(cmd + ["--dry-run"])
    assert code == 0, err
    runs = [line for line in out.splitlines() if "submitit.core._submit" in line]
    assert runs and all(f"{python} -u -m submitit.core._submit" in line for line in runs), runs
    code, _, err = run_cli(cmd)
    assert code == 0, err
    scripts = sorted(slurm.glob("sbatch_script_*"))
    assert scripts and all(f"{python} -u -m submitit.core._submit" in p.read_text() for p in scripts)
    assert sys.executable not in scripts[0].read_text()


def test_a_dry_run_with_only_or_where_queues_the_jobs_named(env, slurm):  # slurm: its scontrol, not the host's
    """`--only` on Slurm: one array of the one pretraining job named; an evaluation without its pretraining refused;
    `--where` likewise for the jobs it selects."""
    from study.grids import plan_grid

    grid = env / "g.yaml"
    grid.write_text(grid_text("golden", seeds=(0, 1)))
    jobs = plan_grid(grid).jobs
    pre, ev = (next(j for j in jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    cmd = ["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE), "--workdir", str(env / "wd"),
           "--dry-run"]
    code, out, err = run_cli(cmd + ["--only", pre.id])
    assert code == 0 and "would queue 1 job(s) in 1 array(s)" in err, err
    assert out.count("# ---- array ") == 1 and f"pretrain, 1 job(s): {pre.id}" in out
    code, out, err = run_cli(cmd + ["--only", ev.id])
    assert code == 2 and f"job {ev.id} needs job {ev.depends_on[0]}, which has no result" in err and out == ""
    # --where: the jobs it selects, as if named
    code, out, err = run_cli(cmd + ["--where", "stage=pretrain", "--where", "seed=1"])
    seed1 = next(j for j in jobs if j.stage == "pretrain" and j.axes["seed"] == 1)
    assert code == 0 and "would queue 1 job(s) in 1 array(s)" in err, err
    assert out.count("# ---- array ") == 1 and f"pretrain, 1 job(s): {seed1.id}" in out
    # both: the jobs named, each of which --where must select (one it does not is refused, not dropped)
    code, out, err = run_cli(cmd + ["--where", "seed=1", "--only", seed1.id])
    assert code == 0 and f"pretrain, 1 job(s): {seed1.id}" in out, err
    code, out, err = run_cli(cmd + ["--where", "seed=1", "--only", f"{seed1.id},{pre.id}"])
    assert code == 2 and out == "" and f"--only names 1 job(s) --where does not select: {pre.id};" in err, err


def test_where_queues_a_selected_dependency_too_and_chains_to_a_queued_one(env, slurm):
    """`--where seed=1` before anything ran: seed 1's pretraining and its evaluation (a selected dependency is not
    refused as one missing); `--where stage=evaluate` once the pretraining jobs are queued: the evaluations alone,
    each after its own pretraining's Slurm job (afterok)."""
    from study.grids import plan_grid
    from study.launch.ledger import Ledger

    grid = env / "g.yaml"
    grid.write_text(grid_text("chain", seeds=(0, 1)))
    cmd = ["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"), "--workdir",
           str(env / "wd")]
    code, out, err = run_cli(cmd + ["--dry-run", "--where", "seed=1"])
    assert code == 0 and "would queue 2 job(s) in 2 array(s)" in err, err
    code, _, err = run_cli(cmd + ["--where", "stage=pretrain"])
    assert code == 0, err
    queued = {e["job"]: e["slurm_job_id"] for e in Ledger(env / "wd", "chain").events() if e["event"] == "queued"}
    (slurm / "sacct").write_text("".join(f"{sid}|PENDING|n1|Unknown\n" for sid in queued.values()))
    code, out, err = run_cli(cmd + ["--dry-run", "--where", "stage=evaluate"])
    assert code == 0 and "would queue 2 job(s) in 2 array(s)" in err, err
    after = {re.search(r"evaluate, 1 job\(s\): (\w+)", a)[1]: re.search(r"--dependency=(\S+)", a)[1]
             for a in out.split("# ---- array ")[1:]}
    assert after == {j.id: f"afterok:{queued[j.depends_on[0]]}" for j in plan_grid(grid).jobs if j.stage == "evaluate"}


def _srun_line(script: str) -> str:
    (line,) = [ln for ln in script.splitlines() if ln.startswith("srun ")]
    return line


def test_multi_task_jobs_kill_every_rank_when_one_dies_single_task_scripts_unchanged(tmp_path):
    """A rank that dies (exception, OOM) must end the job's other ranks at once (`srun --kill-on-bad-exit=1`),
    not leave them blocked in NCCL collectives until the watchdog; a one-task job's srun has no such flag."""
    from study.launch.slurm.sbatch import sbatch_script

    prof = load_profile(GPU_PROFILE)
    multi = slurm_parameters(prof, "pretrain", Resources(gpus=8, cpus=64, mem_gb=480, time_min=60), job_name="m")
    two_nodes = slurm_parameters(prof, "pretrain", Resources(gpus=1, cpus=8, mem_gb=60, time_min=60, nodes=2),
                                 job_name="n")
    single = slurm_parameters(prof, "pretrain", Resources(gpus=1, cpus=8, mem_gb=60, time_min=60), job_name="s")
    evaluate = slurm_parameters(prof, "evaluate", Resources(gpus=8, cpus=64, mem_gb=60, time_min=60), job_name="e")
    assert multi["srun_args"] == ["--cpus-per-task=8", "--kill-on-bad-exit=1"]
    assert two_nodes["srun_args"] == ["--cpus-per-task=8", "--kill-on-bad-exit=1"]
    assert single["srun_args"] == ["--cpus-per-task=8"] and evaluate["srun_args"] == ["--cpus-per-task=64"]
    for params, n in ((multi, 1), (multi, 3), (two_nodes, 1)):
        assert "--kill-on-bad-exit=1" in _srun_line(sbatch_script(params, tmp_path, n))
    for params, n in ((single, 1), (single, 3), (evaluate, 1)):
        script = sbatch_script(params, tmp_path, n)
        assert "kill-on-bad-exit" not in script
        assert _srun_line(script).startswith("srun --unbuffered --output ")
        assert f"--cpus-per-task={params['cpus_per_task']}" in _srun_line(script)
    # the golden file: the 8-task pretraining array has the flag, the single-task evaluation arrays do not
    golden = GOLDEN.read_text().split("# ---- array ")[1:]
    assert [("--kill-on-bad-exit=1" in _srun_line(a), "--ntasks-per-node=8" in a) for a in golden] == \
        [(True, True), (False, False), (False, False)]


def test_a_dry_run_after_an_interrupted_submit_writes_nothing(env, slurm):  # slurm: its scontrol, not the host's
    """An open intent (a submit killed between sbatch and its `queued` lines) is settled by the next real command;
    a dry run only says so, and leaves the ledger byte for byte as it was."""
    from study.launch.ledger import Ledger

    grid = env / "g.yaml"
    grid.write_text(grid_text("golden", seeds=(0, 1)))
    ledger = Ledger(env / "wd", "golden")
    ledger.append([{"event": "intent", "batch": "b1", "name": "study-golden-pretrain-deadbeef", "stage": "pretrain",
                    "jobs": ["x"], "folder": "f"}])
    before = ledger.path.read_bytes()
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE),
                            "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0, err
    assert "interrupted" in err and "would queue 4 job(s) in 3 array(s)" in err
    assert ledger.path.read_bytes() == before


def test_flags_that_cannot_go_together_are_refused_before_any_manifest_check(tmp_path, monkeypatch):
    """No manifests exist here: the flag error comes first, not a page of missing-manifest errors."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "none"))
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("flags", seeds=(0,)))
    for flags, why in ((["--cluster", "local", "--dry-run", "--set-aside-stale"], "--dry-run changes nothing"),
                       (["--cluster", "slurm", "--workers", "2"], "--workers sets how many jobs a --cluster local")):
        code, _, err = run_cli(["submit", str(grid), *flags, "--profile", str(GPU_PROFILE),
                                "--workdir", str(tmp_path / "wd")])
        assert code == 2 and why in err and "not found" not in err, err
    assert not (tmp_path / "wd").exists()


def test_a_submit_without_a_cluster_is_refused_by_argparse_before_any_work(tmp_path, monkeypatch, capsys):
    """--cluster has no default: `study submit GRID` alone neither runs the grid here nor queues it (exit 2)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "none"))
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("nocluster", seeds=(0,)))
    with pytest.raises(SystemExit) as e:
        run_cli(["submit", str(grid), "--workdir", str(tmp_path / "wd")])
    assert e.value.code == 2 and "the following arguments are required: --cluster" in capsys.readouterr().err
    assert not (tmp_path / "wd").exists()


def test_a_submit_from_a_host_without_slurm_says_so_and_records_nothing(env, monkeypatch):
    """submitit's own error was a RuntimeError traceback ("Could not detect srun")."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("nohost", seeds=(0,)))
    monkeypatch.setenv("PATH", str(env / "empty-bin"))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE),
                            "--workdir", str(env / "wd")])
    assert code == 2 and "--cluster slurm: sbatch and srun not found on this host's PATH" in err
    assert "Traceback" not in err and not list((env / "wd" / "ledgers").glob("*.jsonl"))  # no intent written


def test_a_dry_run_needs_no_slurm_and_names_a_lone_jobs_array_as_sbatch_would(env, monkeypatch):
    """A dry run prints the scripts on a host without Slurm's commands (a laptop); an evaluation waits for a one-job
    array by its id alone, as sbatch's: a lone Slurm job has no task suffix."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("laptop"))
    monkeypatch.setenv("PATH", str(env / "empty-bin"))
    code, out, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE),
                              "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0 and "would queue 2 job(s) in 2 array(s)" in err, err
    assert "#SBATCH --dependency='afterok:<array1>'\n" in out, out  # the golden file: <array1>_0 of a larger one


@pytest.mark.parametrize("where, again", [([], ""), (["--where", "seed=0", "--where", "stage=pretrain"],
                                                     " --where seed=0 --where stage=pretrain")])
def test_cancel_reports_what_scancel_refused_instead_of_a_traceback(env, monkeypatch, where, again):
    """A job that ends between the states read and scancel makes scancel exit 1 for it: said, not a traceback.
    (Stand-ins for sacct and scancel: the test cluster cannot end a job at that instant.) The command that runs the
    cancelled jobs again repeats a `--where` selection (without it: the whole grid's missing jobs too)."""
    from study.grids import plan_grid
    from study.launch.ledger import Ledger

    grid = env / "g.yaml"
    grid.write_text(grid_text("gone", seeds=(0,)))
    job = plan_grid(grid).jobs[0]
    Ledger(env / "wd", "gone").append([{"event": "queued", "batch": "b1", "job": job.id, "stage": job.stage,
                                        "slurm_job_id": "101", "array_job_id": "101", "folder": "f"}])
    bin_dir = fake_commands(env / "bin", sacct='printf "JobID|State|NodeList\\n101|RUNNING|n1\\n"',
                            scancel='echo "scancel: error: Kill job error on job id 101: Job/step already '
                                    'completing or completed" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(env / "wd"), *where])
    assert code == 0, err
    assert "cancelled 1 Slurm job(s) of grid gone" in out
    assert f"to run them again: `study submit {grid} --cluster slurm --retry-failed{again}` (with your" in out
    assert "scancel refused some" in out and "  scancel: error: Kill job error on job id 101: Job/step" in out


def test_a_two_node_job_asks_for_both_nodes_and_its_memory_per_node(tmp_path):
    """--mem is per node: a two-node job of 200 GB per node asks --mem=200GB (not 400GB, which no node holds), and
    --nodes=2, or torch.distributed would wait for ranks of a second node that was never given."""
    prof = load_profile(GPU_PROFILE)
    params = slurm_parameters(prof, "pretrain", Resources(gpus=8, cpus=64, mem_gb=200, time_min=60, nodes=2),
                              job_name="two")
    script = sbatch_script(params, tmp_path, 1)
    for line in ("--nodes=2", "--mem=200GB", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=8"):
        assert f"#SBATCH {line}\n" in script, line
    whole = slurm_parameters(prof, "pretrain", Resources(gpus=8, cpus=64, mem_gb=480, time_min=60, nodes=2),
                             job_name="whole")
    assert "#SBATCH --mem=0\n" in sbatch_script(whole, tmp_path, 1)  # each node's all


def test_cpu_only_arrays_run_all_at_once_under_a_max_parallel_gpus_profile(tmp_path):
    """max_parallel_gpus throttles GPU jobs only: an array of CPU-only jobs (gpus: 0) runs every task at once, not
    a ZeroDivisionError; max_parallel_jobs throttles every array (the smaller cap wins)."""
    prof = Profile(partition="cpu", max_parallel_gpus=16)
    params = slurm_parameters(prof, "evaluate", Resources(gpus=0, cpus=4, mem_gb=8, time_min=60), job_name="c",
                              array_size=5)
    script = sbatch_script(params, tmp_path, 5)
    assert "#SBATCH --array=0-4%5\n" in script and "gpus" not in script
    capped = Profile(partition="cpu", max_parallel_gpus=16, max_parallel_jobs=3)  # a CPU partition's share
    params = slurm_parameters(capped, "evaluate", Resources(gpus=0, cpus=4, mem_gb=8, time_min=60), job_name="c",
                              array_size=5)
    assert "#SBATCH --array=0-4%3\n" in sbatch_script(params, tmp_path, 5)
    gpu = slurm_parameters(capped, "evaluate", Resources(gpus=1, cpus=4, mem_gb=8, time_min=60), job_name="g",
                           array_size=20)
    assert gpu["array_parallelism"] == 3  # GPU jobs: the smaller of the two caps, as the plan's estimate counts
    wide = Profile(partition="gpu", max_parallel_gpus=16, max_parallel_jobs=30)
    gpu = slurm_parameters(wide, "pretrain", Resources(gpus=4, cpus=4, mem_gb=8, time_min=60), job_name="g",
                           array_size=20)
    assert gpu["array_parallelism"] == 4
    jobs_only = Profile(partition="gpu", max_parallel_jobs=3)  # no GPU cap: jobs at once
    gpu = slurm_parameters(jobs_only, "pretrain", Resources(gpus=1, cpus=4, mem_gb=8, time_min=60), job_name="g",
                           array_size=20)
    assert gpu["array_parallelism"] == 3
    uncapped = slurm_parameters(Profile(partition="gpu"), "pretrain", Resources(gpus=1, cpus=4, mem_gb=8,
                                                                                time_min=60), job_name="g",
                                array_size=20)
    assert uncapped["array_parallelism"] == 20


def test_a_profile_without_max_array_size_splits_arrays_at_1000_tasks(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\n")
    prof = load_profile(p)
    assert max_array_size(prof, None) == 1000 and max_array_size(prof, 1001) == 1000
    assert [len(c) for c in array_chunks(list(range(2500)), max_array_size(prof, None))] == [1000, 1000, 500]


def test_a_slurm_submit_without_a_partition_says_so_before_any_manifest_check(tmp_path, monkeypatch):
    """The profile error is the first thing to fix: not hidden behind a page of missing-manifest errors."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "none"))
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("nopart", seeds=(0,)))
    prof = tmp_path / "nopart.yaml"
    prof.write_text(PROFILE.replace("partition: debug\n", ""))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(prof),
                            "--workdir", str(tmp_path / "wd")])
    assert code == 2 and f"{prof}: no 'partition' (required for --cluster slurm)" in err, err
    assert "not found" not in err and not (tmp_path / "wd").exists(), err


def test_the_checkpoint_signal_comes_the_profiles_delay_early_or_a_tenth_of_a_short_job_but_at_least_10_s(tmp_path):
    prof = Profile(partition="cpu")
    delays = [slurm_parameters(prof, "evaluate", Resources(gpus=0, cpus=1, mem_gb=1, time_min=t),
                               job_name="s")["signal_delay_s"] for t in (1, 2, 10, 600)]
    assert delays == [10, 12, 60, 90]
    (tmp_path / "slow.yaml").write_text("partition: cpu\nsignal_delay_s: 600\n")
    slow_disk = load_profile(tmp_path / "slow.yaml")  # a site whose checkpoints take minutes to write
    delays = [slurm_parameters(slow_disk, "evaluate", Resources(gpus=0, cpus=1, mem_gb=1, time_min=t),
                               job_name="s")["signal_delay_s"] for t in (10, 60, 600)]
    assert delays == [60, 360, 600]
    (tmp_path / "most.yaml").write_text("partition: cpu\nsignal_delay_s: 65535\n")  # sbatch's --signal limit
    assert load_profile(tmp_path / "most.yaml").signal_delay_s == 65535


def test_a_job_wider_than_max_parallel_gpus_still_runs_one_task_at_a_time():
    """max_parallel_gpus below one job's GPUs: a throttle of 1, never %0 (an array that never starts)."""
    prof = Profile(partition="gpu", max_parallel_gpus=4)
    params = slurm_parameters(prof, "pretrain", Resources(gpus=8, cpus=64, mem_gb=100, time_min=60), job_name="w",
                              array_size=3)
    assert params["array_parallelism"] == 1


@pytest.mark.parametrize("folder, said", [("wd%j", "holds a '%'"), ("wd\n#SBATCH --x", "holds a line break"),
                                          ("wd\\x", "holds a backslash")])
def test_a_workdir_slurm_would_read_as_a_log_pattern_or_a_header_line_is_refused(env, slurm, folder, said):
    """`%j` in `--output=<workdir>/submitit/...` is Slurm's pattern: each task's log went to a folder that does not
    exist (the task fails with no log); a line break in it wrote a header line of its own; a backslash, quoted as it
    is, sbatch's #SBATCH reader drops (`--output='/a\\b/...'` reads /ab/...: JobLaunchFailure, no log)."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("wdpct"))
    code, out, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE),
                              "--workdir", str(env / folder), "--dry-run"])
    assert code == 2 and said in err and "choose a workdir without" in err and out == ""
    assert not (env / folder).exists()


def _placed(env, name: str, evaluate: str, top: str = "") -> tuple[Path, list[str]]:
    """(profile, argv of a submit of grid_text(name) under it): PROFILE with `top` lines first and its evaluate
    stage `{<evaluate>}`."""
    grid = env / "g.yaml"
    grid.write_text(grid_text(name))
    profile = env / f"{name}.yaml"
    profile.write_text(top + PROFILE.replace("  evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}",
                                             f"  evaluate: {{{evaluate}}}"))
    return profile, ["submit", str(grid), "--cluster", "slurm", "--profile", str(profile),
                     "--workdir", str(env / "wd")]


def test_a_stage_partition_the_cluster_lacks_is_refused_before_the_first_sbatch(env, slurm, monkeypatch):
    """sbatch refused only the evaluations' array, after the pretraining array was queued (the evaluations never
    were): a partition sinfo does not list is named with its profile key before anything is queued; a dry run warns;
    once sinfo lists it, the arrays are queued, each job's call carrying the folder study submit ran in (where a
    job reads the grid's relative paths)."""
    import submitit

    profile, argv = _placed(env, "placed", "gpus: 0, cpus: 1, mem: 1G, time: 10m, partition: 'short,long'")
    (slurm / "sinfo").write_text("debug\nlong\ndebug\n")
    code, _, err = run_cli(argv)
    assert code == 2, err
    assert (f"study: error: profile {profile}: stages.evaluate.partition: 'short' (evaluate jobs): not a partition "
            "of this cluster (sinfo lists debug, long); nothing was queued") in err, err
    assert not (slurm / "counter").exists()  # no sbatch ran
    code, out, err = run_cli(argv + ["--dry-run"])
    assert code == 0 and "#SBATCH --partition=short,long" in out, err
    assert "study: warning: profile " in err and "'short' (evaluate jobs): not a partition" in err, err
    (slurm / "sinfo").write_text("debug\nshort\nlong\n")
    monkeypatch.chdir(env)
    code, _, err = run_cli(argv)
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    calls = [submitit.helpers.DelayedSubmission.load(f) for f in (env / "wd" / "submitit").rglob("*_submitted.pkl")]
    assert len(calls) == 2 and all(c.args[3]["STUDY_SUBMIT_DIR"] == str(env) for c in calls), calls
    # a top-level partition both stages use is named once
    assert unknown_partitions(load_profile(GPU_PROFILE), ["pretrain", "evaluate"], {"debug"}) == [
        "partition: 'gpu' (pretrain, evaluate jobs)"]


def test_slurms_commands_print_times_as_iso_whatever_the_shells_slurm_time_format(env, slurm, monkeypatch):
    """A login profile's SLURM_TIME_FORMAT=relative made sacct print a job's End as "Tomorr 10:00" or "12:04", which
    study reads as ISO 8601 (how long ago a job ended): its Slurm commands run without it."""
    from study.launch.slurm.state import query

    monkeypatch.setenv("SLURM_TIME_FORMAT", "relative")
    fake_commands(slurm / "bin", sacct='echo "JobID|State|NodeList|End"; '
                                       'echo "101_0|COMPLETED|n1|${SLURM_TIME_FORMAT:-2026-12-07T10:00:00}"')
    answer = query(env, {"101_0": None}, warn=False)
    assert answer.states == {"101_0": "COMPLETED"} and "101_0" in answer.ended_s, answer


def test_a_stage_sent_to_another_cluster_is_refused_and_slurms_commands_run_on_this_hosts_cluster(env, slurm,
                                                                                                  monkeypatch):
    """`additional: {clusters: big}` (sbatch -M) queued a stage's jobs on another cluster, whose job ids study then
    read, cancelled and waited on here (sacct, squeue, scancel and --dependency without -M: another job of the same
    number, or none): refused at its line. A shell's SLURM_CLUSTERS sent squeue and scancel there while sbatch (run
    without SLURM_* variables) queued here: study's Slurm commands run without it, and a submit says so."""
    from study.launch.slurm.state import query, scancel

    other = env / "other.yaml"
    for key, said in (("clusters", "--clusters cannot be used: study reads its jobs' states, cancels them"),
                      ("M", r"--clusters \(-M\) cannot be used"),  # sbatch's -M
                      ("cluster-constraint", "--cluster-constraint cannot be used: it lets a federation start"),
                      ("cluster", "--cluster abbreviates --cluster-constraint or --clusters")):  # as sbatch reads it
        other.write_text(GPU_PROFILE.read_text().replace("  evaluate: {gpus: 1,", f"  evaluate: {{additional: "
                                                                                f"{{{key}: big}}, gpus: 1,"))
        with pytest.raises(StudyError, match=rf"other.yaml:\d+: stages.evaluate.additional: {said}"):
            load_profile(other)
    monkeypatch.setenv("SLURM_CLUSTERS", "big")
    monkeypatch.setenv("SBATCH_CLUSTERS", "big")
    seen = slurm / "clusters_seen"
    fake_commands(slurm / "bin", squeue=f'echo "${{SLURM_CLUSTERS:-here}}" >> {seen}; '
                                        f'[ -z "$SLURM_CLUSTERS" ] && echo "101_0 RUNNING"; exit 0',
                  sacct='echo "sacct: error: Problem talking to the database" >&2; exit 1',
                  scancel=f'echo "${{SLURM_CLUSTERS:-here}}" >> {seen}',
                  scontrol='echo "ClusterName = ci"; echo "MaxArraySize = 1001"')
    assert query(env, {"101_0": None}, warn=False).states == {"101_0": "RUNNING"}
    assert scancel(["101_0"]) == [] and seen.read_text() == "here\nhere\n"
    grid = env / "g.yaml"
    grid.write_text(grid_text("here"))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0 and ("study: warning: SLURM_CLUSTERS=big, SBATCH_CLUSTERS=big set in this shell, which study's "
                          "Slurm commands run without: it queues, reads and cancels its jobs on this host's cluster ("
                          in err), err
    monkeypatch.setenv("SLURM_CLUSTERS", "Ci")  # scontrol's ClusterName: this cluster alone, not said
    monkeypatch.delenv("SBATCH_CLUSTERS")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0 and "CLUSTERS" not in err, err


def test_sinfos_maxtime_spellings_read_as_minutes_and_infinite_as_no_limit():
    assert [max_time_minutes(s) for s in ("2-00:00:00", "4:00:00", "30:00", "1-12", "infinite", "n/a", "", "90")] == [
        2880, 240, 30, None, None, None, None, None]  # `1-12` and a bare number: no `:`, not read (none checked)


def test_a_stage_time_above_its_partitions_maxtime_is_refused_before_the_first_sbatch(env, slurm):
    """A 5h evaluation on a partition of MaxTime 4h was queued and pended for ever (PartitionTimeLimit) where the
    profile gave no max_time: sinfo's MaxTime is checked before anything is queued, naming the keys to change; a dry
    run warns; a partition list is limited by its longest; a time within the limit is queued."""
    profile, argv = _placed(env, "timed", "gpus: 0, cpus: 1, mem: 1G, time: 5h, partition: short")
    (slurm / "sinfo").write_text("debug infinite\nshort 4:00:00\nlong 2-00:00:00\nshort 4:00:00\n")
    code, _, err = run_cli(argv)
    assert code == 2, err
    assert (f"study: error: profile {profile}: evaluate jobs ask for up to 5h (`time`), more than the MaxTime of "
            "stages.evaluate.partition 'short' (4h, sinfo): ask for at most that (the profile's stages.evaluate.time, "
            "or the grid's resources), and set stages.evaluate.max_time: 4h so that `study plan` checks it; nothing "
            "was queued") in err, err
    assert "pretrain jobs" not in err and not (slurm / "counter").exists()  # debug: no limit; no sbatch ran
    code, out, err = run_cli(argv + ["--dry-run"])
    assert code == 0 and "#SBATCH --time=300" in out, err
    assert "study: warning: profile " in err and "more than the MaxTime of stages.evaluate.partition" in err, err
    _placed(env, "timed", "gpus: 0, cpus: 1, mem: 1G, time: 5h, partition: 'short,long'")
    code, _, err = run_cli(argv)
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    # the top-level partition's limit names the top-level max_time
    top = load_profile(GPU_PROFILE)
    assert over_time_limits(top, {"pretrain": 48 * 60}, {"gpu": 48 * 60}) == ([], [])
    assert over_time_limits(top, {"pretrain": 48 * 60 + 1}, {"gpu": 48 * 60})[0][0].endswith(
        "more than the MaxTime of partition 'gpu' (48h, sinfo): ask for at most that (the profile's "
        "stages.pretrain.time, or the grid's resources), and set max_time: 48h so that `study plan` checks it")


def test_an_array_sbatch_refuses_after_others_were_queued_names_the_stages_placement_keys(env, slurm):
    """sbatch refused the evaluations' QOS (not associated with their account) after the pretraining was queued: the
    error named the profile file only; it names the keys that place the refused stage, and how to go on."""
    profile, argv = _placed(env, "placedqos", "gpus: 0, cpus: 1, mem: 1G, time: 10m, qos: short, account: other",
                            top="account: lab\n")
    real = (slurm / "bin" / "sbatch").read_text()
    (slurm / "bin" / "sbatch").write_text(real.replace(
        'echo "Submitted batch job $n"', '[ "$n" = 102 ] && { echo "sbatch: error: Batch job submission failed: '
        'Invalid qos specification" >&2; exit 1; }\necho "Submitted batch job $n"'))
    code, _, err = run_cli(argv)
    assert code == 2, err
    assert (f"sbatch refused array 2 (evaluate, 1 job(s); profile {profile}; partition: 'debug', stages.evaluate."
            "account: 'other', stages.evaluate.qos: 'short'): sbatch: error: Batch job submission failed: Invalid qos "
            "specification; the 1 job(s) of the arrays before it are queued (study status): fix the profile and "
            "submit again, which queues the rest to wait on them") in err, err


def test_sinfo_is_asked_without_a_shells_sinfo_partition_which_would_list_that_partition_only(env, slurm, monkeypatch):
    """A shell with SINFO_PARTITION=gpu (a site's default for interactive use) had sinfo list gpu alone: a stage on
    debug was refused as "not a partition of this cluster". sinfo pads a sized %R column: names are read stripped."""
    from study.launch.slurm.params import cluster_partitions

    fake_commands(slurm / "bin", sinfo='if [ -n "$SINFO_PARTITION" ]; then echo "$SINFO_PARTITION 4:00:00"; '
                                       'else printf "debug      infinite\\ngpu        2-00:00:00\\n"; fi')
    monkeypatch.setenv("SINFO_PARTITION", "gpu")
    assert cluster_partitions() == {"debug": None, "gpu": 2880}
    grid = env / "g.yaml"
    grid.write_text(grid_text("sinfoenv"))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), "--dry-run"])
    assert code == 0 and "not a partition of this cluster" not in err, err


def test_a_stage_time_above_maxtime_is_not_refused_where_its_qos_lifts_the_partitions_limit(env, slurm):
    """A QOS with the flag PartitionTimeLimit lets its jobs ask more than the partition's MaxTime (a site's `long`
    QOS on a 4h partition): a 5h evaluation with one was refused with no way around it. sacctmgr is asked: that flag,
    queued; without it, refused; where sacctmgr cannot tell, a warning and queued."""
    profile, argv = _placed(env, "timedqos", "gpus: 0, cpus: 1, mem: 1G, time: 5h, partition: short, qos: long")
    argv.append("--dry-run")
    (slurm / "sinfo").write_text("debug infinite\nshort 4:00:00\n")
    fake_commands(slurm / "bin", sacctmgr='echo "long|DenyOnLimit||"')
    code, _, err = run_cli(argv)
    assert code == 0 and "study: warning: profile " in err and "MaxTime of stages.evaluate.partition" in err, err
    assert "sacctmgr could not tell" not in err
    code, _, err = run_cli(argv[:-1])
    assert code == 2 and err.rstrip().endswith("nothing was queued"), err
    fake_commands(slurm / "bin", sacctmgr='echo "long|DenyOnLimit,PartitionTimeLimit||"')
    code, _, err = run_cli(argv)
    assert code == 0 and "MaxTime" not in err, err
    fake_commands(slurm / "bin", sacctmgr='echo "sacctmgr: error: Problem talking to the database" >&2; exit 1')
    code, _, err = run_cli(argv[:-1])  # a real submit: a warning, and queued
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    assert "more than the MaxTime of stages.evaluate.partition 'short' (4h, sinfo)" in err
    assert "unless the stage's QOS has the flag PartitionTimeLimit, which lifts it (sacctmgr could not tell)" in err
    # both stages on that partition and QOS: sacctmgr asked once, not once per stage
    profile.write_text(profile.read_text().replace("  pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m}",
                                                   "  pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 5h, "
                                                   "partition: short, qos: long}"))
    fake_commands(slurm / "bin", sacctmgr=f'echo asked >> {slurm}/sacctmgr_calls; echo "long|PartitionTimeLimit||"')
    code, _, err = run_cli([*argv[:-2], str(env / "wd2"), "--dry-run"])  # a workdir with all still to queue
    assert code == 0 and "MaxTime" not in err, err
    assert (slurm / "sacctmgr_calls").read_text() == "asked\n", err
    prof, limits = load_profile(profile), {"debug": None, "short": 240}
    over, unsure = over_time_limits(prof, {"evaluate": 300}, limits)  # no qos_lifts: the QOS lifts nothing
    assert len(over) == 1 and unsure == []
    assert over_time_limits(prof, {"evaluate": 300}, limits, lambda qos: True) == ([], [])
    over, unsure = over_time_limits(prof, {"evaluate": 300}, limits, lambda qos: None)
    assert over == [] and len(unsure) == 1


def test_a_time_over_one_partition_of_a_list_is_refused_only_where_every_partition_must_take_the_job():
    """`partition: short,long`: Slurm runs the job on a partition of the list that takes it, unless EnforcePartLimits
    is ALL, where each must (sbatch refused it with a bare "Requested time limit is invalid")."""
    for long in (48 * 60, None):  # a MaxTime, or none (INFINITE)
        prof, limits = Profile(partition="short,long"), {"short": 30, "long": long}
        assert over_time_limits(prof, {"pretrain": 60}, limits) == ([], [])
        (over,), _ = over_time_limits(prof, {"pretrain": 60}, limits, every=True)
        assert ("more than the MaxTime of partition 'short,long' (30m, sinfo); EnforcePartLimits=ALL: each partition "
                "of its list must take the job: ask for at most that") in over, over
    assert over_time_limits(Profile(partition="long"), {"pretrain": 60}, {"long": None}, every=True) == ([], [])


def _sbatch_reads(value: str) -> str:
    """An `#SBATCH --opt=<value>` as sbatch reads it (as Slurm 22.05 did on this repository's test cluster): quotes
    ' and " group, a backslash takes the next character as it is (within quotes too), an unquoted blank or # ends
    it."""
    out, quote, escaped = [], "", False
    for ch in value:
        if escaped or (quote and ch != quote and ch != "\\"):
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch.isspace() or ch == "#":
            break
        else:
            out.append(ch)
    return "".join(out)


def test_a_workdir_with_blanks_quotes_dollars_and_non_ascii_reaches_sbatch_and_the_shell_as_it_is(env, slurm):
    """The log paths of `#SBATCH --output/--error` (read by sbatch) and the srun line (read by bash) name the workdir
    as it is: blanks, both quotes, `$`, backquotes, parentheses, `#`, non-ASCII letters."""
    import subprocess

    wd = env / "Jürgen's \"ssl\" study (v2) $HOME `id` #1"
    grid = env / "g.yaml"
    grid.write_text(grid_text("odd"))
    code, out, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(GPU_PROFILE),
                              "--workdir", str(wd), "--dry-run"])
    assert code == 0, err
    folders = re.findall(r"study-odd-pretrain-[0-9a-f]{8}", out)
    sub = f"{wd}/submitit/{folders[0]}"
    pretrain = out.split("# ---- array 2")[0]
    headers = dict(re.findall(r"^#SBATCH --(output|error)=(.*)$", pretrain, re.M))
    assert {k: _sbatch_reads(v) for k, v in headers.items()} == {"output": f"{sub}/%j_0_log.out",
                                                                 "error": f"{sub}/%j_0_log.err"}
    argv = subprocess.run(["bash", "-c", 'srun() { printf "%s\\n" "$@"; }; ' + _srun_line(pretrain)],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert argv[argv.index("--output") + 1] == f"{sub}/%j_%t_log.out" and argv[-1] == sub


@pytest.mark.parametrize("said, every", [("ALL", True), ("ANY", False), ("NO", False), (None, None)])
def test_enforce_part_limits_is_read_from_scontrol(tmp_path, monkeypatch, said, every):
    from study.launch.slurm.params import cluster_max_array_size, every_partition_enforced, slurm_config

    line = f'echo "EnforcePartLimits       = {said}"' if said else "exit 1"
    bin_dir = fake_commands(tmp_path / "bin", scontrol=f'echo "MaxArraySize = 1001"; {line}')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    config = slurm_config()  # one scontrol call, each setting read from it
    assert every_partition_enforced(config) is every
    assert cluster_max_array_size(config) == 1001  # from the same answer
