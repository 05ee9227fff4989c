"""Subset sizes on the manifest commands' flags: study.counts' grammar, errors as StudyError naming the flag."""
from __future__ import annotations

from study.counts import parse_count
from study.errors import StudyError


def parse_size(text: str | int, where: str = "size") -> int:
    """A positive count (`50k`, `1M`, `2.5k`, `5000`); StudyError naming `where` otherwise."""
    try:
        return parse_count(text, minimum=1)
    except ValueError as e:
        raise StudyError(f"{where}: not a size: {e}") from None


def parse_sizes(text: str | None, where: str = "--sizes") -> list[int]:
    """Comma-separated sizes, sorted, each once. None or "" -> []."""
    if text is None or not str(text).strip():
        return []
    return sorted({parse_size(part, where) for part in str(text).split(",") if part.strip()})
