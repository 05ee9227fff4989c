"""Every bad input: a StudyError naming file:line (exit 2 through the CLI), with the closest name where one fits."""
import re
from pathlib import Path

import pytest

from study.errors import StudyError
from study.evaluate.protocols import PROTOCOLS
from study.grids import load_profile, plan_grid
from study.grids.checks.missing import missing_manifests
from study.grids.where import jobs_where, parse_where, plan_of
from tests.grids.conftest import base_text, line_of, run_plan_cli


def error_of(path, profile=None, check=False) -> str:
    with pytest.raises(StudyError) as e:
        plan = plan_grid(path, profile)
        if check:
            plan.check(manifests=False)
    return str(e.value)


def test_unknown_top_level_key_names_line_and_suggests(write_grid):
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\nexclued: []\n")
    assert error_of(g) == f"{g}:{line_of(g, 'exclued')}: unknown key 'exclued' (did you mean 'exclude'?) " \
                          "(known: name, description, datasets, defaults, axes, seeds, zip, include, exclude, stages)"


def test_unknown_axis(write_grid):
    g = write_grid("axes:\n  methdo: [simclr]\n  dataset: [alpha]\nstages: {}\n")
    msg = error_of(g)
    assert msg.startswith(f"{g}:{line_of(g, 'methdo')}: unknown axis 'methdo' (did you mean 'method'?)")


def test_unknown_key_in_an_evaluate_entry(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          labeled_size: [10]
    """)
    assert error_of(g).startswith(f"{g}:{line_of(g, 'labeled_size:')}: unknown key 'labeled_size' "
                                  "(did you mean 'labeled_sizes'?)")


def test_an_evaluation_setting_at_an_entrys_level_is_pointed_under_params(write_grid):
    """`per_level: true` beside `levels:` was an unknown key "(did you mean 'levels'?)": it is a setting of `params`."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: granularity
          per_level: true
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'per_level:')}: stages.evaluate[0].per_level: an evaluation setting, "
                           "which goes under the entry's `params:` (params: {per_level: ...}; "
                           "docs/protocol-evaluation.md)")


@pytest.mark.parametrize("key", ["train_manifest", "test_manifest"])
def test_a_manifest_the_planner_sets_at_an_entrys_level_is_not_pointed_under_params(write_grid, key):
    """`train_manifest:` beside `protocol:` was pointed under the entry's `params:`, which refuses it as set by the
    planner: it says so at once."""
    g = write_grid(f"""
    axes: {{method: [simclr], dataset: [alpha]}}
    stages:
      evaluate:
        - protocol: linear
          {key}: beta_train
    """)
    assert error_of(g) == (f"{g}:{line_of(g, key)}: stages.evaluate[0].{key}: set by the planner from 'datasets' and "
                           "the entry's eval_datasets; remove it")


def test_unknown_values_dataset_protocol_size_corruption(write_grid):
    g = write_grid("axes: {method: [simclr], dataset: [alpah]}\nstages: {}\n")
    assert error_of(g).startswith(f"{g}:{line_of(g, 'alpah')}: unknown dataset 'alpah' (did you mean 'alpha'?)")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {evaluate: [{protocol: linear, "
                   "eval_datasets: sam}]}\n")  # a single word may have meant same or all
    assert error_of(g).endswith(": unknown dataset 'sam' (did you mean 'same'?) (known: alpha, beta, same, all)")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {evaluate: [{protocol: lineer}]}\n")
    assert error_of(g).startswith(f"{g}:{line_of(g, 'lineer')}: unknown protocol 'lineer' (did you mean 'linear'?)")
    g = write_grid("axes:\n  method: [simclr]\n  dataset: [alpha]\n  size: [10k, lots]\nstages: {}\n")
    assert error_of(g).startswith(f"{g}:{line_of(g, 'lots')}: axes.size[1]: expected a count")
    g = write_grid("axes:\n  method: [simclr]\n  dataset: [alpha]\n  corruption: [none, 'jpg:quality=5']\n"
                   "stages: {}\n")
    assert error_of(g).startswith(f"{g}:{line_of(g, 'jpg')}: axes.corruption[1]: unknown corruption 'jpg' "
                                  "(did you mean 'jpeg'?)")
    g = write_grid("axes:\n  method: [simclr]\n  dataset: [alpha]\n  corruption: ['jpeg:qualty=5']\nstages: {}\n")
    assert "unknown parameter 'qualty'" in error_of(g) and error_of(g).startswith(f"{g}:{line_of(g, 'qualty')}:")


def test_method_typo_suggests_the_closest(write_grid, capsys):
    g = write_grid("axes:\n  method: [simclr, supervsed]\n  dataset: [alpha]\nstages: {}\n")
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:{line_of(g, 'supervsed')}: unknown method 'supervsed' (did you mean 'supervised'?)")
    code, out, err = run_plan_cli([str(g), "--no-check"], capsys)
    assert code == 2 and out == "" and "did you mean 'supervised'?" in err
    g = write_grid("""
    axes:
      method: [simclr, supervsed]
      dataset: [alpha]
    stages:
      evaluate: [{protocol: scratch, where: {method: supervised}}]
    """)  # the entry expands before the methods are checked: its error shows the typo on the axis
    assert error_of(g) == (f"{g}:{line_of(g, 'where')}: stages.evaluate[0] (protocol scratch): where method: "
                           "'supervised' matches no pretraining job (their method values: 'simclr', 'supervsed')")


def test_zero_jobs(write_grid):
    g = write_grid("axes:\n  method: []\n  dataset: [alpha]\nstages: {}\n")
    assert error_of(g) == f"{g}:{line_of(g, 'method')}: axis 'method' has no values: it expands to zero jobs"
    g = write_grid("axes:\n  method: [simclr, byol]\n  dataset: [alpha]\nexclude:\n  - {method: byol}\nstages: {}\n")
    assert error_of(g) == (f"{g}:{line_of(g, 'method')}: axis 'method' value 'byol' expands to zero jobs "
                           "(every combination with it is excluded)")
    g = write_grid("axes:\n  method: [simclr]\n  dataset: [alpha]\nexclude:\n  - {method: simclr}\nstages: {}\n")
    assert error_of(g) == (f"{g}:{line_of(g, 'axes:')}: the axes expand to zero pretraining jobs (every combination is "
                           "excluded)")
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    include: [{method: byol, dataset: beta}]
    stages:
      evaluate:
        - protocol: linear
          where: {method: byol, dataset: alpha}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'where')}: stages.evaluate[0] (protocol linear): where {{method: byol, "
                           "dataset: alpha} matches no pretraining job: it expands to zero jobs")


def test_zip_of_unequal_lengths_and_duplicate_keys(write_grid):
    g = write_grid("axes: {method: [simclr], dataset: [alpha, beta], size: [1, 2, 3]}\nzip: [[dataset, size]]\n"
                   "stages: {}\n")
    assert "zip: axes that move together need lists of one length; got dataset: 2, size: 3" in error_of(g)
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\nstages: {}\n")
    assert error_of(g) == f"{g}:{line_of(g, 'stages: {}') + 1}: duplicate key 'stages' (first at line " \
                          f"{line_of(g, 'stages: {}')})"


def test_invalid_pretrain_setting_is_caught_by_the_check(write_grid):
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    g.write_text(g.read_text().replace("epochs: 1,", "epochs: 1, tempreature: 0.1,"))
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:") and "unknown key(s) 'tempreature'" in msg and "job " in msg


def test_missing_manifest_names_the_command(write_grid, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [1k]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [100]}]}
    """)
    code, out, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and out == ""
    assert "manifest 'alpha_train' not found" in err
    assert ('study manifest build --dataset READER --root "$ALPHA_ROOT" --split train --name alpha_train '
            '--sizes 1k --labeled-sizes 100') in err
    assert ('study manifest build --dataset READER --root "$ALPHA_ROOT" --split val --name alpha_val '
            '--classes-from alpha_train') in err  # the test split lists its train split's classes
    assert "2 problem(s)" in err
    code, out, err = run_plan_cli([str(g), "--no-check"], capsys)
    assert code == 0 and err == ""


def test_a_manifest_name_close_to_one_in_the_folder_is_pointed_out(write_grid, capsys, tmp_path, monkeypatch):
    """A typo in the grid's `datasets:` (or in a manifest's name) reads as a typo, not only as a manifest to build."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    monkeypatch.setenv("STUDY_MANIFESTS", str(folder))
    (folder / "alpha-train.json").write_text("{}")
    (folder / "alpha-train.parquet").write_bytes(b"")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [1k]}\nstages: {}\n")
    code, _, err = run_plan_cli([str(g)], capsys)
    # the one problem, at the line of the `datasets:` entry that names it
    alpha = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if t.lstrip().startswith("alpha:"))
    assert code == 2 and f"study: error: {g}:{alpha}: manifest 'alpha_train' not found in" in err, err
    assert "(did you mean 'alpha-train'? the grid's `datasets:` names it)" in err
    assert "set each $<DATASET>_ROOT above" in err  # a build command with a root is shown


def _manifest_stubs(tmp_path, monkeypatch, *names: str) -> Path:
    """A manifests folder ($STUDY_MANIFESTS) with an empty .json and .parquet of each of `names`: there, by name."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    monkeypatch.setenv("STUDY_MANIFESTS", str(folder))
    for name in names:
        (folder / f"{name}.json").write_text("{}")
        (folder / f"{name}.parquet").write_bytes(b"")
    return folder


def test_a_missing_corrupted_variant_is_pointed_only_at_variants_of_its_own_base(write_grid, capsys, tmp_path,
                                                                                 monkeypatch):
    """`<train>.<slug>` comes from the grid's corruption: beta's variant of the same corruption is no typo of alpha's
    (it misled a user who had switched datasets); a variant of alpha's own base, spelled close, is."""
    folder = _manifest_stubs(tmp_path, monkeypatch, "beta_train.jpeg-quality10", "alpha_train.jpeg-quality1O")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [1k], corruption: [jpeg]}\nstages: {}\n")
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "manifest 'alpha_train.jpeg-quality10' not found in" in err, err
    assert "beta_train.jpeg-quality10" not in err
    assert "(did you mean 'alpha_train.jpeg-quality1O'? a `corruption` value of the grid names it)" in err
    (folder / "alpha_train.jpeg-quality1O.json").unlink()
    code, _, err = run_plan_cli([str(g)], capsys)
    assert code == 2 and "manifest 'alpha_train.jpeg-quality10' not found in" in err and "did you mean" not in err


