"""`build_command(meta)`: the `study manifest build` command that builds a manifest again, with the options its
metadata records, at the dataset's new place (`"$NEW_ROOT"`): the same content hash where the files are the same
(the content hash leaves the root out), so the results and checkpoints on it stay valid. What the metadata does not
record (which of `--drop-classes`, `--drop-other-classes` left classes out, the taxonomy file's place) is said, not
guessed: `study manifest build` refuses a build that gives other content under an existing name, naming what differs.
"""
from __future__ import annotations

import shlex

NEW_ROOT = '"$NEW_ROOT"'  # the shell variable the command reads the dataset's new place from
TAXONOMY = '"$TAXONOMY"'  # and its taxonomy CSV's


def build_command(meta: dict) -> str:
    """The build command of the manifest `meta` describes, at `$NEW_ROOT`, then what its variables and any flags
    the metadata does not record stand for, in parentheses."""
    words = ["study", "manifest", "build", "--dataset", shlex.quote(str(meta.get("dataset"))), "--root", NEW_ROOT,
             "--split", shlex.quote(str(meta.get("split"))), "--name", shlex.quote(str(meta.get("name")))]
    for flag, key in (("--sizes", "sizes"), ("--labeled-sizes", "labeled_sizes")):
        if meta.get(key):
            words += [flag, ",".join(str(n) for n in meta[key])]
    if meta.get("seed", 0) != 0:
        words += ["--seed", str(meta["seed"])]
    if meta.get("balanced"):
        words.append("--balanced")
    if meta.get("labeled_balanced") is False:
        words.append("--labeled-uniform")
    if meta.get("label_rule"):
        words += ["--label-rule", shlex.quote(str(meta["label_rule"]))]
    if meta.get("channels"):
        words += ["--channels", ",".join(str(c) for c in meta["channels"])]
    if meta.get("classes_from"):  # recorded where it changed the class list (part of the content hash)
        words += ["--classes-from", shlex.quote(str(meta["classes_from"]))]
    said = [f"$NEW_ROOT: where {meta.get('root')} is now"]
    taxonomy = next((s for s in meta.get("sources") or [] if s.get("role") == "taxonomy"), None)
    if taxonomy is not None:
        words += ["--taxonomy", TAXONOMY]
        said.append(f"$TAXONOMY: its {taxonomy.get('path')}, sha256 {str(taxonomy.get('sha256'))[:12]}...")
    dropped = (meta.get("info") or {}).get("dropped_classes")
    if dropped:
        said.append(f"with --drop-classes or --drop-other-classes as before: it left out classes "
                    f"{', '.join(map(str, dropped))}")
    return " ".join(words) + f"  ({'; '.join(said)})"
