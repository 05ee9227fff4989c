"""The one error type the command line turns into a clear message and exit code 2, and the hints its messages use
("did you mean", the way out of an ASCII locale)."""
from __future__ import annotations

import difflib
import errno
import functools
import grp
import os
import pwd
import stat
from pathlib import Path
from typing import Any, Iterable


class StudyError(Exception):
    """Bad input or state the user can fix. The message names the file, line or key at fault."""

    exit_code = 2


# what a message says where Python's locale encoding is not UTF-8 (LC_ALL=C with PYTHONUTF8=0)
UTF8_LOCALE_ADVICE = "run study in a UTF-8 locale (LC_ALL=C.UTF-8) or with PYTHONUTF8=1"


def os_reason(e: BaseException) -> str:
    """Why an operation failed, for a message that names the file itself: an OSError's reason alone ("Permission
    denied", not "[Errno 13] Permission denied: '/data/...'"), any other error's text."""
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


@functools.lru_cache(maxsize=None)
def user_name(uid: int) -> str:
    """The login name of `uid`, or `uid <n>` where the system has none (a container's unnamed user); looked up once
    per process (a status names the user of each live job: one directory lookup, not one per job, on LDAP)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def not_yours(e: OSError) -> str:
    """For a "Permission denied" on a file another user owns (or, where the file is not there, on the folder that
    would hold it; where neither can be looked at, on the nearest folder above them that can: one made private, by
    umask 077), what a user sharing a workdir with others needs: `; <path> belongs to <owner>, group <group>
    (<mode>) ...` and the way out (`chmod g+rwX` of the owner's files where the group is one of this user's,
    `chgrp` too where it is not: a folder without the setgid bit gives what is made in it its maker's own group);
    empty otherwise: no file named, the file (folder) this user's own or root's (a system folder, as `/opt` of
    `--workdir /opt/wd`, is no lab's workdir), or neither it nor its folder there."""
    if e.errno not in (errno.EACCES, errno.EPERM) or not e.filename \
            or not isinstance(e.filename, (str, bytes, os.PathLike)):  # an fd, as some calls name: no path
        return ""
    path = Path(os.fsdecode(e.filename))
    for p in (path, *path.parents):
        try:
            st = p.stat()
        except PermissionError:  # behind a folder this user may not search: that folder is the one to name
            continue
        except OSError:
            if p == path:
                continue  # a file not there: its folder
            return ""
        break
    else:
        return ""
    if st.st_uid in (os.getuid(), 0):
        return ""
    owner, group, here = user_name(st.st_uid), group_name(st.st_gid), p if p.is_dir() else p.parent
    theirs = f"-user {st.st_uid if owner.startswith('uid ') else owner}"  # find's: a name, or the uid of none
    said = f"; {p} belongs to {owner}, group {group} ({stat.filemode(st.st_mode)})"
    if st.st_gid in {os.getgid(), *os.getgroups()}:
        return (f"{said}: a folder shared by several users (a lab's workdir) needs each of them in one group with "
                f"umask 002, so that what one writes the others may write too; {owner} (or root) opens what is "
                f"there now with `find DIR {theirs} -exec chmod g+rwX {{}} +`, DIR the shared folder (here: "
                f"{here}, at least)")
    return (f"{said}, a group you are not in: a folder shared by several users (a lab's workdir) needs to be of a "
            f"group they are all in, with the setgid bit on its folders (what is made in one takes its group, not "
            f"its maker's own), and each of them with umask 002; {owner} (or root) mends what is there now with "
            f"`find DIR {theirs} -exec chgrp GROUP {{}} + -exec chmod g+rwX {{}} + -type d -exec chmod g+s {{}} "
            f"+`, GROUP a group you share and DIR the shared folder (here: {here}, at least)")


def group_name(gid: int) -> str:
    """The name of group `gid`, or `gid <n>` where the system has none."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def did_you_mean(name: Any, known: Iterable[str], cutoff: float = 0.6, why: str = "") -> str:
    """`" (did you mean 'x'?<why>)"` for the known name that differs from `name` in case alone, else the closest
    one at least `cutoff` alike (difflib's ratio), or ``""``."""
    known = list(known)
    close = [k for k in known if str(k).casefold() == str(name).casefold()][:1] \
        or difflib.get_close_matches(str(name), known, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?{why})" if close else ""