def test_half_a_manifest_is_named_by_the_file_it_lacks_not_only_as_not_found(write_grid, tmp_path, monkeypatch):
    """A manifest whose .json was copied without its .parquet (or the other way round): `study plan` says which file
    is missing, as the job's own error would, not only "not found"."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    monkeypatch.setenv("STUDY_MANIFESTS", str(folder))
    (folder / "alpha_train.json").write_text("{}")
    (folder / "alpha_val.parquet").write_bytes(b"")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [1k]}\n"
                   "stages: {evaluate: [{protocol: linear, labeled_sizes: [100]}]}\n")
    train, val = missing_manifests(plan_grid(g))
    assert "alpha_train.json is there without alpha_train.parquet (a manifest is both files" in train, train
    assert "alpha_val.parquet is there without alpha_val.json, the file a build writes last" in val, val
    assert "study manifest build" in train and "did you mean" not in train


def test_a_missing_corrupted_manifest_is_said_to_come_from_a_corruption_value(write_grid, tmp_path, monkeypatch):
    """A corrupted variant's name comes from one of the grid's `corruption` values, not from its `datasets:`."""
    _manifest_stubs(tmp_path, monkeypatch, "alpha_train", "alpha_train.downsample-factor4")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [1k], corruption: ['downsample:factor=8']}\n"
                   "stages: {}\n")
    problems = missing_manifests(plan_grid(g))
    assert len(problems) == 1 and "manifest 'alpha_train.downsample-factor8' not found" in problems[0]
    assert ("(did you mean 'alpha_train.downsample-factor4'? a `corruption` value of the grid names it)"
            in problems[0]), problems[0]


def test_manifests_near_the_grid_file_are_pointed_at_not_built_again(tmp_path, monkeypatch, capsys):
    """The quickstart's grid and manifests (data/quickstart/, its manifests/) planned by hand without the
    STUDY_MANIFESTS it named: one line says where they are and how to point there, not a build command each; one not
    there either keeps its command."""
    grid_dir = tmp_path / "data"
    beside = grid_dir / "manifests"
    beside.mkdir(parents=True)
    for name in ("alpha_train", "alpha_val"):
        (beside / f"{name}.json").write_text("{}")
        (beside / f"{name}.parquet").write_bytes(b"")
    (beside / "alpha_train.downsample-factor2.json").write_text("{}")  # half of one: no manifest there
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "elsewhere"))
    g = grid_dir / "g.yaml"
    g.write_text(base_text() + "axes: {method: [simclr], dataset: [alpha], size: [1k], "
                 "corruption: ['none', 'downsample:factor=2']}\nstages: {evaluate: [{protocol: linear, "
                 "labeled_sizes: [100]}]}\n")
    problems = missing_manifests(plan_grid(g))
    assert len(problems) == 2, problems
    assert problems[0] == (f"{g}: 2 manifest(s) not found in {tmp_path / 'elsewhere'}/ are in {beside}/, near the "
                           f"grid file (alpha_train, alpha_val): point STUDY_MANIFESTS there, `export "
                           f"STUDY_MANIFESTS={beside}` (or `STUDY_MANIFESTS={beside} study ...`)")
    assert "manifest 'alpha_train.downsample-factor2' not found" in problems[1] and "make it with" in problems[1]
    monkeypatch.setenv("STUDY_MANIFESTS", str(beside))  # as told: only the half one is missing
    assert [p for p in missing_manifests(plan_grid(g)) if "near the grid file" in p] == []


def test_manifests_near_the_grid_file_that_lack_others_the_plan_reads_are_not_pointed_at_alone(tmp_path,
                                                                                              monkeypatch):
    """The corrupted variant beside the grid file, its base and test set in the folder in use: pointing
    STUDY_MANIFESTS at the grid's folder would lose those two (the next plan asked to build them again), so the line
    names them and says to put all in one folder, not to point there."""
    grid_dir, used = tmp_path / "data", tmp_path / "shared"
    beside = grid_dir / "manifests"
    for folder, names in ((used, ("alpha_train", "alpha_val")), (beside, ("alpha_train.downsample-factor2",))):
        folder.mkdir(parents=True)
        for name in names:
            (folder / f"{name}.json").write_text("{}")
            (folder / f"{name}.parquet").write_bytes(b"")
    monkeypatch.setenv("STUDY_MANIFESTS", str(used))
    g = grid_dir / "g.yaml"
    g.write_text(base_text() + "axes: {method: [simclr], dataset: [alpha], size: [1k], "
                 "corruption: ['none', 'downsample:factor=2']}\nstages: {evaluate: [{protocol: linear, "
                 "labeled_sizes: [100]}]}\n")
    assert missing_manifests(plan_grid(g)) == [
        f"{g}: 1 manifest(s) not found in {used}/ are in {beside}/, near the grid file "
        "(alpha_train.downsample-factor2), which lacks 2 other(s) the plan reads (alpha_train, alpha_val): "
        "STUDY_MANIFESTS names one folder, so link or copy them into one, then point STUDY_MANIFESTS at it"]


def test_profile_without_partition_for_slurm(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("name: mine\ngpus_per_node: 4\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}: no 'partition' (required for --cluster slurm)")):
        load_profile(p).require_partition()
    p.write_text("name: mine\npartition: gpu\n")
    assert load_profile(p).require_partition() == "gpu"
    p.write_text("name: mine\npartition: ''\n")  # an empty partition is none: not a malformed name
    with pytest.raises(StudyError, match=re.escape(f"{p}: no 'partition' (required for --cluster slurm)")):
        load_profile(p).require_partition()


@pytest.mark.parametrize("text, message", [
    ("partition: gpu\ngpus_per_node: 4\nstages:\n  pretrain: {gpus: 8}\n",
     "4: pretrain resources: gpus 8 is more than a node"),
    ("partition: gpu\npartitoin: x\n", "2: unknown key 'partitoin' (did you mean 'partition'?)"),
    ("partition: gpu\nmax_array_size: 0\n", "2: max_array_size: expected an integer >= 1"),  # arrays of no task
    # a misspelt resource of a profile stage fell back silently to the default (1 GPU) for every job of that stage
    ("partition: gpu\nstages:\n  pretrain:\n    gpu: 8\n",
     "4: unknown stages.pretrain key 'gpu' (did you mean 'gpus'?)"),
    ("partition: gpu\ngpu_option: gpus\n", "2: gpu_option: expected one of gpus-per-node, gres, got 'gpus'"),
    ("partition: gpu\ngpu_type: 'a100:8'\n", "2: gpu_type: expected a GPU type such as a100, got 'a100:8'"),
    # sbatch options the launcher writes itself, refused in `additional` (written last, it would win). B: sends USR2
    # to the batch shell only: the job would never checkpoint nor requeue at its time limit
    ("partition: gpu\nadditional:\n  mail-type: FAIL\n  signal: B:USR2@300\n",
     "4: additional: --signal is written by study submit itself (requeue, stage dependencies, recovery"),
    # one name for every array: an interrupted submit's array would be found under another array's id
    ("partition: gpu\nadditional: {job_name: mine}\n", "2: additional: --job-name is written by study submit itself"),
    ("partition: gpu\nadditional:\n  --time: '1:00:00'\n",
     "3: additional: --time is written by study submit itself; set `stages.<stage>.time` in the profile instead"),
    # with gpu_option: gres the launcher asks --gres=gpu:<n> itself: `additional` would win, 2 GPUs for 8 ranks
    ("partition: gpu\ngpu_option: gres\nadditional: {gres: 'gpu:2'}\n",
     "3: additional: --gres is written by study submit itself; set `stages.<stage>.gpus (gpu_type: its type)`"),
    ("partition: gpu\nadditional: {gpus: 4}\n", "2: additional: --gpus is written by study submit itself"),
    ("partition: gpu\nmax_parallel_gpus: -1\n", "2: max_parallel_gpus: expected an integer >= 0, got -1"),
    # a rate of 0 fell back to resnet50's default rate without a word
    ("partition: gpu\ncost:\n  throughput:\n    resnet50: {pretrain: 0}\n",
     "4: cost.throughput.resnet50.pretrain: expected images/s > 0, got 0"),
    # not finite: a zero or infinite estimate, NaN hours, or an overflow turning test images into an integer
    ("partition: gpu\ncost:\n  throughput:\n    resnet50: {pretrain: .inf}\n",
     "4: cost.throughput.resnet50.pretrain: expected images/s > 0, got inf"),
    ("partition: gpu\ncost:\n  method_factor: {byol: .nan}\n",
     "3: cost.method_factor.byol: expected a number >= 0, got nan"),
    ("partition: gpu\ncost:\n  default_test_images: .inf\n",
     "3: cost.default_test_images: expected a number >= 0, got inf"),
    ("partition: gpu\nstages:\n  pretrain: {nodes: 0}\n",
     "3: pretrain resources: nodes: expected an integer >= 1, got 0"),
    # `node` means a node's gpus, cpus or mem; the message offered it for nodes too, then refused it
    ("partition: gpu\nstages:\n  pretrain: {nodes: node}\n",
     "3: pretrain resources: nodes: expected an integer >= 1, got 'node'"),
    ("partition: gpu\nstages:\n  pretrain: {gpus: many}\n",
     "3: pretrain resources: gpus: expected an integer >= 0 or 'node', got 'many'"),
    # a job's tasks follow its gpus: the key read as a typo, with no word of how to ask for them
    ("partition: gpu\nstages:\n  pretrain: {gpus: 8, nodes: 2, ntasks_per_node: 8}\n",
     "3: stages.pretrain: ntasks_per_node: a job's tasks are not asked for apart: a pretraining job runs one task per "
     "GPU on each node (`gpus`; one per node with gpus: 0)"),
    # a line break wrote a line of its own into the sbatch header: `#SBATCH --partition='gpu` + `#SBATCH --wrap=..'`
    ('partition: "gpu\\n#SBATCH --wrap=x"\n', "1: partition: 'gpu\\n#SBATCH --wrap=x' holds a line break"),
    ("partition: gpu\naccount: |\n  lab\n", "2: account: 'lab\\n' holds a line break"),
    ('partition: gpu\nadditional: {mail-user: "me\\n#SBATCH --x"}\n', "2: additional.mail-user: 'me\\n#SBATCH --x' "
                                                                     "holds a line break"),
    # a key is written unquoted: `#SBATCH --<key>=<value>`
    ('partition: gpu\nadditional: {"x\\n#SBATCH --y": 1}\n',
     "2: additional: 'x\\n#SBATCH --y' is not an sbatch option"),
    ("partition: gpu\nadditional: {mail type: FAIL}\n", "2: additional: 'mail type' is not an sbatch option name"),
    ("partition: gpu\nadditional: {--mail-type: FAIL}\n", "2: additional: '--mail-type' is not an sbatch option name "
     "(lower-case letters, digits, '-', '_'): write `mail-type`"),
    # written as it stands, `#SBATCH --Mail-Type=FAIL`: sbatch knows no such option and refuses the whole array
    ("partition: gpu\nadditional: {Mail-Type: FAIL}\n", "2: additional: 'Mail-Type' is not an sbatch option name "
     "(lower-case letters, digits, '-', '_'): write `mail-type`"),
    ("partition: gpu\nadditional:\n  exclusive: false\n", "3: additional.exclusive: false would be written as "
     "`--exclusive=False`: leave the option out"),
    # `exclusive:` with no value (YAML null) was written `#SBATCH --exclusive=None`; a list as its Python repr
    ("partition: gpu\nadditional:\n  exclusive:\n", "3: additional.exclusive: expected a string or a number "
     "(`true` for a bare flag), got None"),
    ("partition: gpu\nadditional: {mail-type: [END, FAIL]}\n", "2: additional.mail-type: expected a string or a "
     "number (`true` for a bare flag), got ['END', 'FAIL']: write a list as one string, e.g. `END,FAIL`"),
    # a second GPU request beside --gpus-per-node: its count, not the stage's gpus, and GPUs for CPU-only jobs
    ("partition: gpu\nadditional: {gres: 'nvme:1,gpu:a100:2'}\n", "2: additional.gres: 'nvme:1,gpu:a100:2' asks for "
     "GPUs besides those study submit asks for (--gpus-per-node, by `stages.<stage>.gpus`; also for a CPU job): set "
     "`gpu_option: gres`"),
    ("partition: gpu\nmax_parallel_gpus: 0\n", "2: max_parallel_gpus: expected an integer >= 1, got 0 (leave it out "
     "for no limit)"),
    ("partition: gpu\nsignal_delay_s: 0\n", "2: signal_delay_s: expected a number of seconds >= 1, got 0"),
    ("partition: gpu\nsignal_delay_s: 5m\n", "2: signal_delay_s: expected an integer >= 0, got '5m'"),
    ("partition: gpu\nadditional: {gres: 'nvme:1, gres/gpu'}\n", "2: additional.gres: 'nvme:1, gres/gpu' asks for "
     "GPUs besides"),
    # written as it stands, `--partition='gpu, gpu-long'`: Slurm knows no partition " gpu-long"
    ('partition: "gpu, gpu-long"\n', "1: partition: expected a name or a comma-separated list of names without "
     "spaces (e.g. gpu,gpu-long), got 'gpu, gpu-long'"),
    # Slurm refuses --cpus-per-gpu beside --cpus-per-task, --ntasks-per-gpu beside --ntasks-per-node
    ("partition: gpu\nadditional: {cpus-per-gpu: 8}\n", "2: additional: sbatch refuses --cpus-per-gpu beside the "
     "--cpus-per-task study submit writes; set `stages.<stage>.cpus` in the profile instead"),
    ("partition: gpu\nadditional: {gpus-per-socket: 1}\n", "2: additional: sbatch refuses --gpus-per-socket beside "
     "the --gpus-per-node study submit writes; set `stages.<stage>.gpus` in the profile instead"),
    ("partition: gpu\nadditional: {ntasks_per_gpu: 1}\n", "2: additional: sbatch refuses --ntasks-per-gpu beside the "
     "--ntasks-per-node study submit writes; set `stages.<stage>.gpus` in the profile instead"),
    # any control character, not only a line feed: a carriage return ends the header line for sbatch too
    ('partition: gpu\nqos: "normal\\r"\n', "2: qos: 'normal\\r' holds a line break or control character"),
    ('partition: gpu\naccount: "lab\\x7f"\n', "2: account: 'lab\\x7f' holds a line break or control character"),
    # `python:` is written into each job's script: a line break would split its command
    ('partition: gpu\npython: "python3\\nrm x"\n', "2: python: 'python3\\nrm x' holds a line break"),
    ("partition: gpu\npython: 3\n", "2: python: expected a string, got 3"),
    ("partition: gpu\nqos: 1\n", "2: qos: expected a string, got 1"),
    # a mapping was written as its Python repr, `--mail-type={'a': 1}`
    ("partition: gpu\nadditional: {mail-type: {a: 1}}\n", "2: additional.mail-type: expected a string or a number "
     "(`true` for a bare flag), got {'a': 1}"),
    ("partition: gpu\nadditional: [exclusive]\n", "2: additional: expected a mapping of extra sbatch options"),
    # a space inside the first name of the list, not only after a comma
    ('partition: "gpu long"\n', "1: partition: expected a name or a comma-separated list of names without spaces"),
    # one string would run each of its characters as a shell line; `- echo a: b` is a YAML mapping, not a line
    ("partition: gpu\nsetup: module load cuda\n", "2: setup: expected a list of shell lines"),
    ("partition: gpu\nsetup:\n  - module load cuda\n  - echo a: b\n", "2: setup: expected a list of shell lines"),
    # 0 would be read as no limit by the estimate and the throttle alike
    ("partition: gpu\nmax_parallel_jobs: 0\n", "2: max_parallel_jobs: expected an integer >= 1, got 0"),
    ("partition: gpu\nstages: [pretrain]\n", "2: stages: expected a mapping stage -> resources"),
    ("partition: gpu\nstages:\n  pretrain: 8\n", "3: stages.pretrain: expected a mapping of gpus, cpus, mem, time, "
     "nodes"),
    ("partition: gpu\nstages:\n  pretrian: {gpus: 1}\n", "3: unknown stage 'pretrian' (did you mean 'pretrain'?)"),
    # a node's amount itself fits; one more does not
    ("partition: gpu\ngpus_per_node: 4\nstages:\n  pretrain: {gpus: 5}\n",
     "4: pretrain resources: gpus 5 is more than a node of profile 'p' holds (gpus_per_node: 4)"),
    ("partition: gpu\nmem_per_node: 480G\nstages:\n  pretrain: {mem: 600G}\n",
     "4: pretrain resources: mem 600G is more than a node of profile 'p' holds (mem_per_node: 480)"),
    # a CPU cluster's node holds no GPU: the default stage's 1 GPU does not fit (the built-in stage: no line)
    ("partition: gpu\ngpus_per_node: 0\n",
     " pretrain resources: gpus 1 is more than a node of profile 'p' holds (gpus_per_node: 0)"),
    # a loaded profile has no per-node amounts unless it gives them (not the built-in default's 8 GPUs, 64 CPUs)
    ("partition: gpu\nstages:\n  pretrain: {gpus: node}\n", "3: gpus: node needs the profile's gpus_per_node"),
    ("partition: gpu\nstages:\n  pretrain: {cpus: node}\n", "3: cpus: node needs the profile's cpus_per_node"),
    # sbatch refuses `--signal=USR2@<s>` above 65535 s: a job of 8 days or more (the launcher caps the delay at a
    # tenth of a job's time limit) would fail at submit, after the plan passed
    ("partition: gpu\nsignal_delay_s: 65536\n", "2: signal_delay_s: expected at most 65535 seconds (the most "
     "sbatch's --signal takes), got 65536"),
])
def test_bad_profile_values_name_the_line(tmp_path, text, message):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(StudyError, match=re.escape(f"{p}:{message}")):
        load_profile(p)


def test_other_sbatch_options_pass_through_additional(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nadditional: {mail-type: FAIL, wckey: lab, exclusive: true, gres: 'nvme:1'}\n")
    assert load_profile(p).additional == {"mail-type": "FAIL", "wckey": "lab", "exclusive": True, "gres": "nvme:1"}
    p.write_text("partition: gpu\nadditional: {gres: 'gpumem:20g'}\n")  # a GPU-memory gres, not a GPU request
    assert load_profile(p).additional == {"gres": "gpumem:20g"}


# every sbatch option study submit writes itself (or one standing for the same request), with the profile key that
# sets it; None: the launcher's own (study.launch.slurm.params and the golden sbatch script in tests/launch/golden)
WRITTEN_BY_SUBMIT = {
    "array": None, "dependency": None, "job-name": None, "output": None, "error": None, "open-mode": None,
    "signal": None, "requeue": None, "no-requeue": None, "kill-on-invalid-dep": None,
    "partition": "partition", "account": "account", "qos": "qos", "constraint": "constraint",
    "time": "stages.<stage>.time", "nodes": "stages.<stage>.nodes", "ntasks": "stages.<stage>.gpus",
    "ntasks-per-node": "stages.<stage>.gpus", "gpus-per-node": "stages.<stage>.gpus (gpu_type: its type)",
    "cpus-per-task": "stages.<stage>.cpus", "mem": "stages.<stage>.mem", "mem-per-cpu": "stages.<stage>.mem",
    "mem-per-gpu": "stages.<stage>.mem", "gpus": "stages.<stage>.gpus", "gpus-per-task": "stages.<stage>.gpus",
}


@pytest.mark.parametrize("option, instead", WRITTEN_BY_SUBMIT.items())
def test_every_option_study_submit_writes_is_refused_in_additional(tmp_path, option, instead):
    """Written after the launcher's own options, `additional` would win: --output/--error would move the logs
    `study status` reads, --open-mode=truncate lose a requeued job's log, --dependency drop the stage order, ..."""
    p = tmp_path / "p.yaml"
    p.write_text(f"partition: gpu\nadditional:\n  {option}: x\n")
    with pytest.raises(StudyError) as e:
        load_profile(p)
    assert str(e.value) == f"{p}:3: additional: --{option} is written by study submit itself" + (
        f"; set `{instead}` in the profile instead" if instead else
        " (requeue, stage dependencies, recovery and `study status` rely on its value)")


