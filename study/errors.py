"""The one error type the command line turns into a clear message and exit code 2, and the hints its messages use
("did you mean", the way out of an ASCII locale)."""
from __future__ import annotations

import difflib
import errno
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


def user_name(uid: int) -> str:
    """The login name of `uid`, or `uid <n>` where the system has none (a container's unnamed user)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def not_yours(e: OSError) -> str:
    """For a "Permission denied" on a file another user owns (or, where the file is not there, on the folder that
    would hold it), what a user sharing a workdir with others needs: `; <path> belongs to <owner> (<mode>) ...` and
    the way out; empty otherwise: no file named, the file (folder) this user's own or root's (a system folder, as
    `/opt` of `--workdir /opt/wd`, is no lab's workdir), or neither it nor its folder there to be seen."""
    if e.errno not in (errno.EACCES, errno.EPERM) or not e.filename \
            or not isinstance(e.filename, (str, bytes, os.PathLike)):  # an fd, as some calls name: no path
        return ""
    path = Path(os.fsdecode(e.filename))
    for p in (path, path.parent):
        try:
            st = p.stat()
        except OSError:
            continue
        break
    else:
        return ""
    if st.st_uid in (os.getuid(), 0):
        return ""
    owner = user_name(st.st_uid)
    return (f"; {p} belongs to {owner} ({stat.filemode(st.st_mode)}): a folder shared by several users (a lab's "
            f"workdir) needs each of them in one group with umask 002, so that what one writes the others may "
            f"write too; {owner} (or root) opens what is there now with `chmod -R g+w` on the workdir (here: "
            f"{p if p.is_dir() else p.parent}, at least)")


def did_you_mean(name: Any, known: Iterable[str], cutoff: float = 0.6, why: str = "") -> str:
    """`" (did you mean 'x'?<why>)"` for the closest known name at least `cutoff` alike (difflib's ratio), or
    ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?{why})" if close else ""
