"""study.errors: the hints a message uses (an OSError's reason, "did you mean", whose file was refused)."""
import errno
import os
from pathlib import Path

from study.errors import did_you_mean, not_yours, os_reason


def test_an_os_errors_reason_is_its_text_without_number_or_file_and_its_message_where_it_has_none():
    assert os_reason(PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/x")) == "Permission denied"
    assert os_reason(OSError("a message of its own")) == "a message of its own"
    assert os_reason(ValueError("bad")) == "bad"


def test_did_you_mean_names_a_name_at_least_as_alike_as_the_cutoff_and_adds_why():
    assert did_you_mean("simclrr", ["simclr", "byol"]) == " (did you mean 'simclr'?)"
    assert did_you_mean("mocov", ["byol", "simclr"]) == ""  # under 0.6 alike
    assert did_you_mean("imagenet", ["imagenet1k"], cutoff=0.8, why=" it is in the grid") \
        == " (did you mean 'imagenet1k'? it is in the grid)"


def test_not_yours_names_another_users_file_or_its_folder_but_no_system_folder_nor_one_further_up(tmp_path,
                                                                                                    monkeypatch):
    """The owner of the refused file, or of the folder a new one goes in (a str, bytes or Path name); not root's
    folder of a `--workdir /usr/wd` (`chmod -R g+w /usr` is no remedy), nor a folder two levels up from a path that
    is not there, nor a name that is a file descriptor."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    if os.geteuid() == 0:
        os.chown(theirs, 4242, -1)  # another user's, where the test may make it so
    monkeypatch.setattr(os, "getuid", lambda: theirs.stat().st_uid + 1)

    def denied(name):
        return not_yours(PermissionError(errno.EACCES, "Permission denied", name))

    for name in (str(theirs / "ledgers"), os.fsencode(theirs / "ledgers"), theirs / "ledgers"):
        assert denied(name).startswith(f"; {theirs} belongs to "), name
        assert f"(here: {theirs}, at least)" in denied(name), name
    assert denied(str(theirs / "a" / "b" / "c")) == ""  # neither it nor its folder there: no owner to name
    assert Path("/usr").stat().st_uid == 0 and denied("/usr/wd") == ""
    assert not_yours(PermissionError(errno.EACCES, "Permission denied", 3)) == ""
    assert not_yours(PermissionError(errno.EACCES, "Permission denied")) == ""
