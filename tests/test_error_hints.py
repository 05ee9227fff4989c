"""study.errors: the hints a message uses (an OSError's reason, "did you mean", whose file was refused)."""
import errno
import os
import pwd
from pathlib import Path

from study.errors import did_you_mean, group_name, not_yours, os_reason

from other_user import another_users


def test_an_os_errors_reason_is_its_text_without_number_or_file_and_its_message_where_it_has_none():
    assert os_reason(PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/x")) == "Permission denied"
    assert os_reason(OSError("a message of its own")) == "a message of its own"
    assert os_reason(ValueError("bad")) == "bad"


def test_did_you_mean_names_a_name_at_least_as_alike_as_the_cutoff_and_adds_why():
    assert did_you_mean("simclrr", ["simclr", "byol"]) == " (did you mean 'simclr'?)"
    assert did_you_mean("mocov", ["byol", "simclr"]) == ""  # under 0.6 alike
    assert did_you_mean("JPEG", ["downsample", "jpeg", "none"]) == " (did you mean 'jpeg'?)"  # case alone
    assert did_you_mean("ImageNet", ["imagenet_val", "imagenet"]) == " (did you mean 'imagenet'?)"
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


def test_not_yours_gives_the_group_and_a_find_that_opens_the_owners_files_alone(tmp_path, monkeypatch):
    """The folder's group is this user's: the remedy is the owner's `chmod g+rwX` of their own files (a `chmod -R` of
    a tree several users wrote fails on every file of the others'), X also opening folders a umask 077 closed."""
    theirs = another_users(tmp_path / "theirs", monkeypatch)
    st = theirs.stat()
    monkeypatch.setattr(os, "getgroups", lambda: [st.st_gid])
    said = not_yours(PermissionError(errno.EACCES, "Permission denied", str(theirs / "ledgers")))
    owner = pwd.getpwuid(st.st_uid).pw_name if st.st_uid in {u.pw_uid for u in pwd.getpwall()} else None
    user_arg = owner or str(st.st_uid)  # find's -user: a name, or the number of a uid without one
    assert f"belongs to {owner or f'uid {st.st_uid}'}, group {group_name(st.st_gid)} (drwx" in said, said
    assert f"`find DIR -user {user_arg} -exec chmod g+rwX {{}} +`, DIR the shared folder (here: {theirs}, " \
           "at least)" in said, said
    assert "chgrp" not in said and "chmod -R" not in said


def test_not_yours_in_a_group_this_user_is_not_in_says_chgrp_and_the_setgid_bit(tmp_path, monkeypatch):
    """A workdir made without the setgid bit: what one user made has their own group, which `chmod g+w` opens to
    nobody else; the remedy gives it a shared group and the setgid bit on its folders."""
    theirs = another_users(tmp_path / "theirs", monkeypatch)
    gid = theirs.stat().st_gid
    monkeypatch.setattr(os, "getgid", lambda: gid + 1)
    monkeypatch.setattr(os, "getgroups", lambda: [gid + 1])
    said = not_yours(PermissionError(errno.EACCES, "Permission denied", str(theirs / "x.lock")))
    assert "), a group you are not in: " in said and "setgid bit" in said, said
    assert "-exec chgrp GROUP {} + -exec chmod g+rwX {} + -type d -exec chmod g+s {} +`" in said, said


def test_not_yours_names_the_nearest_folder_it_may_look_into_above_a_private_one(tmp_path, monkeypatch):
    """A workdir another user made under umask 077 (drwx------): neither the file nor its folder can be looked at
    (stat: Permission denied), so the hint names the nearest folder above them that can, the private one; a path
    that is not there two levels up still names none."""
    theirs = another_users(tmp_path / "theirs", monkeypatch)
    real_stat = Path.stat

    def stat(self, *args, **kwargs):
        if theirs in self.parents:  # behind the private folder: what a user other than its owner meets
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    said = not_yours(PermissionError(errno.EACCES, "Permission denied", str(theirs / "ledgers" / "g.jsonl")))
    assert said.startswith(f"; {theirs} belongs to "), said
    assert f"(here: {theirs}, at least)" in said, said
    monkeypatch.setattr(Path, "stat", real_stat)
    assert not_yours(PermissionError(errno.EACCES, "Permission denied", str(theirs / "a" / "b" / "c"))) == ""
