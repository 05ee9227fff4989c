"""`study report` on a compute node whose home folder is read-only or missing: matplotlib's config and font cache go
to the project's cache ($STUDY_CACHE), not a temporary folder with a warning on every report, nor a home made anew."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from report_records import quantity_records, write_all

from study.paths import home_folder_writable, matplotlib_config_dir

REPO = Path(__file__).resolve().parents[2]
HOME_VARIABLES = ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")


def test_a_report_with_a_missing_home_writes_nothing_there_and_says_nothing_of_matplotlib(tmp_path):
    """HOME names a folder that does not exist (root could make it; a user could not): the report is drawn, no
    matplotlib warning, the home is not made, matplotlib's font list is kept in the cache for the next report, and
    nothing is left in $TMPDIR."""
    write_all(tmp_path / "w", quantity_records())
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in HOME_VARIABLES}
    env.update(HOME=str(tmp_path / "absent" / "home"), TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(REPO),
               STUDY_CACHE=str(tmp_path / "cache"))
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "study", "report", "g", "--workdir", "w", "--out", "r"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "atplotlib" not in out.stderr and "mkdir" not in out.stderr
    assert (tmp_path / "r" / "index.html").exists()
    assert not (tmp_path / "absent").exists()
    assert [p.name for p in (tmp_path / "cache" / "matplotlib").glob("fontlist-*.json")] != []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_matplotlib_keeps_a_writable_home_and_a_folder_the_user_names(tmp_path, monkeypatch):
    """A home that exists and can be written is matplotlib's as before (a user's matplotlibrc there is read); an
    MPLCONFIGDIR set by the user is kept whatever the home."""
    for name in HOME_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert home_folder_writable("XDG_CONFIG_HOME", ".config", "matplotlib") and matplotlib_config_dir() is None
    monkeypatch.setenv("HOME", str(tmp_path / "absent" / "home"))
    assert matplotlib_config_dir() == tmp_path / "cache" / "matplotlib"
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mine"))
    assert matplotlib_config_dir() is None
    assert not (tmp_path / "cache").exists() and not (tmp_path / "absent").exists()  # it only says where


def test_a_read_only_home_or_cache_base_is_not_writable(tmp_path, monkeypatch):
    """A home mounted read-only (os.access says so, for root too: EROFS) is no place for matplotlib's folders, nor
    is an XDG_CACHE_HOME that cannot be written while the config folder can; STUDY_CACHE unset, the project's
    ./.cache, absolute."""
    for name in HOME_VARIABLES + ("STUDY_CACHE",):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == home else real_access(p, mode))
    assert not home_folder_writable("XDG_CONFIG_HOME", ".config", "matplotlib")
    assert matplotlib_config_dir() == tmp_path / ".cache" / "matplotlib"
    (home / ".config").mkdir()
    assert home_folder_writable("XDG_CONFIG_HOME", ".config", "matplotlib")
    assert not home_folder_writable("XDG_CACHE_HOME", ".cache", "matplotlib")
    assert matplotlib_config_dir() == tmp_path / ".cache" / "matplotlib"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert matplotlib_config_dir() is None


def test_a_home_folder_linked_to_storage_the_node_lacks_or_a_read_only_matplotlib_folder_is_not_writable(
        tmp_path, monkeypatch):
    """`~/.cache` a link to a scratch folder this node does not mount: matplotlib follows the link and, as root,
    made the folders anew there (else warned); `~/.config/matplotlib` not writable in a writable `~/.config`:
    matplotlib warned of it. Both go to the project's cache; a link to a folder that exists is matplotlib's."""
    for name in HOME_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDY_CACHE", str(tmp_path / "cache"))
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (home / ".cache").symlink_to(tmp_path / "scratch" / "user" / ".cache")
    assert not home_folder_writable("XDG_CACHE_HOME", ".cache", "matplotlib")
    assert matplotlib_config_dir() == tmp_path / "cache" / "matplotlib"
    (tmp_path / "scratch" / "user").mkdir(parents=True)  # the scratch mounted: matplotlib makes its folder there
    assert home_folder_writable("XDG_CACHE_HOME", ".cache", "matplotlib") and matplotlib_config_dir() is None
    (home / ".config" / "matplotlib").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != home / ".config" / "matplotlib" and real_access(p, mode))
    assert not home_folder_writable("XDG_CONFIG_HOME", ".config", "matplotlib")
    assert matplotlib_config_dir() == tmp_path / "cache" / "matplotlib"
