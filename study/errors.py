"""The one error type the command line turns into a clear message and exit code 2, and the "did you mean" hint its
messages use."""
from __future__ import annotations

import difflib
from typing import Any, Iterable


class StudyError(Exception):
    """Bad input or state the user can fix. The message names the file, line or key at fault."""

    exit_code = 2


def did_you_mean(name: Any, known: Iterable[str], cutoff: float = 0.6, why: str = "") -> str:
    """`" (did you mean 'x'?<why>)"` for the closest known name at least `cutoff` alike (difflib's ratio), or
    ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?{why})" if close else ""
