"""study/manifests/rebuild.py: the build command of a manifest whose dataset moved, from its metadata alone."""
import json
import shlex

from study.manifests.rebuild import build_command


def test_the_command_gives_every_option_the_metadata_records_and_names_what_it_cannot():
    """Sizes, seed, sampling, GLC20's label rule and channels, --classes-from (recorded where it changed the class
    list) are in the content hash: each comes back as its flag; the taxonomy file's place and the flags that dropped
    classes are not recorded: said beside the command."""
    meta = {"dataset": "glc20", "root": "/old/glc20", "split": "us_train", "name": "glc 20", "sizes": [50000, 125000],
            "labeled_sizes": [10000], "seed": 7, "balanced": True, "labeled_balanced": False,
            "label_rule": "landcover_mode", "channels": [0, 1, 3],
            "sources": [{"path": "tax.csv", "role": "taxonomy", "sha256": "ab" * 32}],
            "classes_from": "glc_train", "info": {"dropped_classes": {"landcover_0": 12}}}
    command, said = build_command(meta).split("  (", 1)
    assert shlex.split(command) == [
        "study", "manifest", "build", "--dataset", "glc20", "--root", "$NEW_ROOT", "--split", "us_train", "--name",
        "glc 20", "--sizes", "50000,125000", "--labeled-sizes", "10000", "--seed", "7", "--balanced",
        "--labeled-uniform", "--label-rule", "landcover_mode", "--channels", "0,1,3", "--classes-from", "glc_train",
        "--taxonomy", "$TAXONOMY"]
    assert said == ("$NEW_ROOT: where /old/glc20 is now; $TAXONOMY: its tax.csv, sha256 abababababab...; with "
                    "--drop-classes or --drop-other-classes as before: it left out classes landcover_0)")
    plain = build_command({"dataset": "imagefolder", "root": "/d/t", "split": "test", "name": "t", "sizes": [],
                           "labeled_sizes": [], "seed": 0, "balanced": False, "labeled_balanced": True})
    assert plain == ('study manifest build --dataset imagefolder --root "$NEW_ROOT" --split test --name t  '
                     "($NEW_ROOT: where /d/t is now)")


def test_a_split_built_with_classes_from_is_rebuilt_with_the_same_content_hash(build, cli, tree, tmp_path):
    """A test split that took its train split's class list (`--classes-from`: labels renumbered, a class it has no
    image of listed) moved with its dataset: its command gives that flag back, so the build finds the same content
    under another root (without it: other classes, other content)."""
    from manifest_trees import write_tree

    build("tr", root=write_tree(tmp_path / "few", {"cat": 3, "dog": 2, "eel": 2}))
    write_tree(tmp_path / "old", {"cat": 2, "eel": 1})
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tmp_path / "old", "--split",
                       "train", "--name", "va", "--classes-from", "tr")
    assert code == 0, err
    (tmp_path / "old").rename(tmp_path / "new")
    command = build_command(json.loads((tmp_path / "manifests" / "va.json").read_text())).split("  (")[0]
    code, _, err = cli(*shlex.split(command.replace('"$NEW_ROOT"', shlex.quote(str(tmp_path / "new"))))[1:])
    assert code == 2 and "already exists with the same content under another root" in err, err
