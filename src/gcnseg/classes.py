"""The vocabulary every room shares: a class set with its drawing colours, and the ignore index."""

from __future__ import annotations

from dataclasses import dataclass

from gcnseg.errors import GcnsegError

IGNORE_INDEX = 255  # label value of pixels that are never scored nor trained on


@dataclass(frozen=True)
class ClassSet:
    """Class names and their RGB drawing colours; index 0 is usually background."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise GcnsegError(f"{len(self.names)} class names but {len(self.colors)} colours")
        if not 1 <= len(self.names) <= IGNORE_INDEX:
            raise GcnsegError(f"need between 1 and {IGNORE_INDEX} classes, got {len(self.names)}")

    def to_dict(self) -> dict:
        return {"names": list(self.names), "colors": [list(c) for c in self.colors]}

    @classmethod
    def from_dict(cls, data: dict) -> ClassSet:
        names = tuple(str(n) for n in data["names"])
        colors = data.get("colors") or default_colors(len(names))
        return cls(names, tuple(tuple(int(v) for v in c) for c in colors))


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours from matplotlib's tab20, black for class 0 (background)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    colors = [(0, 0, 0)]
    colors += [tuple(int(255 * v) for v in cmap(i % 20)[:3]) for i in range(n - 1)]
    return colors
