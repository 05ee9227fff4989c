"""A spy on os.replace, for tests of files written whole (a temporary renamed onto the name: study.atomic)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def renames_onto(monkeypatch, path: Path, read: Callable[[Path], Any]) -> list[tuple[Any, Any]]:
    """From now on, each rename onto `path` first appends (read(path), read(the temporary)) to the list returned:
    what a reader saw up to the rename, and what it sees after."""
    seen, rename = [], os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst) == str(path):
            seen.append((read(Path(dst)), read(Path(src))))
        rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return seen
