"""YAML read with the safe loader, keeping the line of every key and list item for error messages.

`load_yaml(path)` returns plain Python values in which mappings are `YMap` (a dict with `.line` and
`.key_lines`) and sequences are `YList` (a list with `.line` and `.item_lines`). Duplicate keys are an error.
`fail(path, line, msg)` builds the `path:line: msg` StudyError every grid and profile error uses. Clock-like
scalars (`30:00`, `12:00:00`) stay strings (YAML 1.1 would read them as base-60 integers).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from study.errors import StudyError, did_you_mean, os_reason

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YMap(dict):
    """A mapping from YAML: `.line` (1-based line of the mapping) and `.key_lines[key]` (line of each key)."""

    line: int = 0

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class YList(list):
    """A sequence from YAML: `.line` and `.item_lines[i]`."""

    line: int = 0

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, i: int) -> int:
        return self.item_lines[i] if 0 <= i < len(self.item_lines) else self.line

    @classmethod
    def single(cls, item: Any, line: int) -> YList:
        """A list of `item` alone, it and the list at `line`: one value written where a list may be."""
        out = cls([item])
        out.line, out.item_lines = line, [line]
        return out


class _LineLoader(_Base):  # type: ignore[misc,valid-type]
    """yaml's safe loader, but mappings and lists remember their lines."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> YMap:
    own = {id(k) for k, _ in node.value}  # written in this mapping; the rest come from a `<<` merge
    loader.flatten_mapping(node)  # merged pairs first, in precedence order, then this mapping's own
    out = YMap()
    out.line = node.start_mark.line + 1
    merged: set = set()  # keys whose value so far came from a merge: a later pair overrides them
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):  # every key of a grid or profile names something: YAML reads `on`, `no`,
            # `1` or `2020-01-01` unquoted as other types, which would fail later without a line
            raise StudyError(f"{loader.name}:{line}: key {key!r} is not text"
                             + (f" (YAML reads `{key_node.value}` as {type(key).__name__})"
                                if isinstance(key_node, yaml.ScalarNode) else "")
                             + ": quote it, or write the key meant")
        if key in out and key not in merged:
            raise StudyError(f"{loader.name}:{line}: duplicate key {key!r} (first at line {out.key_lines[key]})")
        merged.discard(key)
        if id(key_node) not in own:
            merged.add(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> YList:
    out = YList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
# YAML 1.1 reads `12:00:00` as the base-60 integer 43200; a Slurm time limit is meant: keep such scalars strings
_LineLoader.yaml_implicit_resolvers = {k: list(v) for k, v in _Base.yaml_implicit_resolvers.items()}
for _digit in "0123456789":
    _LineLoader.yaml_implicit_resolvers.setdefault(_digit, []).insert(
        0, ("tag:yaml.org,2002:str", re.compile(r"^[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")))
# YAML 1.1 reads `1e-3` (no dot), `2.5e5` and `1.0e7` (no exponent sign) as strings; YAML 1.2, and everyone writing
# a learning rate or a rate, means a float
_EXPONENT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")
for _first in "-+.0123456789":
    _LineLoader.yaml_implicit_resolvers.setdefault(_first, []).append(("tag:yaml.org,2002:float", _EXPONENT))


def load_yaml(path: str | Path) -> Any:
    """Parse `path` with the safe loader; a StudyError naming the file (and line) if it is missing or malformed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise StudyError(f"{path}: not UTF-8 text (byte {e.start}); a grid or profile is a YAML file") from None
    except OSError as e:
        raise StudyError(f"{path}: cannot read ({os_reason(e)})") from None
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = e.problem or e.context
        if (problem or "").startswith("found undefined alias"):  # PyYAML's words name it, libyaml's do not
            problem = "found undefined alias" + _alias_hint(text, mark)
        raise StudyError(f"{path}{line}: invalid YAML: {problem}" + _context_hint(e) + _tab_hint(text, mark)) \
            from None
    except yaml.YAMLError as e:
        raise StudyError(f"{path}: invalid YAML: {e}") from None
    finally:
        loader.dispose()


def _alias_hint(text: str, mark: Any) -> str:
    """For an undefined alias at `mark`: the alias, and the anchors defined before it."""
    if mark is None:
        return ""
    lines = text.splitlines()
    found = re.match(r"\*([^\s,\[\]{}]+)", lines[mark.line][mark.column:]) if mark.line < len(lines) else None
    if not found:
        return ""
    above = list(dict.fromkeys(re.findall(r"&([^\s,\[\]{}]+)", "\n".join(lines[:mark.line + 1]))))
    marked = f"the anchors above it: {', '.join(above)}" if above else "no anchor is above it"
    alias = found.group(1)
    return f" *{alias}{did_you_mean(alias, above)} (`*name` repeats a value marked `&name` above; {marked})"


def _context_hint(e: yaml.MarkedYAMLError) -> str:
    """Where an unclosed `{`, `[` or quote began, when that is another line (the parser finds it lines later, at
    the next key)."""
    if not e.problem or not any(w in (e.context or "") for w in ("flow", "quoted")) or e.context_mark is None \
            or e.problem_mark is None or e.context_mark.line == e.problem_mark.line:
        return ""
    return f" ({e.context} begun at line {e.context_mark.line + 1})"


def _tab_hint(text: str, mark: Any) -> str:
    """For an error on a line indented with a tab (the parser says only "found character that cannot start any
    token"): what is wrong."""
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines):
        return ""
    here = lines[mark.line]
    return " (a tab indents this line: YAML indents with spaces)" if "\t" in here[:len(here) - len(here.lstrip())] \
        else ""


def at(path: Any, line: int | None) -> str:
    """`path:line`, or `path` when the line is unknown: where a message points in a grid or profile file."""
    return f"{path}:{line}" if line else str(path)


def fail(path: Any, line: int | None, msg: str) -> StudyError:
    """The StudyError `path:line: msg` (line left out when unknown)."""
    return StudyError(f"{at(path, line)}: {msg}")


def check_keys(path: Any, m: YMap, known: Iterable[str], what: str = "key", required: Iterable[str] = ()) -> None:
    """Raise on the first key of `m` not in `known` (with a suggestion), or a missing required key."""
    known = list(known)
    for key in m:
        if key not in known:
            raise fail(path, m.line_of(key), f"unknown {what} {key!r}{did_you_mean(key, known)}"
                                             f" (known: {', '.join(known)})")
    for key in required:
        if key not in m:
            raise fail(path, m.line, f"missing required key {key!r}")
