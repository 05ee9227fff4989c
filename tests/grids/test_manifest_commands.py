"""The commands a plan gives for its manifests (`Plan.manifests`, study.grids.manifest_commands): their names
and order, and the sizes each build command holds."""
import subprocess

import pytest

from study.grids import plan_grid
from study.manifests import store
from tests.grids.conftest import REPO


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_paper_grids_use_the_documented_manifest_names():
    names = set()
    for grid in ("data_quantity", "data_domain", "data_quality", "granularity"):
        names |= set(plan_grid(f"grids/{grid}.yaml").manifests())
    base = {f"{d}_{s}" for d, s in [("imagenet", "train"), ("imagenet", "val"), ("inat21", "train"),
                                    ("inat21", "val"), ("places365", "train"), ("places365", "val"),
                                    ("glc20", "train"), ("glc20", "test")]}
    assert base <= names
    assert "imagenet_train.downsample-factor2" in names and "pooled_all4" in names
    readme = (REPO / "grids" / "README.md").read_text()
    for name in sorted(base):
        assert f"--name {name}" in readme


def test_manifest_names_are_valid_for_study_manifests():
    for grid in ("data_quantity", "data_domain", "data_quality", "granularity"):
        for name in plan_grid(f"grids/{grid}.yaml").manifests():
            assert store.check_name(name) == name


def test_build_hints_come_before_the_pool_and_corrupt_commands_that_read_them(write_grid):
    """Run top to bottom, each command finds what it reads: builds, then pools, then corruptions."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha+beta, alpha], corruption: [jpeg, none]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [10]}]}
    """)
    g.write_text(g.read_text().replace("datasets:\n", "datasets:\n  alpha+beta: {train: pool_ab, pool: {alpha: 5, "
                                                      "beta: 5}}\n"))
    commands = list(plan_grid(g).manifests().values())
    assert [c.split()[2] + " " + c.split()[3] for c in commands] == [
        "build --dataset", "build --dataset", "build --dataset", "build --dataset", "pool pool_ab",
        "corrupt pool_ab.jpeg-quality10", "corrupt alpha_train.jpeg-quality10"]
    assert [c.split("--name ")[1].split()[0] for c in commands[:4]] == ["alpha_train", "beta_train", "alpha_val",
                                                                        "beta_val"]


def test_a_pooled_sources_build_command_holds_the_size_the_pool_takes_of_it(write_grid):
    """A pool takes each source's nested prefix: the source's train manifest is built with that size among its
    sizes, beside the sizes the grid pretrains on."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha+beta, alpha], size: [7]}
    stages: {}
    """)
    g.write_text(g.read_text().replace("datasets:\n", "datasets:\n  alpha+beta: {train: pool_ab, pool: {alpha: 5, "
                                                      "beta: 3}}\n"))
    commands = plan_grid(g).manifests()
    assert commands["alpha_train"].endswith("--name alpha_train --sizes 5,7")
    assert commands["beta_train"].endswith("--name beta_train --sizes 3")
    assert commands["pool_ab"] == "study manifest pool pool_ab --from alpha_train:5 --from beta_train:3"


def test_the_manifests_a_granularity_job_reads_are_built_with_a_taxonomy(write_grid):
    """Their levels come from --taxonomy (one file for both splits of a dataset); iNat21's reader has its own."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [10]},
                        {protocol: granularity, where: {dataset: [alpha]}, labeled_sizes: [10]}]}
    """)
    commands = plan_grid(g).manifests()
    for name in ("alpha_train", "alpha_val"):
        assert commands[name].endswith(' --taxonomy "$ALPHA_TAXONOMY"')
    assert "--taxonomy" not in commands["beta_train"] + commands["beta_val"]
    assert "--taxonomy" not in "".join(plan_grid("grids/granularity.yaml").manifests().values())


def test_a_build_commands_shell_variables_read_as_one_name_for_a_key_that_starts_with_a_digit(write_grid):
    """`$2D_ROOT` is `$2` then `D_ROOT` in a shell: the variable of a key `2d` is `$_2D_ROOT`."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {evaluate: [{protocol: granularity, labeled_sizes: [10]}]}
    """)
    g.write_text(g.read_text().replace("  alpha:", "  2d:").replace("[alpha]", "['2d']"))
    command = plan_grid(g).manifests()["alpha_train"]
    assert '--root "$_2D_ROOT"' in command and command.endswith('--taxonomy "$_2D_TAXONOMY"')
    env = {"PATH": "/usr/bin:/bin", "_2D_ROOT": "/data/2d", "_2D_TAXONOMY": "/data/2d.csv"}
    words = subprocess.run(["bash", "-c", f"printf '%s\\n' {command}"], env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert words[words.index("--root") + 1] == "/data/2d" and words[-1] == "/data/2d.csv"


def test_two_dataset_keys_that_spell_one_shell_word_get_two_root_variables(write_grid):
    """Keys `a-b` and `a_b` both read as `A_B`: the second's variables are `$A_B_2_ROOT` (one `$A_B_ROOT` would
    build both datasets' manifests from one root)."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [10]}]}
    """)
    g.write_text(g.read_text().replace("  alpha:", "  a-b:").replace("  beta:", "  a_b:")
                 .replace("[alpha, beta]", "[a-b, a_b]"))
    commands = plan_grid(g).manifests()
    assert '--root "$A_B_ROOT"' in commands["alpha_train"] and '--root "$A_B_ROOT"' in commands["alpha_val"]
    assert '--root "$A_B_2_ROOT"' in commands["beta_train"] and '--root "$A_B_2_ROOT"' in commands["beta_val"]