@pytest.mark.parametrize("key, message", [
    # sbatch reads an unambiguous prefix of a long option as that option (checked on the localhost cluster):
    # `#SBATCH --job=x` named the job `x`, which recovery looks arrays up by
    ("job", "--job (an abbreviation of --job-name) is written by study submit itself (requeue, stage dependencies, "
            "recovery and `study status` rely on its value)"),
    ("mem_per_c", "--mem-per-c (an abbreviation of --mem-per-cpu) is written by study submit itself; set "
                  "`stages.<stage>.mem` in the profile instead"),
    ("cpus-per-g", "sbatch refuses --cpus-per-g (an abbreviation of --cpus-per-gpu) beside the --cpus-per-task study "
                   "submit writes; set `stages.<stage>.cpus` in the profile instead"),
    ("mem-per", "--mem-per abbreviates --mem-per-cpu or --mem-per-gpu, options study submit writes itself or refuses: "
                "write options in full"),
    # in a script's header as on the command line: --wait blocked sbatch until the job ended, --test-only submitted
    # nothing, --parsable printed the bare job id submitit cannot read
    ("wait", "--wait cannot be used: it would block study submit until the job ends"),
    ("test-only", "--test-only cannot be used: sbatch would submit nothing"),
    ("pars", "--pars (an abbreviation of --parsable) cannot be used: submitit reads the job id from sbatch's usual "
             "output"),
    # a one-letter option is sbatch's after one dash; submitit writes `--M=x`, which sbatch does not take: it read
    # as a prefix of --mem ("--m abbreviates --mem or ..."), not as -M (--clusters), which study refuses
    ("M", "--clusters (-M) cannot be used: study reads its jobs' states, cancels them and has a stage wait on the one "
          "before with sacct, squeue, scancel and --dependency on the cluster of the host it runs on (a job id names a "
          "job of one cluster only): run study on a login node of that cluster"),
    ("p", "--partition (-p) is written by study submit itself; set `partition` in the profile instead"),
    ("w", "'w': sbatch takes a one-letter option after one dash, and study submit writes each key after two (`--w`, "
          "which sbatch does not take): write its long name, `nodelist`"),
])
def test_abbreviations_and_options_that_break_the_submission_are_refused(tmp_path, key, message):
    p = tmp_path / "p.yaml"
    p.write_text(f"partition: gpu\nadditional:\n  mail-type: FAIL\n  {key}: x\n")
    with pytest.raises(StudyError) as e:
        load_profile(p)
    assert str(e.value) == f"{p}:4: additional: {message}"


def test_full_options_that_begin_like_written_ones_pass(tmp_path):
    """Options that begin no option study submit writes or refuses pass whole (`mail-type` and `mail-user` share a
    beginning, but only with each other)."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nadditional: {exclusive: true, mail-type: FAIL, mail-user: a@b.c}\n")
    assert load_profile(p).additional == {"exclusive": True, "mail-type": "FAIL", "mail-user": "a@b.c"}
    p.write_text("partition: gpu\nadditional: {'-': x}\n")  # no name at all: not an abbreviation of everything
    with pytest.raises(StudyError, match="is not an sbatch option name"):
        load_profile(p)


def test_an_option_name_that_cannot_be_fixed_gets_no_suggestion(tmp_path):
    """`write `...`` is offered only where the fixed name is an option name: `mail type` is not."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nadditional: {mail type: FAIL}\n")
    with pytest.raises(StudyError) as e:
        load_profile(p)
    assert str(e.value) == (f"{p}:2: additional: 'mail type' is not an sbatch option name (lower-case letters, "
                            "digits, '-', '_')")


def test_a_grids_resources_beyond_the_profiles_node_name_the_grids_line(tmp_path, write_grid):
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\ngpus_per_node: 2\n")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages:\n  pretrain:\n    resources: {gpus: 4}\n")
    assert error_of(g, p).startswith(f"{g}:{line_of(g, 'gpus: 4')}: pretrain resources: gpus 4 is more than a node")


def test_a_time_beyond_the_profiles_max_time_is_refused_at_the_line_that_asks_it(tmp_path, write_grid):
    """A partition's MaxTime (48 h): a grid's 72 h passed the plan, then sbatch refused every array ("Requested time
    limit is invalid") or, where the partition does not enforce its limits, the jobs pended for ever."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nmax_time: 2-00:00:00\nstages:\n  pretrain: {time: 48h}\n")
    assert load_profile(p).max_time_min == 2880
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages:\n  pretrain:\n    resources: {time: 72h}\n")
    assert error_of(g, p).startswith(
        f"{g}:{line_of(g, 'time: 72h')}: pretrain resources: time 72h is more than profile 'p' allows (max_time: 48h, "
        "the partition's MaxTime)")
    p.write_text("partition: gpu\nmax_time: 48h\nstages:\n  evaluate: {time: 49h}\n")  # the profile's own stages
    with pytest.raises(StudyError, match=re.escape(f"{p}:4: evaluate resources: time 49h is more than profile")):
        load_profile(p)
    p.write_text("partition: gpu\nmax_time: forever\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}:2: max_time: expected a duration")):
        load_profile(p)


def test_a_max_time_below_the_built_in_stage_times_caps_them(tmp_path, write_grid):
    """A partition of 4 h and a profile that sets no stage time: the built-in 24 h (pretrain) and 12 h (evaluate),
    which the user never wrote, were refused ("time 24h is more than profile 'p' allows", at no line) whatever the
    grid asked. They are the partition's longest instead; a time the profile writes is still checked."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nmax_time: 4h\n")
    assert {s: v["time"] for s, v in load_profile(p).stages.items()} == {"pretrain": "4h", "evaluate": "4h"}
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    assert {j.resources.time_min for j in plan_grid(g, p).jobs} == {240}
    p.write_text("partition: gpu\nmax_time: 18h\nstages:\n  evaluate: {gpus: 1}\n")
    assert {s: v["time"] for s, v in load_profile(p).stages.items()} == {"pretrain": "18h", "evaluate": "12h"}
    p.write_text("partition: gpu\nmax_time: 4h\nstages:\n  pretrain: {time: 5h}\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}:4: pretrain resources: time 5h is more than profile")):
        load_profile(p)
    # a stage's own max_time caps its built-in time (a short partition for evaluations), or lifts the cap (null)
    p.write_text("partition: gpu\nmax_time: 2h\nstages:\n  evaluate: {partition: short, max_time: 30m}\n"
                 "  pretrain: {max_time: null}\n")
    assert {s: v["time"] for s, v in load_profile(p).stages.items()} == {"pretrain": "24h", "evaluate": "30m"}


