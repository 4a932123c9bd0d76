"""The vocabulary every room shares: a class set with its drawing colours, and the ignore index."""

from __future__ import annotations

from dataclasses import dataclass

from gcnseg.errors import GcnsegError

IGNORE_INDEX = 255  # label value of pixels that are never scored nor trained on


CLASS_KEYS = ("names", "colors", "background")


@dataclass(frozen=True)
class ClassSet:
    """Class names and their RGB drawing colours. No class is special unless `background` names
    one (its index): drawings leave that class transparent and out of legends; every other
    class, class 0 included, is painted."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    background: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.names) <= IGNORE_INDEX:
            raise GcnsegError(f"need between 1 and {IGNORE_INDEX} classes, got {len(self.names)}")
        for name in self.names:
            if not isinstance(name, str) or not name.strip():
                raise GcnsegError(f"class names must be non-empty strings, got {name!r}")
        duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
        if duplicates:
            raise GcnsegError(f"class names must be unique; repeated: {', '.join(duplicates)}")
        if len(self.names) != len(self.colors):
            raise GcnsegError(f"{len(self.names)} class names but {len(self.colors)} colours")
        for name, color in zip(self.names, self.colors, strict=True):
            if not is_rgb(color):
                raise GcnsegError(
                    f"colour of {name!r} must be three integers in 0-255 (R, G, B), got {color!r}"
                )
        if self.background is not None and not (
            isinstance(self.background, int) and 0 <= self.background < len(self.names)
        ):
            raise GcnsegError(f"background must be a class index, got {self.background!r}")

    def to_dict(self) -> dict:
        """Names, colours and the background class's name (null when none is background)."""
        background = None if self.background is None else self.names[self.background]
        return {
            "names": list(self.names),
            "colors": [list(c) for c in self.colors],
            "background": background,
        }

    @classmethod
    def from_dict(cls, data: object) -> ClassSet:
        """From `{names: [...], colors: [[r, g, b], ...], background: NAME}` (colours and
        background optional), checked strictly: `names: background cat dog` is one string, not
        three classes, and an unknown key is a typo, not something to ignore.

        `background: null` means no class is background. Without the key (class sets saved
        before it existed) a class literally named "background" is the background."""
        if not isinstance(data, dict) or "names" not in data:
            raise GcnsegError("expected a mapping with `names: [...]` (and optional `colors`)")
        unknown = [str(key) for key in data if key not in CLASS_KEYS]
        if unknown:
            raise GcnsegError(f"unknown key {unknown[0]!r} (known: {', '.join(CLASS_KEYS)})")
        names = data["names"]
        if not isinstance(names, list | tuple):
            raise GcnsegError(f"names must be a list like [background, cat], got {names!r}")
        colors = data.get("colors")
        if colors is None:
            colors = default_colors(len(names))
        elif not isinstance(colors, list | tuple) or not all(
            isinstance(c, list | tuple) for c in colors
        ):
            raise GcnsegError(f"colors must be a list of [R, G, B] triples, got {colors!r}")
        if "background" in data:
            background = data["background"]
            if background is not None and background not in names:
                raise GcnsegError(
                    f"background must name one of the classes ({', '.join(map(str, names))}) "
                    f"or be null, got {background!r}"
                )
        else:
            background = "background" if "background" in names else None
        index = None if background is None else list(names).index(background)
        return cls(tuple(names), tuple(tuple(c) for c in colors), index)


def is_rgb(color: object) -> bool:
    return (
        isinstance(color, list | tuple)
        and len(color) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)
    )


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours from matplotlib's tab20 after black for class 0 (usually background)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    colors = [(0, 0, 0)]
    colors += [tuple(int(255 * v) for v in cmap(i % 20)[:3]) for i in range(n - 1)]
    return colors
