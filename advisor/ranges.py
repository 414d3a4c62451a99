"""Lists of numbers (ranks, steps) as short ranges: 64 ranks or 69 steps stay one short line."""

from __future__ import annotations

from collections.abc import Iterable


def number_ranges(numbers: Iterable[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0–3, 7'; [12, 14, 15, 16] -> '12, 14–16' (sorted, repeats dropped)."""
    values = sorted({int(n) for n in numbers})
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if j == i else f"{values[i]}–{values[j]}")
        i = j + 1
    return ", ".join(parts)