def test_a_batch_that_does_not_split_over_a_jobs_gpus_is_refused_at_its_line(tmp_path, write_grid):
    """Slurm runs one process per GPU of a pretraining job: a batch of 8 over 6 GPUs passed the plan, and every
    pretraining job then stopped at its start (and Slurm cancelled every evaluation after it)."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\ngpus_per_node: 6\nstages:\n  pretrain: {gpus: node}\n")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    assert error_of(g, p, check=True) == (
        f"{g}:{line_of(g, 'batch_size: 8')}: pretraining batch_size 8 does not split over the 6 processes of a job "
        f"(6 GPU(s) x 1 node(s), one process per GPU): every pretraining job would stop at its start; make "
        f"batch_size a multiple of 6, or change the resources")
    p.write_text("partition: gpu\ngpus_per_node: 4\nstages:\n  pretrain: {gpus: node}\n")
    plan_grid(g, p).check(manifests=False)  # 8 over 4: fine
    p.write_text("partition: gpu\ngpus_per_node: 2\nstages:\n  pretrain: {gpus: node}\n")
    odd = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", name="odd.yaml",
                     pretrain={"batch_size": 9})
    assert "pretraining batch_size 9 does not split over the 2 processes" in error_of(odd, p, check=True)
    p.write_text("partition: cpu\ngpus_per_node: 0\nstages:\n  pretrain: {gpus: 0, nodes: 3}\n  evaluate: {gpus: 0}\n")
    assert "over the 3 processes of a job (3 nodes, one process each): " in error_of(write_grid(
        "axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", name="cpu.yaml"), p, check=True)


def test_an_evaluation_asking_for_several_gpus_or_nodes_is_refused(tmp_path, write_grid):
    """An evaluation runs as one process on one device: 8 GPUs would sit idle, and 2 nodes would run it twice."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\ngpus_per_node: 8\nstages:\n  evaluate: {gpus: node}\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}:4: evaluate resources: gpus node: an evaluation runs as one "
                                                   f"process on one device")):
        plan_grid(write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n"), p)
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages:\n  evaluate:\n    - protocol: linear\n"
                   "      resources: {nodes: 2}\n")
    assert error_of(g).startswith(f"{g}:{line_of(g, 'nodes: 2')}: evaluate resources: nodes 2: an evaluation runs")


def test_invalid_yaml_and_missing_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\naxes: [unclosed\n")
    assert re.match(re.escape(str(p)) + r":\d+: invalid YAML", error_of(p))
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file"


def test_safe_loader_refuses_python_tags(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    assert "invalid YAML" in error_of(p)


def test_a_typo_in_defaults_is_one_line_with_a_suggestion_not_one_per_job(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta], size: [10, 20]}
    stages: {pretrain: {}}
    """, pretrain={"temprature": 0.2})
    with pytest.raises(StudyError) as e:
        plan_grid(g).check(manifests=False)
    msg = str(e.value)
    assert msg.count("temprature") == 1 and "and 3 other job(s)" in msg and "did you mean 'temperature'" in msg
    one = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {pretrain: {}}\n", name="one.yaml",
                     pretrain={"temprature": 0.2})
    msg = error_of(one, check=True)  # the job alone: not "and 0 other job(s)"
    assert re.match(rf"{re.escape(str(one))}:\d+: job \w+ \(pretrain: method=simclr, dataset=alpha, seed=0\): "
                    r"pretrain: unknown key", msg), msg


def test_a_bad_value_of_a_methods_own_settings_names_a_job_of_that_method(write_grid):
    """`pretrain.moco` in defaults is read by every pretraining job's config (one error for all of them), but only
    MoCo's jobs use it: the job the error names is MoCo's, not the first SimCLR job."""
    g = write_grid("""
    axes: {method: [simclr, moco], dataset: [alpha, beta]}
    stages: {pretrain: {}}
    """, pretrain={"moco": {"queue_size": -5}})
    msg = error_of(g, check=True)
    assert re.search(r"job \w+ \(pretrain: method=moco, dataset=alpha, seed=0\) and 3 other job\(s\): "
                     r"pretrain\.moco\.queue_size: expected a positive integer, got -5", msg), msg


def test_an_error_in_a_nested_setting_written_block_style_names_the_line_of_that_setting(write_grid):
    """`finetune:` / `optim:` / `lr:` on lines of their own: the error names the line of `lr`, not of `finetune`
    (or `moco`), where a user reads it; a misspelt nested key its own line too."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain:
        method: moco
        moco:
          momentum: 0.99
          queue_size: -5
    axes: {method: [moco], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: finetune
          labeled_sizes: [10]
          params:
            finetune:
              batch_size: 4
              optim:
                momentum: 0.9
                lr: -0.1
    """, base=False)
    msg = error_of(g, check=True)
    assert f"{g}:{line_of(g, 'queue_size: -5')}: job " in msg, msg
    g.write_text(g.read_text().replace("queue_size: -5", "queue_size: 64"))
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:{line_of(g, 'lr: -0.1')}: job "), msg
    assert "finetune.optim.lr" in msg, msg
    g.write_text(g.read_text().replace("lr: -0.1", "lrr: 0.1"))
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:{line_of(g, 'lrr: 0.1')}: job ") and "'lrr'" in msg, msg


def test_a_nested_setting_of_defaults_evaluate_is_named_at_its_line_beside_an_entrys_own_section(write_grid):
    """`finetune.optim.lr` written in defaults.evaluate, the entry's params giving `finetune` without it (the two
    merged): the error names the line of that `lr`, not of the entry's `finetune:`, which does not hold it."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
      evaluate:
        finetune:
          optim:
            lr: -1
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: finetune
          labeled_sizes: [10]
          params:
            finetune:
              batch_size: 4
    """, base=False)
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:{line_of(g, 'lr: -1')}: job ") and "evaluate.finetune.optim.lr" in msg, msg
    g.write_text(g.read_text().replace("batch_size: 4", "batch_size: 4\n          optim: {lr: -2}"))
    msg = error_of(g, check=True)  # the entry's own value wins the merge: its line
    assert msg.startswith(f"{g}:{line_of(g, 'lr: -2')}: job ") and "got -2" in msg, msg


def test_a_methods_own_settings_no_job_runs_are_refused_at_their_line(write_grid):
    """`defaults.pretrain.moco` in a grid without MoCo enters no job id and no run: BYOL's target EMA written as
    `moco: {momentum: ...}` trained BYOL at its default tau_base without a word. A method an include rule adds
    counts; a `--where` slice without it is not refused (the whole grid's jobs decide)."""
    body = """
    axes: {method: [simclr, byol], dataset: [alpha]}
    stages: {pretrain: {}}
    """
    g = write_grid(body, pretrain={"moco": {"momentum": 0.99}})
    assert error_of(g, check=True) == (
        f"{g}:{line_of(g, 'moco')}: defaults.pretrain.moco: no job of the grid runs method moco (its methods: "
        "simclr, byol): its settings would change no job and no result; remove it, or add moco to the method axis")
    g = write_grid(body + "include: [{method: moco, dataset: alpha}]\n", pretrain={"moco": {"momentum": 0.99}})
    plan = plan_grid(g)
    plan.check(manifests=False)
    plan_of(plan, jobs_where(plan, parse_where(["method=simclr"]))).check(manifests=False)


def test_a_glc20_manifest_is_suggested_on_the_us_part(capsys, tmp_path, monkeypatch):
    """`train`/`test` would merge France's and the US's land-cover codes into one class list; the command that
    `study plan` prints builds the US part (the reader's `suggested_splits`)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    code, _, err = run_plan_cli(["grids/data_domain.yaml"], capsys)
    assert code == 2
    assert 'study manifest build --dataset glc20 --root "$GLC20_ROOT" --split us_train --name glc20_train' in err
    assert ('study manifest build --dataset glc20 --root "$GLC20_ROOT" --split us_test --name glc20_test '
            '--classes-from glc20_train') in err
    assert "--dataset imagenet --root \"$IMAGENET_ROOT\" --split train --name imagenet_train" in err
    # every grid's command for a paper dataset's train manifest lists the paper's sizes: one manifest serves all the
    # grids (sizes are hashed), not the sizes of whichever grid was planned first
    code, _, err_granularity = run_plan_cli(["grids/granularity.yaml"], capsys)
    sizes = "--sizes 50k,125k,250k,500k,1M --labeled-sizes 10k,50k,100k,250k"
    assert f"--split train --name inat21_train {sizes}" in err and f"--name inat21_train {sizes}" in err_granularity
    assert "`study plan --no-check` shows the plan without the manifests" in err_granularity


def test_an_exclude_rule_or_where_value_that_matches_nothing_is_an_error_not_a_silent_no_op(write_grid):
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha], size: [50k, 100k]}
    exclude:
      - {method: supervised, size: 5k}
    stages: {}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'size: 5k')}: exclude {{method: supervised, size: 5k}}: size 5k "
                           "is not a value of axis 'size' (its values: 50k, 100k)")  # as the grid spells them
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha], size: [50k, 100k]}
    exclude:
      - {method: supervised, size: [50k, 5k]}
    stages: {}
    """)  # the typo sits beside a value that matches: it removed nothing, without a word
    assert error_of(g).startswith(f"{g}:{line_of(g, 'size: [50k, 5k]')}: exclude {{method: supervised, size: "
                                  "[50k, 5k]}: size 5k is not a value of axis 'size'")
    g = write_grid("""
    axes: {method: [simclr, suprevised], dataset: [alpha], size: [50k, 100k]}
    exclude:
      - {method: supervised, size: 50k}
    stages: {}
    """)  # the typo is on the axis: the rule's error shows it
    assert "method 'supervised' is not a value of axis 'method' (its values: simclr, suprevised)" in error_of(g)
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [50k, all]}
    exclude:
      - {size: 5k}
    stages: {}
    """)  # a whole dataset's size is `all`, not None
    assert error_of(g).endswith("exclude {size: 5k}: size 5k is not a value of axis 'size' (its values: 50k, all)")
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha], size: [50k, 100k], seed: [0, 1]}
    zip: [[method, seed]]
    exclude:
      - {method: supervised, seed: 0}
    stages: {}
    """)  # each value on its axis, no combination of them
    assert error_of(g).endswith("exclude {method: supervised, seed: 0} matches no combination of the axes: it removes "
                                "nothing (check its values against the axes)")
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          where: {method: [simclr, supervized]}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'where')}: stages.evaluate[0] (protocol linear): where method: "
                           "'supervized' matches no pretraining job (their method values: 'simclr', 'supervised')")


def test_a_config_error_names_the_line_of_the_value_behind_it(write_grid):
    g = write_grid("""
    axes:
      method: [simclr]
      dataset: [alpha]
      backbone: [resnet18, resnet5O]
    stages:
      evaluate:
        - protocol: knn
          params:
            knn: {k: 5}
            kk: 3
        - protocol: finetune
          labeled_sizes: [10]
          params:
            finetune: {epocs: 3}
    """)
    with pytest.raises(StudyError) as e:
        plan_grid(g).check(manifests=False)
    lines = str(e.value).splitlines()[1:]
    assert any(s.startswith(f"{g}:{line_of(g, 'resnet5O')}: ") and "unknown backbone 'resnet5O'" in s for s in lines)
    assert any(s.startswith(f"{g}:{line_of(g, 'kk: 3')}: ") and "unknown key(s) 'kk'" in s for s in lines)
    assert any(s.startswith(f"{g}:{line_of(g, 'finetune: {epocs')}: ") and "'epocs'" in s for s in lines)


@pytest.mark.parametrize("typo_in", ["pretrain", "evaluate"])
def test_an_unknown_key_in_defaults_names_its_own_line(write_grid, typo_in):
    sections = {"pretrain": "backbone: resnet18\n        batch_size: 8", "evaluate": "batch_size: 64"}
    sections[typo_in] += "\n        widht: 4"
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
    defaults:
      pretrain:
        {sections["pretrain"]}
      evaluate:
        {sections["evaluate"]}
    axes: {{method: [simclr], dataset: [alpha]}}
    stages:
      evaluate:
        - protocol: linear
    """, base=False)
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:{line_of(g, 'widht')}: ") and "unknown key(s) 'widht'" in msg, msg


@pytest.mark.parametrize("body, needle, message", [
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: finetune, labeled_sizes: [10], params: {finetune: 80}}
    """, "finetune: 80", "evaluate.finetune: expected a mapping, got 80"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: [[alpha]]}
    """, "eval_datasets", "unknown dataset ['alpha']"),
    ("""
    axes: {method: [simclr, byol], dataset: [alpha, beta]}
    zip: [[method, [dataset]]]
    stages: {}
    """, "zip:", "zip: ['dataset'] is not an axis of this grid"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          params:
            linear: {on: 1}
    """, "linear: {on", "key True is not text (YAML reads `on` as bool): quote it"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      pretrain:
        resources: {1: 2}
    """, "{1: 2}", "key 1 is not text (YAML reads `1` as int)"),
])
def test_odd_shapes_are_errors_at_their_line_not_tracebacks(write_grid, body, needle, message):
    g = write_grid(body)
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:") and message in msg and f":{line_of(g, needle)}" in msg


def test_a_grid_that_is_not_utf8_text_is_named(tmp_path):
    g = tmp_path / "latin1.yaml"
    g.write_bytes(b"name: t\n# caf\xe9\n")
    assert error_of(g) == f"{g}: not UTF-8 text (byte 13); a grid or profile is a YAML file"


def test_a_variant_that_is_not_a_word(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          variant: "per level"
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'variant')}: stages.evaluate[0].variant: expected a word (letters, "
                           "digits, '_', '-', '.'), got 'per level'")


def test_a_reader_name_typo_is_refused_at_its_line(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha:
        reader: imagefoldr
        train: alpha_train
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """, base=False)
    assert error_of(g).startswith(f"{g}:{line_of(g, 'imagefoldr')}: datasets.alpha.reader: unknown dataset "
                                  "'imagefoldr' (did you mean 'imagefolder'?)")


