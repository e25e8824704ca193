"""Counts safe to publish: a count below the threshold is shown as a range ("1〜2"), and
every total that includes such a cell is a range too.

Each printed figure is then computed only from the counts at or above the threshold and
from *which* cells were small — never from the small values themselves — so no subtraction
of printed figures (a row total minus the other cells, a grand total minus the rows) can
tell a hidden 1 from a hidden 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

SMALL_COUNT = 3


@dataclass(frozen=True)
class Shown:
    """A published count: exact when low == high, else a range."""

    low: int
    high: int

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        return str(self.low) if self.exact else f"{self.low}〜{self.high}"

    def __add__(self, other: "Shown") -> "Shown":
        return Shown(self.low + other.low, self.high + other.high)


ZERO = Shown(0, 0)


def shown(n: int, threshold: int = SMALL_COUNT) -> Shown:
    """One count as it may be published."""
    if n <= 0:
        return ZERO
    if n < threshold:
        return Shown(1, threshold - 1)
    return Shown(n, n)


def total(cells: Iterable[Shown]) -> Shown:
    """The total of published cells: a range whenever one of them is."""
    result = ZERO
    for cell in cells:
        result = result + cell
    return result
