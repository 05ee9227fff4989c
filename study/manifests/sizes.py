"""Subset sizes as people write them: `50k`, `1M`, `2.5k`, or plain integers."""
from __future__ import annotations

from study.errors import StudyError

_UNITS = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str | int, where: str = "size") -> int:
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip().replace("_", "")
        unit = _UNITS.get(s[-1:].lower(), 1)
        number = s[:-1] if unit != 1 else s
        try:
            f = float(number)
        except ValueError:
            raise StudyError(f"{where}: {text!r} is not a size (e.g. 50k, 1M, 5000)") from None
        value = int(round(f * unit))
        if abs(f * unit - value) > 1e-6:
            raise StudyError(f"{where}: {text!r} is not a whole number of images")
    if value <= 0:
        raise StudyError(f"{where}: {text!r} must be a positive number of images")
    return value


def parse_sizes(text: str | None, where: str = "--sizes") -> list[int]:
    """Comma-separated sizes, sorted, each once. None or "" -> []."""
    if text is None or not str(text).strip():
        return []
    return sorted({parse_size(part, where) for part in str(text).split(",") if part.strip()})


def format_size(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)