def test_a_grid_name_with_a_comma_is_refused(write_grid):
    """Slurm's `--name` filters read a comma as a list: a job named after such a grid could never be found again
    by name (an interrupted submit's array would then be queued twice)."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    g.write_text(g.read_text().replace("name: t\n", "name: a,b\n"))
    assert error_of(g) == (f"{g}:1: name: expected a word of at most 100 letters, digits, '_', '-', '.' (a letter or "
                           "digit first), got 'a,b'")


@pytest.mark.parametrize("name", ["'a\\n#SBATCH --x'", "'%j'", "'$(id)'", "..", "'a;b'", "café", "' x'", "a" * 101])
def test_a_grid_name_that_is_not_a_word_is_refused(write_grid, name):
    """The name is a file name (ledgers/<name>.jsonl, reports/<name>: `..` was the current folder) and goes unquoted
    into each Slurm array's job name and `--output` log pattern (`%j` there is Slurm's; a line break a header line)."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    g.write_text(g.read_text().replace("name: t\n", f"name: {name}\n"))
    assert error_of(g).startswith(f"{g}:1: name: expected a word of at most 100 letters, digits, '_', '-', '.' (a "
                                  "letter or digit first), got ")


def test_a_grid_name_yaml_reads_as_a_boolean_says_to_quote_it(write_grid):
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    g.write_text(g.read_text().replace("name: t\n", "name: NO\n"))
    assert error_of(g).endswith("got False (YAML reads unquoted yes/no/on/off as true/false: quote the name)")


@pytest.mark.parametrize("name", ["'x;touch pwn'", "../../etc/passwd", "'a b'", "'x\\n'", "a" * 201])
def test_a_manifest_name_that_is_no_file_name_is_refused_at_its_line(write_grid, name):
    """It was looked up as a file and printed, unquoted, in the `study manifest build --name ...` command the check
    says to run: pasted into a shell, `x;touch pwn` ran `touch`."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    g.write_text(g.read_text().replace("train: alpha_train", f"train: {name}"))
    assert error_of(g).startswith(f"{g}:3: datasets.alpha.train: bad manifest name ")
    assert error_of(g).endswith("a letter or digit first, at most 200)")  # the rule `study manifest build` applies


def test_params_an_entrys_protocol_never_reads_are_refused_at_their_lines(write_grid):
    """They changed the jobs' ids and no number; `defaults.evaluate` may still hold them (it serves every protocol)."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
      evaluate: {epochs: 3, per_level: false}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          labeled_sizes: [10]
          params:
            epochs: 90
            finetune: {epochs: 5}
            per_level: true
            knn: {k: 5}
            batch_size: 64
        - protocol: finetune
          labeled_sizes: [10]
          params: {finetune: {batch_size: 4}, feature_layer: layer3}
        - protocol: granularity
          params: {knn: {k: 5}, also_knn: true}
    """, base=False)
    msg = error_of(g, check=True)
    for key, protocol, why in [("epochs: 90", "linear", "never reads it"),
                               ("finetune: {epochs: 5}\n", "linear", "never reads it"),
                               ("per_level: true", "linear", "never reads it"),
                               ("knn: {k: 5}\n", "linear", "reads it only with also_knn: true"),
                               ("feature_layer", "finetune", "never reads it")]:
        name = key.split(":")[0].strip()
        index = 1 if protocol == "finetune" else 0
        line = next(i for i, t in enumerate(g.read_text().splitlines(True), 1) if key in t)
        assert (f"{g}:{line}: stages.evaluate[{index}].params.{name}: protocol {protocol} {why}; remove it "
                f"(it would change the job ids and no result)") in msg, (key, msg)
    assert msg.count("params.") == 5  # not batch_size, nor granularity's knn with also_knn, nor the defaults
    g.write_text(g.read_text().replace("        epochs: 90\n        finetune: {epochs: 5}\n"
                                       "        per_level: true\n        knn: {k: 5}\n", "")
                 .replace(", feature_layer: layer3", ""))
    plan_grid(g).check(manifests=False)  # what is left plans


def test_probe_settings_the_optimizer_never_reads_are_refused_at_their_entry(write_grid):
    """L-BFGS reads no epochs, lr or batch size, adam/sgd no iteration caps or tolerance (the optimizer: the entry's,
    else defaults.evaluate's, else L-BFGS): such a key would change the jobs' ids and no number."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
      evaluate: {linear: {optimizer: sgd, max_iter: 5}}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          params: {linear: {epochs: 5, lr: 0.5}}
        - protocol: linear
          variant: lbfgs
          params: {linear: {optimizer: lbfgs, max_iter: 10, epochs: 5}}
        - protocol: granularity
          params: {linear: {tolerance: 0.001}}
        - protocol: knn
          params: {linear: {epochs: 5}}
    """, base=False)
    msg = error_of(g, check=True)
    tail = "; remove it (it would change the job ids and no result)"
    for index, needle, key, why in [(1, "optimizer: lbfgs", "linear.epochs", "probe optimizer lbfgs never reads it"),
                                    (2, "tolerance: 0.001", "linear.tolerance", "probe optimizer sgd never reads it"),
                                    (3, "linear: {epochs: 5}}", "linear", "protocol knn never reads it")]:
        assert f"{g}:{line_of(g, needle)}: stages.evaluate[{index}].params.{key}: {why}{tail}" in msg, (key, msg)
    assert msg.count("params.") == 3  # not the first entry's (sgd, from the defaults), nor the defaults' own


def test_finetune_settings_the_run_never_reads_are_refused_at_their_entry(write_grid):
    """A fine-tune trains its encoder's architecture, a scratch baseline the evaluation's (the grid fills it from the
    pretraining jobs), both with method supervised (no head, temperature or method section), and an evaluation's
    `epochs` replace `finetune.steps`: `finetune.backbone: resnet50` on a scratch entry trained the pretraining jobs'
    resnet18 under a new job id without a word."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, width: 8, epochs: 1, batch_size: 8}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: finetune
          labeled_sizes: [10]
          params: {finetune: {width: 16, temperature: 0.5, moco: {momentum: 0.9}, steps: 5, batch_size: 4}}
        - protocol: scratch
          labeled_sizes: [10]
          params:
            epochs: 3
            finetune: {backbone: resnet50, head: [32], steps: 5, batch_size: 4}
    """, base=False)
    msg = error_of(g, check=True)
    tail = "; remove it (it would change the job ids and no result)"
    supervised = "the run trains method supervised (a linear classifier on the backbone), which never reads it"
    for index, needle, key, why in [
            (0, "width: 16", "width", "a fine-tune trains its encoder's own width, never this one"),
            (0, "width: 16", "temperature", supervised), (0, "width: 16", "moco", supervised),
            (1, "backbone: resnet50", "backbone", "a scratch baseline trains the evaluation's backbone (params' or "
                                                  "defaults.evaluate's, else its pretraining jobs')"),
            (1, "backbone: resnet50", "head", supervised),
            (1, "backbone: resnet50", "steps", "the evaluation's epochs (params.epochs or defaults.evaluate.epochs) "
                                               "replace it")]:
        assert (f"{g}:{line_of(g, needle)}: stages.evaluate[{index}].params.finetune.{key}: {why}{tail}"
                in msg), (key, msg)
    assert msg.count("params.finetune.") == 6  # not the fine-tune's steps (no epochs), nor either batch_size
    g.write_text(g.read_text().replace("width: 16, temperature: 0.5, moco: {momentum: 0.9}, ", "")
                 .replace("backbone: resnet50, head: [32], steps: 5, ", ""))
    plan_grid(g).check(manifests=False)  # what is left plans


def test_finetune_epochs_beside_a_finetune_step_budget_are_refused_as_unread(write_grid):
    """`finetune: {steps: 20, epochs: 3}`: the step budget replaces the epochs (PretrainConfig.steps), so the epochs
    changed the job ids and no run; epochs alone are read."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: finetune
          labeled_sizes: [10]
          params: {finetune: {epochs: 3, batch_size: 4}}
    """)
    plan_grid(g).check(manifests=False)
    g.write_text(g.read_text().replace("epochs: 3, ", "epochs: 3, steps: 20, "))
    assert (f"{g}:{line_of(g, 'epochs: 3')}: stages.evaluate[0].params.finetune.epochs: its finetune.steps, a step "
            "budget, replaces it; remove it (it would change the job ids and no result)") in error_of(g, check=True)


@pytest.mark.parametrize("key,value", [("split_labeled_sizes", "true"), ("eval_datasets", "same"),
                                       ("variant", "b")])
def test_an_entrys_own_key_under_params_or_defaults_evaluate_is_pointed_at_the_entry(write_grid, key, value):
    """`params: {split_labeled_sizes: true}` was an unknown evaluation setting "(did you mean 'labeled_sizes'?)",
    which `params` refuses too: it is a key of the entry, beside `protocol:`."""
    g = write_grid(f"""
    axes: {{method: [simclr], dataset: [alpha]}}
    stages:
      evaluate:
        - protocol: finetune
          labeled_sizes: [10, 20]
          params:
            {key}: {value}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, f'{key}: {value}')}: stages.evaluate[0].params.{key}: a key of the "
                           f"entry itself, not an evaluation setting: give it beside `protocol:` "
                           f"(stages.evaluate[0].{key})")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {evaluate: [{protocol: finetune}]}\n")
    g.write_text(g.read_text().replace("defaults:\n", f"defaults:\n  evaluate:\n    {key}: {value}\n"))
    assert error_of(g) == (f"{g}:{line_of(g, f'{key}: {value}')}: defaults.evaluate.{key}: a key of each "
                           "stages.evaluate entry, not an evaluation setting: give it on the entries it is for")


def test_a_training_protocol_from_an_encoder_refuses_an_architecture_as_finetune_does(write_grid, monkeypatch):
    """`finetune.width` is unread by each training protocol that starts from an encoder (its row's `encoders`), not
    by `finetune` alone: on a new such row it was let through, a new job id that trains the encoder's own width."""
    from protocol_rows import TUNED, add_protocol

    from study.evaluate.recipes import FINETUNE

    add_protocol(monkeypatch, TUNED, FINETUNE)
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: tuned, labeled_sizes: [10], params: {finetune: {width: 16, steps: 5, batch_size: 4}}}
    """, pretrain={"width": 8})
    assert (f"{g}:{line_of(g, 'width: 16')}: stages.evaluate[0].params.finetune.width: a fine-tune trains its "
            "encoder's own width, never this one") in error_of(g, check=True)


def test_a_scratch_entrys_finetune_width_is_read_where_nothing_else_gives_one(write_grid):
    """Without a width in the pretraining or evaluation sections, the baseline trains `finetune.width`."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: scratch, labeled_sizes: [10], params: {finetune: {width: 16, steps: 5, batch_size: 4}}}
    """, base=False)
    assert not any("params.finetune" in w for w in plan_grid(g).check(manifests=False))  # warns: no encoder scored
    g.write_text(g.read_text().replace("backbone: resnet18, ", "backbone: resnet18, width: 8, "))
    assert "params.finetune.width: a scratch baseline trains" in error_of(g, check=True)


def test_a_scratch_entrys_finetune_backbone_is_read_where_its_params_give_a_null_backbone(write_grid):
    """`params.backbone: null` leaves the baseline's architecture to `finetune` (study.evaluate.finetune.pretrain_dict:
    the section's own where it names one): `finetune.backbone` is then read, not refused as unread."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: scratch
          labeled_sizes: [10]
          params: {backbone: null, finetune: {backbone: resnet34, steps: 5, batch_size: 4}}
    """, base=False)
    plan = plan_grid(g)
    assert not any("params.finetune" in w for w in plan.check(manifests=False))
    (job,) = [j for j in plan.jobs if j.stage == "evaluate"]
    from study.evaluate import EvalConfig
    from study.evaluate.finetune import pretrain_dict
    assert pretrain_dict(EvalConfig.from_dict(job.config["evaluate"]), 10, 10, None)["backbone"] == "resnet34"
    g.write_text(g.read_text().replace("backbone: null, ", ""))  # the pretraining jobs' resnet18 then
    assert "params.finetune.backbone: a scratch baseline trains" in error_of(g, check=True)


def test_a_labeled_size_listed_twice_is_refused_at_its_item(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          labeled_sizes:
            - 10k
            - 10000
            - 1k
    """)
    assert error_of(g) == (f"{g}:{line_of(g, '- 10000')}: stages.evaluate[0].labeled_sizes: value 10000 listed "
                           "twice ('10k' before it)")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {evaluate: [{protocol: linear}]}\n")
    g.write_text(g.read_text().replace("defaults:\n", "defaults:\n  evaluate:\n    labeled_sizes: [all, 5,\n"
                                                     "                    all]\n"))
    assert error_of(g) == (f"{g}:{line_of(g, '    all]')}: defaults.evaluate.labeled_sizes: value 'all' listed twice")


