"""study.version.code_version: git's describe with its dirty flag, only from a checkout that tracks this package.

Real git repositories in tmp_path holding a copy of the package, read by a fresh interpreter that imports the copy."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import study
from study.version import newer_note, source_digest

PACKAGE = Path(study.__file__).resolve().parent


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def copy_of_study(dest: Path) -> Path:
    shutil.copytree(PACKAGE, dest / "study", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def versions_seen_by(site: Path) -> str:
    """What a result record of the package copy under `site` records as its code version."""
    code = "import study.results.record as r; print(r.__file__); print(r.code_version())"
    out = subprocess.run([sys.executable, "-c", code], cwd=site, env=dict(os.environ, PYTHONPATH=str(site)),
                         check=True, capture_output=True, text=True).stdout.split()
    assert Path(out[0]).is_relative_to(site)  # the copy, not this checkout's package
    return out[1]


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "README").write_text("another project\n")
    git(tmp_path, "add", "README")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_a_copy_installed_inside_another_repository_records_the_package_version_and_its_source_digest(repo):
    """A virtual environment inside some project's checkout (ignored by it): its commit says nothing of study."""
    (repo / ".gitignore").write_text(".venv/\n")
    site = copy_of_study(repo / ".venv" / "site-packages")
    assert versions_seen_by(site) == f"{study.__version__}+src.{source_digest(site / 'study')}"


def test_two_installed_copies_of_one_version_but_other_code_record_two_code_versions(tmp_path):
    """Two wheels of version 0.1.0 built from different commits (an admin updates the shared environment mid-study):
    their records differ, so a resumed job and the report say so; a copy of the same code records the same."""
    first, same, other = (copy_of_study(tmp_path / name) for name in ("first", "same", "other"))
    (same / "study" / "__pycache__").mkdir(exist_ok=True)
    (same / "study" / "__pycache__" / "x.pyc").write_bytes(b"not code")  # bytecode beside it changes nothing
    with open(other / "study" / "counts.py", "a") as f:
        f.write("# another commit\n")
    seen = [versions_seen_by(site) for site in (first, same, other)]
    assert seen[0] == seen[1] != seen[2]
    assert all(v.startswith(f"{study.__version__}+src.") and len(v.rsplit(".", 1)[1]) == 12 for v in seen)


def test_a_checkout_that_tracks_the_package_gives_its_commit_then_dirty(repo):
    site = copy_of_study(repo / "src")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}"
    with open(site / "study" / "counts.py", "a") as f:
        f.write("# an uncommitted change\n")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}-dirty.src.{source_digest(site / 'study')}"


def test_edits_outside_the_package_leave_the_code_version_clean_and_a_staged_or_deleted_module_does_not(repo):
    """A researcher edits the checkout's grid files and docs (grids/ beside the package): `git describe --dirty`
    marked every result of such a tree modified, and the report warned that no commit reproduces them, although the
    commit holds every line of code that ran. A change to the package's own Python files, staged or a deletion too,
    is a modified tree."""
    site = copy_of_study(repo / "src")
    (repo / "src" / "grids").mkdir()
    (repo / "src" / "grids" / "mine.yaml").write_text("name: mine\n")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    (repo / "src" / "grids" / "mine.yaml").write_text("name: mine\nseeds: [0, 1]\n")
    (repo / "README").write_text("edited\n")
    (repo / "src" / "grids" / "new.yaml").write_text("name: new\n")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}"
    (site / "study" / "counts.py").write_text((PACKAGE / "counts.py").read_text() + "# staged\n")
    git(repo, "add", "src/study/counts.py")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}-dirty.src.{source_digest(site / 'study')}"
    git(repo, "reset", "-q", "--hard")
    (site / "study" / "grids" / "__init__.py").unlink()
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}-dirty.src.{source_digest(site / 'study')}"