def _two_glc20_regions(write_grid, labeled: int):
    """A grid of GLC20 datasets `fr` (manifests fr_train, fr_test) and `us` (glc20_train, glc20_test), probed at
    `labeled` labels."""
    g = write_grid(f"""
    axes: {{method: [simclr], dataset: [fr, us]}}
    stages: {{evaluate: [{{protocol: linear, labeled_sizes: [{labeled}]}}]}}
    """, base=False)
    g.write_text("name: t\ndatasets:\n  fr: {reader: glc20, train: fr_train, test: fr_test}\n"
                 "  us: {reader: glc20, train: glc20_train, test: glc20_test}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}\n" + g.read_text())
    return g


def test_a_glc20_manifest_named_for_a_region_is_built_from_that_region(write_grid):
    """GLC20's build commands suggest the US part; a manifest named `fr_train` got `--split us_train` too, which
    built the US patches under the French name."""
    g = _two_glc20_regions(write_grid, 10)
    splits = {name: c.split("--split ")[1].split()[0] for name, c in plan_grid(g).manifests().items()}
    assert splits == {"fr_train": "fr_train", "glc20_train": "us_train", "fr_test": "fr_test",
                      "glc20_test": "us_test"}


def test_a_glc20_test_command_reads_as_its_built_train_manifest(write_grid, tmp_path, monkeypatch):
    """The test split's command of a built train manifest read with --label-rule landcover_mode --channels 3,1,2
    said --classes-from alone: the build it suggested was refused, after reading every test patch. It now gives the
    train manifest's reading, and the classes its --drop-classes left out (else the test split's images of them are
    refused, not in the class list); a train manifest not built yet adds nothing (its command has the defaults)."""
    import numpy as np

    import study.cli

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    glc = tmp_path / "glc"
    (glc / "patches_fr/34/12").mkdir(parents=True)
    (glc / "patches_fr/35/12").mkdir(parents=True)
    np.save(glc / "patches_fr/34/12/10561234.npy", np.full((8, 8, 5), 11, np.uint8))
    np.save(glc / "patches_fr/35/12/10561235.npy", np.full((8, 8, 5), 0, np.uint8))  # a no-data code, dropped
    (glc / "occurrences_fr_train.csv").write_text("id;lat;lon;species_id\n10561234;1;2;3\n10561235;1;2;3\n")
    assert study.cli.main(["manifest", "build", "--dataset", "glc20", "--root", str(glc), "--split", "fr_train",
                           "--name", "fr_train", "--label-rule", "landcover_mode", "--channels", "3,1,2",
                           "--drop-classes", "landcover_0"]) == 0
    g = _two_glc20_regions(write_grid, 1)
    commands = plan_grid(g).manifests()
    assert commands["fr_test"].endswith(" --split fr_test --name fr_test --classes-from fr_train --label-rule "
                                        "landcover_mode --channels 3,1,2 --drop-classes landcover_0"), \
        commands["fr_test"]
    assert commands["glc20_test"].endswith(" --classes-from glc20_train"), commands["glc20_test"]


def test_a_smaller_copy_of_a_paper_dataset_is_built_with_the_paper_sizes_it_holds(write_grid):
    """A region of GLC20 format with 300k patches (`train_images`) is asked for the paper's sizes up to 250k and
    the grid's own, not for 500k and 1M it cannot hold; without train_images, all the paper's."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [fr, us], size: [20k]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [10]}]}
    """, base=False)
    g.write_text("name: t\ndatasets:\n  fr: {reader: glc20, train: fr_train, test: fr_test, train_images: 300k}\n"
                 "  us: {reader: glc20, train: glc20_train, test: glc20_test}\n"
                 "defaults:\n  pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}\n" + g.read_text())
    commands = plan_grid(g).manifests()
    assert "--sizes 20k,50k,125k,250k --labeled-sizes 10,10k,50k,100k,250k" in commands["fr_train"]
    assert "--sizes 20k,50k,125k,250k,500k,1M --labeled-sizes 10,10k,50k,100k,250k" in commands["glc20_train"]
    for test in ("fr_test", "glc20_test"):  # a test split is built whole: no paper sizes asked of it
        assert "--sizes" not in commands[test] and "--labeled-sizes" not in commands[test], commands[test]


def test_a_dataset_without_a_reader_or_split_suffix_gets_placeholders_to_fill_in(write_grid):
    """No `reader:` and a manifest name without `_train`/`_val`/`_test`: the command says READER and SPLIT for
    the user to replace, not `None` or a word of the name."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [10]}]}
    """)
    g.write_text(g.read_text().replace("alpha_val", "alpha_holdout"))
    command = plan_grid(g).manifests()["alpha_holdout"]
    assert command == ('study manifest build --dataset READER --root "$ALPHA_ROOT" --split SPLIT --name alpha_holdout'
                       " --classes-from alpha_train")


def test_a_suffixed_shell_word_is_not_one_another_key_spells():
    """With keys `a_b`, `a-b` and `a_b_2`, `a-b`'s `_2` would be `a_b_2`'s own `$A_B_2_ROOT`: one variable for two
    datasets' roots (`a_b_2`'s then `$A_B_2_2_ROOT`, which nobody would guess)."""
    from study.grids.manifest_commands import _env_words

    assert _env_words(["a_b", "a-b", "a_b_2"]) == {"a_b": "A_B", "a-b": "A_B_3", "a_b_2": "A_B_2"}
    assert _env_words(["2d", "_2d", "a"]) == {"2d": "_2D", "_2d": "_2D_2", "a": "A"}