def test_labeled_sizes_all_is_the_whole_train_manifest(write_grid, capsys):
    """EvalConfig's "all" (its default): alone, one job with the id of an entry that gives no sizes; in a list, beside
    counts, split into its own job by finetune; the table shows it, the build hint asks no labeled size for it."""
    body = """
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear%s}
        - {protocol: finetune, labeled_sizes: [1k, all]}
        - {protocol: knn, labeled_sizes: [2k, all]}
    """
    plan = plan_grid(write_grid(body % ", labeled_sizes: all", name="all.yaml"))
    plan.check(manifests=False)  # EvalConfig takes every section
    sizes = [(j.axes["protocol"], j.config["evaluate"].get("labeled_sizes")) for j in plan.by_stage("evaluate")]
    assert sizes == [("linear", None), ("finetune", [1000]), ("finetune", None), ("knn", [2000, "all"])]
    implicit = plan_grid(write_grid(body % "", name="implicit.yaml"))
    assert [j.id for j in implicit.jobs] == [j.id for j in plan.jobs]
    assert plan.manifests()["alpha_train"].endswith("--labeled-sizes 1k,2k")
    code, out, err = run_plan_cli([str(write_grid(body % ", labeled_sizes: all", name="all.yaml")), "--no-check"],
                                  capsys)
    assert code == 0 and err == ""
    assert any(line.split()[-2:] == ["2k,all", plan.jobs[0].id] for line in out.splitlines())
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {evaluate: [{protocol: linear, "
                   "labeled_sizes: [10, every]}]}\n")
    assert error_of(g).startswith(f"{g}:{line_of(g, 'every')}: stages.evaluate[0].labeled_sizes: expected a count")


def test_axis_values_under_defaults_pretrain_are_checked_at_their_own_line(write_grid):
    """At the key's line, not at `defaults:`; `dataset` there was dropped without a word: refused."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", pretrain={"corruption": "jpg"})
    assert error_of(g).startswith(f"{g}:{line_of(g, 'corruption: jpg')}: defaults.pretrain.corruption: unknown "
                                  "corruption 'jpg' (did you mean 'jpeg'?)")
    g = write_grid("axes: {dataset: [alpha]}\nstages: {}\n", pretrain={"method": "simclrr"})
    assert error_of(g, check=True).startswith(f"{g}:{line_of(g, 'method: simclrr')}: unknown method 'simclrr'")
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", pretrain={"dataset": "nosuch"})
    assert error_of(g) == (f"{g}:{line_of(g, 'dataset: nosuch')}: defaults.pretrain.dataset: the dataset is an axis: "
                           "give it as axes.dataset (keys of 'datasets'), not as a default")


def test_an_axis_value_under_a_block_defaults_pretrain_is_named_at_its_own_line(write_grid):
    """At the key's line, not at the first line of the block."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain:
        backbone: resnet18
        seed: -1
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """, base=False)
    assert error_of(g) == (f"{g}:{line_of(g, 'seed: -1')}: defaults.pretrain.seed: expected an integer seed in "
                           "[0, 2**32) (numpy's seeds), got -1")


def test_a_default_the_axes_never_take_is_refused_at_its_line(write_grid):
    """`defaults.pretrain.method: byol` beside `axes.method: [simclr]` trained no BYOL job without a word (the axes
    give every job's value); a default among the axis's values is harmless and passes."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [all, 100]}\nstages: {}\n",
                   pretrain={"method": "byol"})
    assert error_of(g) == (f"{g}:{line_of(g, 'method: byol')}: defaults.pretrain.method: 'byol' is no job's: the "
                           "method axis gives every job's (simclr); remove it, or add it to the axis")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [all, 100]}\nstages: {}\n",
                   pretrain={"size": "1k"})
    assert error_of(g).endswith(": defaults.pretrain.size: '1k' is no job's: the size axis gives every job's (all, "
                                "100); remove it, or add it to the axis")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], backbone: [resnet50, resnet18]}\nseeds: [1, 2]\n"
                   "stages: {}\n", pretrain={"backbone": "resnet50", "size": "1k"})
    assert len(plan_grid(g).jobs) == 4
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nseeds: [1, 2]\nstages: {}\n", pretrain={"seed": 0})
    assert "defaults.pretrain.seed: 0 is no job's: the seed axis gives every job's (1, 2)" in error_of(g)


def test_defaults_evaluate_is_checked_even_without_an_evaluation_entry(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
      evaluate:
        batch_size: 64
        labeled_sises: [10]
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """, base=False)
    msg = error_of(g, check=True)
    assert msg.startswith(f"{g}:{line_of(g, 'labeled_sises')}: defaults.evaluate: unknown key(s) 'labeled_sises' "
                          "(did you mean 'labeled_sizes'?)"), msg
    assert msg.endswith("(no evaluation entry uses defaults.evaluate yet)")
    g.write_text(g.read_text().replace("labeled_sises", "labeled_sizes"))
    plan_grid(g).check(manifests=False)


def test_invalid_yaml_names_the_line_at_fault_not_the_start_of_its_block(tmp_path):
    """A list item indented less than its siblings (line 7): the error names line 7, not line 5 where the
    enclosing block began, nor the line before."""
    from study.grids.yamlio import load_yaml

    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ndatasets:\n  alpha: {train: a}\nstages:\n  evaluate:\n    - protocol: linear\n"
                 "  - protocol: knn\n")
    with pytest.raises(StudyError) as e:
        load_yaml(p)
    assert str(e.value).startswith(f"{p}:7: invalid YAML: ")


def test_invalid_yaml_of_a_tab_says_so(tmp_path):
    """The parser's own words for a tab-indented line ("found character that cannot start any token") do not
    name the tab: the error does."""
    p = tmp_path / "tab.yaml"
    p.write_text("name: x\naxes:\n\tmethod: [simclr]\n")
    msg = error_of(p)  # libyaml's words, or PyYAML's ("found character '\\t' that ...")
    assert msg.startswith(f"{p}:3: invalid YAML: found character ") and "cannot start any token" in msg
    assert msg.endswith(" (a tab indents this line: YAML indents with spaces)")
    p.write_text("name: x\naxes: a: b\t# c\n")  # a tab after the text indents nothing: no such hint
    msg = error_of(p)
    assert msg.startswith(f"{p}:2: invalid YAML: ") and "a tab indents" not in msg


def test_invalid_yaml_names_the_undefined_alias_and_where_an_unclosed_bracket_began(tmp_path):
    """libyaml's "found undefined alias" names no alias, and an unclosed `{` is found at the next key, lines
    later: the error names the alias (with the anchors above it) and the line the bracket or quote opened."""
    p = tmp_path / "bad.yaml"
    p.write_text("x-probe: &probe {protocol: linear}\nname: x\nstages:\n  evaluate: [*prob]\n")
    assert error_of(p) == (f"{p}:4: invalid YAML: found undefined alias *prob (did you mean 'probe'?) (`*name` "
                           "repeats a value marked `&name` above; the anchors above it: probe)")
    p.write_text("name: x\ndefaults:\n  evaluate: {image_size: 28, width: 4\n\naxes: {method: [simclr]}\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:5: invalid YAML: ") and msg.endswith(" (while parsing a flow mapping begun at line 3)")
    p.write_text('name: "x\naxes: {}\n')
    assert error_of(p).endswith(" (while scanning a quoted scalar begun at line 1)")
    p.write_text("name: x\naxes:\n  method: [simclr]\n dataset: [a]\n")  # a block's start says nothing more
    assert "begun at" not in error_of(p)


@pytest.mark.parametrize("body, needle, message", [
    ("""
    axes:
      method: [simclr]
      dataset: [alpha]
      size: [10k, 10000]
    stages: {}
    """, "10000", "axis 'size': value 10000 listed twice (the same as '10k': both are 10000)"),
    ("""
    axes:
      method: [simclr]
      dataset: [alpha]
      corruption: ["jpeg:quality=10", jpeg]
    stages: {}
    """, "corruption:", "axis 'corruption': value 'jpeg' listed twice (the same as 'jpeg:quality=10': both are "
                        "'jpeg:quality=10')"),
    ("""
    axes: {method: [simclr], dataset: [alpha], seed: [0]}
    seeds: [0, 1]
    stages: {}
    """, "seeds:", "seeds and axes.seed both given: keep one"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: [alpha, extra]}
    """, "eval_datasets", "dataset 'extra' cannot be an evaluation dataset: it needs both a 'train' (labeled "
                          "subsets) and a 'test' manifest"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          params: {batch_size: 32, labeled_sizes: [10]}
    """, "params:", "stages.evaluate[0].params.labeled_sizes: set by the planner (or the entry's own "
                    "'labeled_sizes'); remove it"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          levels: [genus]
    """, "levels:", "stages.evaluate[0].levels: only for protocol granularity"),
    ("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages:
      evaluate:
        - protocol: linear
          pairs: [[{dataset: alpha}, {dataset: beta}]]
    """, "pairs:", "stages.evaluate[0].pairs: only for a protocol of two encoders (concat)"),
    ("""
    axes: {method: [simclr, byol], dataset: [alpha, beta], size: [10, 20]}
    zip:
      - [method, size]
      - [dataset, size]
    stages: {}
    """, "[dataset, size]", "zip: axis 'size' is in two groups"),
    ("""
    axes: {method: [simclr], dataset: [alpha, beta], size: [10, 20]}
    zip: [[dataset, size]]
    include:
      - {method: byol, dataset: beta}
    stages: {}
    """, "method: byol", "include names 'dataset' but not 'size', which move(s) with it (zip)"),
    ("""
    axes: {method: [simclr], dataset: [alpha, extra]}
    stages: {}
    """, "extra]", "dataset 'extra' has no train manifest: it cannot be pretrained on"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    seeds: [4294967295, 4294967296]
    stages: {}
    """, "seeds:", "seeds[1]: expected an integer seed in [0, 2**32) (numpy's seeds), got 4294967296"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          labeled_sizes: [10, 0]
    """, "labeled_sizes:", "stages.evaluate[0].labeled_sizes: expected a count >= 1, got 0 (or all)"),
    ("""
    axes: {method: [simclr, byol], dataset: [alpha, beta]}
    zip: [[method]]
    stages: {}
    """, "zip:", "zip: a group needs two or more axes"),
    ("""
    axes: {method: [simclr, byol], dataset: [alpha]}
    exclude:
      - {method: byol, dataset: []}
    stages: {}
    """, "method: byol", "exclude[0].dataset: an empty list matches nothing"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: finetune, labeled_sizes: [10, 20], split_labeled_sizes: 1}
    """, "split_labeled_sizes", "stages.evaluate[0].split_labeled_sizes: expected true or false"),
    ("""
    axes: {method: [simclr], dataset: [alpha], size: 0}
    stages: {}
    """, "size: 0", "axes.size: expected a count >= 1, got 0"),
    ("""
    axes: {method: [simclr], dataset: [alpha], size: [10, 20]}
    exclude:
      - {method: simclr, size: 10}
      - {method: simclr, size: [20, ten]}
    stages: {}
    """, "[20, ten]", "exclude[1].size[1]: expected a count such as 50000, 50k or 1M, got 'ten'"),
    ("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages:
      evaluate:
        - protocol: concat
          pairs: [[{dataset: alpha}, {seed: -1}]]
    """, "pairs:", "stages.evaluate[0].pairs[0][1].seed: expected an integer seed in [0, 2**32) (numpy's seeds), "
                   "got -1"),
    ("""
    axes:
      method: [simclr]
      dataset: [alpha]
      size:
        - 10k
        - 10000
    stages: {}
    """, "- 10000", "axis 'size': value 10000 listed twice (the same as '10k': both are 10000)"),
    ("""
    axes: {method: [simclr, ''], dataset: [alpha]}
    stages: {}
    """, "method: [simclr, ''", "axes.method[1]: expected a name, got ''"),
    ("""
    description: [a, b]
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """, "description:", "description: expected a string"),
    ("""
    axes: {method: [simclr]}
    stages: {}
    """, "axes:", "no dataset: give axes.dataset (keys of 'datasets')"),
    ("""
    axes: {method: [simclr, byol], dataset: [alpha]}
    exclude:
      - {method: byol}
      - {}
    stages: {}
    """, "- {}", "exclude: an empty rule"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: granularity
          levels: []
    """, "levels: []", "stages.evaluate[0].levels: expected 'all' or a list of taxonomy levels"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: granularity
          levels:
            - genus
            - species
            - genus  # again
    """, "# again", "stages.evaluate[0].levels: level 'genus' listed twice"),
    ("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages:
      evaluate:
        - protocol: concat
          pairs:
            - [{dataset: alpha}, {dataset: beta}, {dataset: alpha}]
    """, "{dataset: beta}, {dataset: alpha}", "stages.evaluate[0].pairs[0]: expected two matchers, e.g. "
                                           "[{dataset: imagenet}, {dataset: inat21}]"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - eval_datasets: same
          protocol: lineer
    """, "lineer", f"unknown protocol 'lineer' (did you mean 'linear'?) (known: {', '.join(PROTOCOLS)})"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          eval_datasets:
            - alpha
            - gamma
    """, "- gamma", "unknown dataset 'gamma' (known: extra, alpha, beta)"),
    ("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - where: {method: simclr}
          protocol: concat
          pairs: []
    """, "pairs: []", "stages.evaluate[0]: protocol concat needs 'pairs': a list of [encoder matcher, encoder "
                      "matcher]"),
], ids=["axis-value-twice", "corruption-spelled-twice", "seeds-and-axes-seed", "eval-dataset-without-train",
        "planner-key-in-params",
        "levels-not-granularity", "pairs-not-concat", "axis-in-two-zip-groups", "include-splits-a-zip-group",
        "pretrain-dataset-without-train", "seed-beyond-numpy", "labeled-size-zero", "zip-group-of-one",
        "empty-list-in-a-rule", "split-not-a-bool", "one-value-axis", "rule-value-in-a-list", "concat-pair-value",
        "axis-value-twice-block", "empty-name", "description-not-text", "no-dataset-axis", "empty-rule",
        "levels-empty", "level-twice", "pair-of-three", "protocol-not-first", "eval-dataset-block", "pairs-empty"])
def test_a_rule_of_the_schema_broken_is_an_error_at_its_line(write_grid, body, needle, message):
    """Each would otherwise be dropped or overridden without a word (a value twice, seeds given twice, a setting the
    planner sets or the protocol never reads), make jobs without a train manifest, or end in a traceback."""
    g = write_grid(body)
    g.write_text(g.read_text().replace("datasets:\n", "datasets:\n  extra: {test: extra_test}\n", 1))
    assert error_of(g) == f"{g}:{line_of(g, needle)}: {message}"


KEY_RULE = (" (a word of letters, digits and _ . -, a letter or digit first: an axis value, as `--where dataset=` "
            "gives it; pooled sets join keys with '+')")


@pytest.mark.parametrize("spec, needle, message", [
    ("gamma: {train: gamma_train, test: gamma_val, classes: 0}", "gamma:",
     "datasets.gamma.classes: expected a count >= 1, got 0"),
    ("mix: {train: mix_train, pool: {alpha: 10}}", "mix:",
     "datasets.mix.pool: expected a mapping of two or more dataset keys -> images taken, e.g. "
     "{imagenet: 250k, inat21: 250k}"),
    ("mix: {train: mix_train, pool: {alpha: 10, extra: 10}}", "mix:",
     "datasets.mix.pool: dataset 'extra' has no train manifest to pool"),  # not "unknown (did you mean 'extra'?)"
    ("mix: {train: mix_train, pool: {alpha: 10, alpah: 10}}", "mix:",
     "datasets.mix.pool: unknown dataset 'alpah' (did you mean 'alpha'?) (a key of 'datasets' with a train manifest)"),
    # `study manifest pool` refuses a pool among its sources: the plan printed a command that could never run
    ("mix: {train: mix_train, pool: {alpha: 10, mix: 10}}", "mix:",
     "datasets.mix.pool: 'mix' is itself a pool; pool its sources instead"),
    # a concatenation's axes join two values with '|' (`alpha|beta`): a key holding one would read as a pair
    ("'a|b': {train: ab_train}", "a|b", "datasets: bad key 'a|b'" + KEY_RULE),
    ("'my data': {train: md_train}", "my data", "datasets: bad key 'my data'" + KEY_RULE),
    ("'a++b': {train: ab_train}", "a++b", "datasets: bad key 'a++b'" + KEY_RULE),
    ("gamma: {train_images: 10}", "gamma:", "datasets.gamma: give a 'train' and/or 'test' manifest name"),
], ids=["classes-zero", "pool-of-one", "pool-source-without-train", "pool-source-unknown",
        "pool-of-itself", "key-with-a-bar", "key-with-a-space", "key-with-an-empty-part", "no-manifest"])
def test_a_bad_dataset_entry_is_refused_at_its_line(write_grid, spec, needle, message):
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
      extra: {{test: extra_test}}
      {spec}
    axes: {{method: [simclr], dataset: [alpha]}}
    stages: {{}}
    """, base=False)
    assert error_of(g) == f"{g}:{line_of(g, needle)}: {message}"


