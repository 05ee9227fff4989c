"""A name -> object registry with "did you mean" errors, used for datasets, corruptions, methods, backbones."""
from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from study.errors import StudyError, did_you_mean

T = TypeVar("T")

# what a registered name may hold: it becomes a grid axis value, a results column, part of a corrupted manifest's
# name, and is joined by `|` (concatenated encoders), `+` (pooled sets) and `name:key=value,...` (corruption specs)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: `$` would let a trailing newline through
# what a manifest's name may hold (study.manifests.store, and a grid's datasets): a file name, and a word of the printed
# `study manifest` commands; `+` joins pooled sets, `.` a corruption's slug to its base
MANIFEST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=@-]*")
MANIFEST_NAME_MAX = 200  # bytes: `.<name>.lock` and an atomic write's `.<name>.parquet.<random>.tmp` stay below 255
MANIFEST_NAME_RULE = f"letters, digits and _ . + = @ - only, a letter or digit first, at most {MANIFEST_NAME_MAX}"


def is_manifest_name(name: object) -> bool:
    """Whether `name` may name a manifest (MANIFEST_NAME_RULE)."""
    return isinstance(name, str) and bool(MANIFEST_NAME_RE.fullmatch(name)) and len(name) <= MANIFEST_NAME_MAX


class Registry(Generic[T]):
    """Maps names to registered objects. `kind` names the registry in error messages ("method", "dataset")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._defined_at: dict[str, str] = {}

    def register(self, name: str, origin: object = None) -> Callable[[T], T]:
        """Decorator registering `obj` as `name`; ValueError for a name not of letters, digits, `_ . -`, or taken by
        an object defined elsewhere. The same definition again (its module and qualified name: a module reloaded, as
        a notebook's autoreload does) replaces the one before. `origin`: the function or class whose definition is
        `obj`'s where `obj` is an instance (a corruption's `apply`); `obj` itself by default."""
        def deco(obj: T) -> T:
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise ValueError(f"{self.kind} name {name!r}: letters, digits and _ . - only (a letter or digit "
                                 f"first)")
            where = _defined_at(obj if origin is None else origin)
            if name in self._items and self._defined_at[name] != where:
                raise ValueError(f"{self.kind} {name!r} registered twice: by {self._defined_at[name]} and by {where}")
            self._items[name] = obj
            self._defined_at[name] = where
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove `name` if registered (a test's throwaway registration, undone)."""
        self._items.pop(name, None)
        self._defined_at.pop(name, None)

    def get(self, name: str, where: str = "") -> T:
        """The object registered as `name`; a StudyError naming the closest known name otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise StudyError(self.unknown_message(name, where)) from None

    def unknown_message(self, name: str, where: str = "") -> str:
        loc = f"{where}: " if where else ""
        return (f"{loc}unknown {self.kind} {name!r}{did_you_mean(name, self._items)} "
                f"(known: {', '.join(sorted(self._items))})")

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)


def _defined_at(obj: object) -> str:
    """Where `obj` is defined, `module.qualified.name`; its repr for an object without those (an instance)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(obj)


def import_modules(package: str, path: Iterable[str]) -> None:
    """Import every module of `package` (its `__name__` and `__path__`) but private ones: each registers itself, so
    adding a method, reader or corruption is adding its file."""
    for info in pkgutil.iter_modules(list(path)):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