def test_two_states_of_one_modified_checkout_record_two_code_versions_each_naming_its_source(repo):
    """A contributor edits a method's loss between two submits of one uncommitted tree: both ran as `<commit>-dirty`,
    one string, so the results and the report could not tell the two losses apart; each now names the digest of its
    package's files, which also names the copy a submit's jobs run (`<workdir>/code/<digest>/`)."""
    site = copy_of_study(repo / "src")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    seen = []
    for loss in ("a / 2", "a"):
        (site / "study" / "counts.py").write_text((PACKAGE / "counts.py").read_text() + f"# loss = {loss}\n")
        seen.append(versions_seen_by(site))
        assert seen[-1] == f"{study.__version__}+git.{sha}-dirty.src.{source_digest(site / 'study')}"
    assert seen[0] != seen[1]


def test_an_untracked_module_in_the_package_makes_the_checkout_modified(repo):
    """A new method's file not yet `git add`ed: `git describe --dirty` reads such a tree clean, so its results named
    a commit that does not hold the method; a file git ignores, or one outside the package, changes nothing."""
    site = copy_of_study(repo / "src")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    (repo / "notes.py").write_text("# outside the package\n")
    (repo / ".gitignore").write_text("scratch_*.py\n")
    (site / "study" / "scratch_try.py").write_text("# ignored\n")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}"
    (site / "study" / "train" / "methods" / "simsiam.py").write_text("# a new method, not yet added\n")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}-dirty.src.{source_digest(site / 'study')}"


def test_an_editors_lock_beside_a_module_leaves_a_clean_checkout_clean(repo):
    """Emacs holds a modified buffer of counts.py as the dangling link `.#counts.py` (untracked, named like a Python
    file), the saved file unchanged: the jobs run the commit's code, and the version named it modified. Untracked
    files count where they are files, as the source digest and the copy a submit takes read them."""
    site = copy_of_study(repo / "src")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    (site / "study" / ".#counts.py").symlink_to("someone@host.1234:1700000000")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}"
    (site / "study" / "sub dir").mkdir()
    (site / "study" / "sub dir" / "new module.py").write_text("# untracked, under a folder with a blank\n")
    assert versions_seen_by(site) == f"{study.__version__}+git.{sha}-dirty.src.{source_digest(site / 'study')}"


def test_library_versions_name_the_jpeg_decoder_pillow_links():
    """A protocol records the decoder of its JPEG pixels: libjpeg-turbo (Pillow's wheels, Debian) by its own version,
    not libjpeg's API level (6.2 or 8) that Pillow's `jpg` feature reports for it."""
    from PIL import features

    from study.version import library_versions

    v = library_versions()
    assert set(v) == {"torch_version", "torchvision_version", "numpy_version", "pillow_version", "jpeg_decoder",
                      "opencv_version", "opencv_jpeg_decoder"}
    if features.check_feature("libjpeg_turbo"):
        assert v["jpeg_decoder"] == f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
    else:
        assert v["jpeg_decoder"] == f"libjpeg {features.version('jpg')}"


def test_the_jpeg_decoder_opencv_links_is_named_as_its_build_information_says():
    """Every RGB JPEG's pixels come from OpenCV's libjpeg (study.train.images.decode_rgb), which need not be Pillow's:
    the record names it too, from OpenCV's build information."""
    import cv2

    from study.version import library_versions, opencv_jpeg_decoder

    assert opencv_jpeg_decoder("  Media I/O:\n    JPEG:                        build-libjpeg-turbo (ver 3.1.2-70)\n"
                               "    JPEG 2000:                   build (ver 2.5.4)\n") == "libjpeg-turbo 3.1.2-70"
    assert opencv_jpeg_decoder("    JPEG:   /usr/lib/x86_64-linux-gnu/libjpeg.so (ver 80)\n") == "libjpeg 80"
    assert opencv_jpeg_decoder("    PNG:   build (ver 1.6.43)\n") is None
    v = library_versions()
    assert v["opencv_version"] == cv2.__version__
    assert v["opencv_jpeg_decoder"].startswith(("libjpeg-turbo ", "libjpeg "))