@pytest.mark.parametrize("datasets, axis, pool_line, message", [
    ("alpha+beta: {train: ab_train, pool: {alpha: 10, beta: 10}}\n"
     "      alpha+beta+beta: {train: abb_train, pool: {alpha+beta: 20, beta: 10}}",
     "alpha+beta+beta", "pool: {alpha+beta: 20",
     "datasets.alpha+beta+beta.pool: 'alpha+beta' is itself a pool; pool its sources instead"),
    ("again: {train: alpha_train}\n      both: {train: both_train, pool: {alpha: 10, again: 10}}",
     "both", "pool: {alpha", "datasets.both.pool: 'alpha' and 'again' name one train manifest, 'alpha_train'"),
])
def test_a_pool_that_study_manifest_pool_would_refuse_is_refused(write_grid, datasets, axis, pool_line, message):
    """A pool among the sources, or one manifest under two keys (`--from x:10 --from x:10`): the plan listed a
    `study manifest pool` command that refuses both as the way to make it."""
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
      beta: {{train: beta_train, test: beta_val}}
      {datasets}
    axes: {{method: [simclr], dataset: [{axis}]}}
    stages: {{}}
    """, base=False)
    assert error_of(g) == f"{g}:{line_of(g, pool_line)}: {message}"


@pytest.mark.parametrize("stage, key", [("pretrain", "manifest"), ("evaluate", "protocol"),
                                        ("evaluate", "train_manifest")])
def test_a_key_the_planner_sets_is_refused_in_defaults(write_grid, stage, key):
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
    defaults:
      {stage}:
        {key}: alpha_train
    axes: {{method: [simclr], dataset: [alpha]}}
    stages: {{}}
    """, base=False)
    assert error_of(g) == (f"{g}:{line_of(g, key + ':')}: defaults.{stage}.{key}: set by the planner from 'datasets' "
                           f"and the axes; remove it")


def test_a_missing_required_key_is_named_not_a_traceback(write_grid):
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\n")
    assert error_of(g) == f"{g}:1: missing required key 'stages'"
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {where: {method: simclr}, labeled_sizes: [10]}
    """)
    assert error_of(g) == f"{g}:{line_of(g, 'where:')}: missing required key 'protocol'"


def test_an_include_rule_giving_zipped_axes_lists_of_different_lengths_is_refused_at_its_line(write_grid):
    """An include rule's lists for axes that move together must pair up: two values of dataset against one size
    would otherwise drop beta silently."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [10]}
    zip: [[dataset, size]]
    include:
      - {method: byol, dataset: [alpha, beta], size: [10]}
    stages: {pretrain: {}}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'method: byol')}: include: axes that move together (zip) need lists "
                           "of one length")


def test_a_value_that_expands_to_zero_jobs_is_named_at_its_own_line_of_a_block_list(write_grid):
    """Axis values written one per line: the error names the excluded value's line, not its axis's first value's."""
    g = write_grid("""
    axes:
      method:
        - simclr
        - byol
      dataset: [alpha, beta]
    exclude:
      - {method: byol}
    stages: {}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, '- byol')}: axis 'method' value 'byol' expands to zero jobs "
                           "(every combination with it is excluded)")


def test_a_grid_name_of_the_longest_length_allowed_plans(write_grid):
    """A name of GRID_NAME_MAX (100) characters is a name; one more is refused (test above)."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n")
    g.write_text(g.read_text().replace("name: t\n", f"name: {'a' * 100}\n"))
    assert plan_grid(g).grid.name == "a" * 100


def test_a_grid_without_a_method_says_where_to_give_one(write_grid):
    g = write_grid("axes: {dataset: [alpha]}\nstages: {}\n")
    assert error_of(g) == f"{g}:{line_of(g, 'axes:')}: no method: give axes.method or defaults.pretrain.method"


def test_a_pooled_sets_key_joins_its_sources_keys(write_grid):
    """The report tells a pooled set and what it pools by its key (`a+b`): a pool under another key would be drawn
    and tested as one more dataset, without a word; refused at its line, naming the key to give. Any order."""
    grid = """
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
      beta: {{train: beta_train, test: beta_val}}
      {key}: {{train: ab_train, pool: {{alpha: 10, beta: 10}}}}
    axes: {{method: [simclr], dataset: [{key}]}}
    stages: {{}}
    """
    g = write_grid(grid.format(key="both"), base=False)
    assert error_of(g) == (f"{g}:{line_of(g, 'both: {')}: datasets.both: a pooled set's key joins its sources' keys "
                           "with '+' ('alpha+beta'): the report tells a pooled set, and what it pools, by that name")
    assert plan_grid(write_grid(grid.format(key="beta+alpha"), base=False)).jobs
    g = write_grid(grid.replace(", pool: {{alpha: 10, beta: 10}}", "").format(key="alpha+beta"), base=False)
    assert error_of(g) == (f"{g}:{line_of(g, 'alpha+beta: {')}: datasets.alpha+beta: a key joined with '+' names a "
                           "pooled set: give its `pool: {alpha: <images>, beta: <images>}` (the images each source "
                           "gives), or name the dataset without '+'")


@pytest.mark.parametrize("count, needle, message", [
    ("10", "pool:", "datasets.alpha+beta+beta.pool: 'alpha+beta' is itself a pool; pool its sources instead"),
    ("lots", "beta: lots", "datasets.alpha+beta+beta.pool.beta: expected a count"),
])
def test_a_pool_written_as_a_block_is_refused_at_the_line_of_its_pool_or_source(write_grid, count, needle, message):
    """In a block mapping the dataset's key, its `pool:` and each source are lines of their own: the error names the
    line at fault."""
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: alpha_train, test: alpha_val}}
      beta: {{train: beta_train, test: beta_val}}
      alpha+beta: {{train: ab_train, pool: {{alpha: 10, beta: 10}}}}
      alpha+beta+beta:
        train: abb_train
        pool:
          alpha+beta: 20
          beta: {count}
    axes: {{method: [simclr], dataset: [alpha+beta+beta]}}
    stages: {{}}
    """, base=False)
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if t.strip() == needle)
    assert error_of(g).startswith(f"{g}:{line}: {message}")


def test_knn_params_with_also_knn_false_are_refused(write_grid):
    """`also_knn: false` written out is no `also_knn: true`: a linear entry's knn settings are still never read."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: linear
          labeled_sizes: [10]
          params: {knn: {k: 5}, also_knn: false}
    """)
    assert error_of(g, check=True) == (f"{g}:{line_of(g, 'params:')}: stages.evaluate[0].params.knn: protocol linear "
                                       "reads it only with also_knn: true; remove it (it would change the job ids "
                                       "and no result)")


def test_a_batch_that_splits_over_no_pretraining_job_is_one_problem_not_one_per_job(tmp_path, write_grid):
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\ngpus_per_node: 6\nstages:\n  pretrain: {gpus: node}\n")
    g = write_grid("axes: {method: [simclr], dataset: [alpha, beta]}\nseeds: [0, 1]\nstages: {}\n")
    assert error_of(g, p, check=True).startswith(f"{g}:{line_of(g, 'batch_size: 8')}: pretraining batch_size 8 does "
                                                 "not split over the 6 processes of a job")


def test_a_concat_pair_matching_no_two_jobs_is_refused_at_the_pair(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    seeds: [0, 1]
    zip: [[dataset, seed]]
    stages:
      evaluate:
        - protocol: concat
          pairs:
            - [{dataset: alpha}, {dataset: beta}]
    """)  # alpha has seed 0 only, beta seed 1 only: no two jobs agree on the seed
    assert error_of(g) == (f"{g}:{line_of(g, '- [{dataset: alpha}')}: stages.evaluate[0] (protocol concat): pair "
                           "{dataset: alpha} + {dataset: beta} matches no two pretraining jobs that agree on method, "
                           "backbone, size, corruption, seed: it expands to zero jobs")


