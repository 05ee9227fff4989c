"""study/manifests/rebuild.py: the build command of a manifest whose dataset moved, from its metadata alone."""
import shlex

from study.manifests.rebuild import build_command


def test_the_command_gives_every_option_the_metadata_records_and_names_what_it_cannot():
    """Sizes, seed, sampling, GLC20's label rule and channels are in the content hash: each comes back as its flag;
    the taxonomy file's place and the flags that dropped classes are not recorded: said beside the command."""
    meta = {"dataset": "glc20", "root": "/old/glc20", "split": "us_train", "name": "glc 20", "sizes": [50000, 125000],
            "labeled_sizes": [10000], "seed": 7, "balanced": True, "labeled_balanced": False,
            "label_rule": "landcover_mode", "channels": [0, 1, 3],
            "sources": [{"path": "tax.csv", "role": "taxonomy", "sha256": "ab" * 32}],
            "info": {"dropped_classes": {"landcover_0": 12}}}
    command, said = build_command(meta).split("  (", 1)
    assert shlex.split(command) == [
        "study", "manifest", "build", "--dataset", "glc20", "--root", "$NEW_ROOT", "--split", "us_train", "--name",
        "glc 20", "--sizes", "50000,125000", "--labeled-sizes", "10000", "--seed", "7", "--balanced",
        "--labeled-uniform", "--label-rule", "landcover_mode", "--channels", "0,1,3", "--taxonomy", "$TAXONOMY"]
    assert said == ("$NEW_ROOT: where /old/glc20 is now; $TAXONOMY: its tax.csv, sha256 abababababab...; with "
                    "--classes-from or --drop-classes as before: it left out classes landcover_0)")
    plain = build_command({"dataset": "imagefolder", "root": "/d/t", "split": "test", "name": "t", "sizes": [],
                           "labeled_sizes": [], "seed": 0, "balanced": False, "labeled_balanced": True})
    assert plain == ('study manifest build --dataset imagefolder --root "$NEW_ROOT" --split test --name t  '
                     "($NEW_ROOT: where /d/t is now)")
