"""`lazy_names(package, source, names, exported)`: a package's names imported from one of its modules on first use
(PEP 562), so that importing the package imports nothing heavy (torch, matplotlib) until they are asked for."""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable


def lazy_names(package: str, source: str, names: Iterable[str],
               exported: Iterable[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of package `package`: each of `names` read from module `source` when asked
    for (each time: a test's patch of `source` is seen); `dir()`, `help()` and a notebook's tab completion list the
    package's own names and `exported` (its `__all__`) before their first use."""
    names, exported = frozenset(names), tuple(exported)

    def __getattr__(name: str) -> object:
        if name in names:
            return getattr(importlib.import_module(source), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exported})

    return __getattr__, __dir__