def test_a_concat_pair_naming_one_encoder_twice_is_told_so(write_grid):
    """Both sides match simclr on alpha alone (the dataset axis names one): not two jobs that disagree, one job
    joined with itself."""
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: concat
          pairs:
            - [{method: simclr}, {method: simclr, dataset: alpha}]
    """)
    assert error_of(g) == (f"{g}:{line_of(g, '- [{method: simclr}')}: stages.evaluate[0] (protocol concat): pair "
                           "{method: simclr} + {method: simclr, dataset: alpha} joins one encoder with itself: both "
                           "sides match only the same pretraining job(s) where they agree on backbone, size, "
                           "corruption, seed; a concatenation joins two encoders (say apart the axis they differ in, "
                           "e.g. [{method: simclr}, {method: supervised}]): it expands to zero jobs")


def test_a_concat_pair_naming_an_encoder_the_grid_does_not_train_says_which_side(write_grid):
    """A side of a pair that no pretraining job matches (a method the grid does not train, a dataset it trains nothing
    of) is named as such, not as two jobs that disagree on the other axes; one the grid trains only outside the
    entry's `where` is named with that `where`."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta], size: [10, 20]}
    include: [{method: supervised, dataset: alpha, size: 10}]
    stages:
      evaluate:
        - protocol: concat
          where: {size: 20}
          pairs:
            - [{method: simclr, dataset: beta}, {method: byol, dataset: alpha}]
    """)
    at = f"{g}:{line_of(g, '- [{method: simclr, dataset: beta}')}: stages.evaluate[0] (protocol concat): pair "
    assert error_of(g) == (f"{at}{{method: simclr, dataset: beta}} + {{method: byol, dataset: alpha}} pairs an encoder "
                           "the grid does not train: {method: byol, dataset: alpha} matches no pretraining job: it "
                           "expands to zero jobs")
    g.write_text(g.read_text().replace("method: byol", "method: supervised"))
    assert error_of(g) == (f"{at}{{method: simclr, dataset: beta}} + {{method: supervised, dataset: alpha}} names jobs "
                           "outside the entry's where: {method: supervised, dataset: alpha} matches none with "
                           "{size: 20}: it expands to zero jobs")


def test_where_size_of_no_job_is_spelled_as_written(write_grid):
    """A size that matches no job (a paper grid copied at small scale, its `where` left at 1M) reads as the grid spells
    it, among the sizes the jobs have in size order."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [400, 50k, 125k]}
    stages:
      evaluate:
        - protocol: linear
          where: {size: 1M}
    """)
    assert error_of(g) == (f"{g}:{line_of(g, 'where')}: stages.evaluate[0] (protocol linear): where size: 1M matches "
                           "no pretraining job (their size values: 400, 50k, 125k)")


@pytest.mark.parametrize("stage_text, line, message", [
    # each key of a stage's placement is checked as at the top level, at its own line
    ("    partition: gpu short\n", 5, "stages.pretrain.partition: expected a name or a comma-separated list"),
    ("    qos: [long]\n", 5, "stages.pretrain.qos: expected a string, got ['long']"),
    ("    account: \"lab\\nx\"\n", 5, "stages.pretrain.account: 'lab\\nx' holds a line break or control character"),
    ("    max_time: forever\n", 5, "stages.pretrain.max_time: expected a duration"),
    ("    additional: [exclusive]\n", 5, "stages.pretrain.additional: expected a mapping of extra sbatch options"),
    ("    additional:\n      exclusive: true\n      time: '1:00:00'\n", 7,
     "stages.pretrain.additional: --time is written by study submit itself; set `stages.<stage>.time`"),
    ("    additional: {part: short}\n", 5,
     "stages.pretrain.additional: --part (an abbreviation of --partition) is written by study submit itself"),
    ("    additional: {exclusive: false}\n", 5, "stages.pretrain.additional.exclusive: false would be written"),
    # null drops the top-level option of that name (mail-type: FAIL, below); one the profile does not set is a typo
    ("    additional: {mail_typ: null}\n", 5,
     "stages.pretrain.additional.mail_typ: null drops the profile's own `additional` option of that name, but it "
     "sets none (its options: mail-type)"),
    ("    partitoin: long\n", 5, "unknown stages.pretrain key 'partitoin' (did you mean 'partition'?)"),
])
def test_a_bad_placement_key_of_a_profile_stage_is_refused_at_its_line(tmp_path, stage_text, line, message):
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nadditional: {mail-type: FAIL}\nstages:\n  pretrain:\n" + stage_text)
    with pytest.raises(StudyError, match=re.escape(f"{p}:{line}: {message}")):
        load_profile(p)


def test_a_time_beyond_a_stages_own_max_time_is_refused_and_a_longer_one_there_is_allowed(tmp_path, write_grid):
    """Evaluations on a short partition (4 h), pretraining on a long one (7 days) of a profile whose top-level
    partition allows 12 h: each stage's `time` is checked against its own partition's MaxTime."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: gpu\nmax_time: 12h\nstages:\n"
                 "  pretrain: {time: 6-00:00:00, partition: long, max_time: 7-00:00:00}\n"
                 "  evaluate: {time: 4h, partition: short, max_time: 4h}\n")
    prof = load_profile(p)
    assert (prof.placement("pretrain").max_time_min, prof.placement("evaluate").max_time_min) == (7 * 1440, 240)
    g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages:\n  pretrain:\n"
                   "    resources: {time: 8-00:00:00}\n")
    assert error_of(g, p).startswith(
        f"{g}:{line_of(g, 'time: 8-00:00:00')}: pretrain resources: time 8-00:00:00 is more than profile 'p' allows "
        "(stages.pretrain.max_time: 168h, the partition's MaxTime)")
    p.write_text("partition: gpu\nmax_time: 48h\nstages:\n  evaluate: {partition: short, max_time: 4h, time: 5h}\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}:4: evaluate resources: time 5h is more than profile 'p' "
                                                   "allows (stages.evaluate.max_time: 4h")):
        load_profile(p)
    p.write_text("partition: gpu\nmax_time: 48h\nstages:\n  evaluate: {time: 72h, max_time: null}\n")  # no limit
    assert load_profile(p).placement("evaluate").max_time_min is None
    p.write_text("partition: gpu\nmax_time: 48h\nstages:\n  pretrain: {time: 72h, partition: long}\n")  # inherited
    with pytest.raises(StudyError, match=re.escape(f"{p}:4: pretrain resources: time 72h is more than profile 'p' "
                                                   "allows (max_time: 48h")):
        load_profile(p)


def test_every_stage_needs_a_partition_for_slurm_the_profiles_or_its_own(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("stages:\n  pretrain: {partition: long}\n  evaluate: {partition: short}\n")
    prof = load_profile(p)
    assert prof.require_partition() == "long"
    assert (prof.placement("pretrain").partition, prof.placement("evaluate").partition) == ("long", "short")
    p.write_text("stages:\n  pretrain: {partition: long}\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}: no 'partition' (required for --cluster slurm) for the jobs "
                                                   "of stage(s) evaluate; add e.g. `partition: gpu`")):
        load_profile(p).require_partition()
    p.write_text("partition: gpu\nstages:\n  evaluate: {partition: null}\n")
    with pytest.raises(StudyError, match=re.escape(f"{p}: stages.evaluate.partition is null: its jobs would have no "
                                                   "partition (required for --cluster slurm)")):
        load_profile(p).require_partition()


def test_a_missing_manifest_in_a_read_only_folder_says_where_to_make_it(write_grid, tmp_path, monkeypatch, request):
    """A lab's shared manifests, read-only to its users: the command `study plan` gives for a variant the admin did not
    make would be refused there; it says where to make it instead (a folder of one's own linking the shared ones)."""
    from read_only import read_only

    folder = _manifest_stubs(tmp_path, monkeypatch, "alpha_train")
    g = write_grid("axes: {method: [simclr], dataset: [alpha], size: [1k], corruption: ['jpeg:quality=30']}\n"
                   "stages: {}\n")
    assert "read-only" not in missing_manifests(plan_grid(g))[-1]
    read_only(folder, monkeypatch, request)
    problem = missing_manifests(plan_grid(g))[-1]
    assert "study manifest corrupt alpha_train.jpeg-quality30 --base alpha_train" in problem
    assert (f"\n{folder} is read-only to you (a shared set?): make new manifests in a folder of your own that links "
            f"the shared ones, `mkdir -p DIR && ln -s {folder}/*.json {folder}/*.parquet DIR/`") in problem, problem


# a linear probe of layer3 of encoders of resnet18 and `backbones`
LAYER3_GRID = """\
    axes: {{method: [simclr], dataset: [alpha], backbone: [resnet18, {backbones}]}}
    stages:
      evaluate:
        - protocol: linear
          labeled_sizes: [10]
          params:
            feature_layer: layer3
    """


def test_a_feature_layer_the_encoders_backbone_lacks_is_refused_at_its_line(write_grid):
    """A registered backbone without ResNet stages (`layer3`): refused before its pretraining runs, not at the
    extraction after it; `pooled` and the ResNets' stages plan."""
    from torch import nn

    from study.train.backbones import BACKBONES

    class Flat(nn.Module):
        def __init__(self, width: int = 64):
            super().__init__()
            self.body, self.feature_dim = nn.Sequential(nn.Flatten(), nn.LazyLinear(width)), width

    BACKBONES.register("flat_test")(Flat)
    try:
        g = write_grid(LAYER3_GRID.format(backbones="flat_test"))
        msg = error_of(g, check=True)
        line = line_of(g, "feature_layer: layer3")
        assert msg.startswith(f"{g}:{line}: job ") and msg.count("has no stage") == 1, msg
        assert "evaluate.feature_layer 'layer3': backbone 'flat_test' has no stage of that name" in msg, msg
        g.write_text(g.read_text().replace("flat_test", "resnet18_small"))
        plan_grid(g).check(manifests=False)  # ResNets have layer3
        g.write_text(g.read_text().replace("layer3", "pooled").replace("resnet18_small", "flat_test"))
        plan_grid(g).check(manifests=False)
    finally:
        BACKBONES.unregister("flat_test")


def test_the_feature_layer_check_looks_a_stage_up_as_the_extraction_does(write_grid):
    """A stage the module gives as an attribute (a property over a wrapped trunk: the extraction's `getattr` finds
    it) plans; a backbone that does not build on the meta device, or without `feature_dim`, is left to its jobs
    (`study plan` once stopped on its ValueError or RuntimeError, a traceback); a backbone without the stage is
    still refused, alone."""
    import torch
    from torch import nn

    from study.evaluate.features import LayerFeatures
    from study.train.backbones import BACKBONES, build_backbone

    class Flat(nn.Module):
        def __init__(self, width: int = 64):
            super().__init__()
            self.body, self.feature_dim = nn.Linear(3, width), width

    class Wrapped(nn.Module):
        def __init__(self, width: int = 64):
            super().__init__()
            self.trunk = BACKBONES.get("resnet18_small")(width=width)
            self.feature_dim = self.trunk.feature_dim

        @property
        def layer3(self) -> nn.Module:
            return self.trunk.layer3

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.trunk(x)

    class NoDim(nn.Module):
        def __init__(self, width: int = 64):
            super().__init__()
            self.body = nn.Linear(3, width)

    class HostOnly(Flat):
        def __init__(self, width: int = 64):
            super().__init__(width)
            self.feature_dim = width + int(self.body.weight.sum().item() * 0)  # .item(): no meta tensor has one

    names = {"flat_fl": Flat, "wrapped_fl": Wrapped, "nodim_fl": NoDim, "hostonly_fl": HostOnly}
    for name, cls in names.items():
        BACKBONES.register(name)(cls)
    try:
        g = write_grid(LAYER3_GRID.format(backbones=", ".join(names)))
        msg = error_of(g, check=True)
        assert msg.count("has no stage") == 1 and "backbone 'flat_fl' has no stage" in msg, msg
        assert LayerFeatures(build_backbone("wrapped_fl", 8), "layer3")(torch.zeros(2, 3, 8, 8)).shape == (2, 32)
    finally:
        for name in names:
            BACKBONES.unregister(name)