@pytest.mark.parametrize("found, newer", [(2, True), ("2", True), (b"2", True), (1, False), (0, False), (True, False),
                                          (None, False), ("x", False), (2.0, False)])
def test_a_version_above_the_one_read_is_said_to_be_a_newer_studys(found, newer):
    assert bool(newer_note(found, 1)) == newer


def test_a_bool_is_no_version_even_above_the_one_read():
    assert newer_note(True, 0) == "" and newer_note(1, 0) != ""


def test_versions_that_ran_one_code_are_told_by_the_digest_of_their_commits_package(repo):
    """A commit that changed only the docs, and a try recorded as `-dirty.src.<digest>` then committed as it was,
    ran the code of the commit before and of the commit after: code_digests gives them one digest each, the
    commit's package folder as source_digest reads it (also a commit named by a tag's describe output); a commit
    this checkout does not hold, and an older `-dirty` without its digest, are left out."""
    from study.version import code_digests

    site = copy_of_study(repo / "src")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    first = git(repo, "rev-parse", "--short", "HEAD")
    digest = source_digest(site / "study")
    (repo / "README").write_text("docs\n")
    git(repo, "commit", "-qam", "docs only")
    docs = git(repo, "rev-parse", "--short", "HEAD")
    git(repo, "tag", "v1")
    with open(site / "study" / "counts.py", "a") as f:
        f.write("# a try\n")
    tried = source_digest(site / "study")
    git(repo, "commit", "-qam", "the try, committed")
    later = git(repo, "rev-parse", "--short", "HEAD")
    v = study.__version__
    got = code_digests([f"{v}+git.{first}", f"{v}+git.{docs}", f"{v}+git.v1", f"{v}+git.v1-1-g{later}",
                        f"{v}+git.{docs}-dirty.src.{tried}", f"{v}+git.{docs}-dirty", f"{v}+git.0123abc"],
                       site / "study")
    assert got == {f"{v}+git.{first}": digest, f"{v}+git.{docs}": digest, f"{v}+git.v1": digest,
                   f"{v}+git.v1-1-g{later}": tried, f"{v}+git.{docs}-dirty.src.{tried}": tried}
    assert tried != digest


def test_a_commit_whose_file_git_no_longer_holds_is_left_out_not_a_crash(repo):
    """`git cat-file --batch` answers `<id> missing` of a blob not in the object store (a partial clone's, a lost
    loose object): code_digests read that line as a header with a size and raised IndexError, so `study report`
    stopped; the commit's code is not told and its version is left out."""
    from study.version import code_digests

    site = copy_of_study(repo / "src")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "add study")
    commit = git(repo, "rev-parse", "--short", "HEAD")
    blob = git(repo, "rev-parse", "HEAD:src/study/counts.py")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    assert code_digests([f"{study.__version__}+git.{commit}"], site / "study") == {}


def test_a_commit_whose_package_holds_a_linked_module_is_left_out(repo):
    """source_digest reads a linked module through to its target's bytes, which git's tree of the commit does not
    hold: such a commit's code is not told (never one digest for two codes)."""
    from study.version import code_digests

    site = copy_of_study(repo / "src")
    (site / "study" / "alias.py").symlink_to("counts.py")
    git(repo, "add", "src")
    git(repo, "commit", "-q", "-m", "a linked module")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    assert code_digests([f"{study.__version__}+git.{sha}"], site / "study") == {}
    (site / "study" / "alias.py").unlink()
    git(repo, "commit", "-qam", "no link")
    sha = git(repo, "rev-parse", "--short", "HEAD")
    assert code_digests([f"{study.__version__}+git.{sha}"], site / "study") == {
        f"{study.__version__}+git.{sha}": source_digest(site / "study")}
