"""How to install an optional extra, said for the way this gcnseg was installed.

gcnseg comes from a clone or a wheel, not from a package index, so `pip install 'gcnseg[serve]'`
would find nothing (or someone else's project). Running from a clone (editable or on PYTHONPATH),
the hint installs the extra from that clone; otherwise it names the extra's own requirements.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import gcnseg


def install_hint(*extras: str) -> str:
    """A pip command that installs `extras` (names from pyproject.toml) for this gcnseg."""
    clone = source_checkout()
    if clone is not None:
        return f"pip install -e '{clone}[{','.join(extras)}]'"
    requirements = extra_requirements(extras)
    if requirements:
        return "pip install " + " ".join(f"'{r}'" for r in requirements)
    return f"install gcnseg's {'/'.join(extras)} extra (listed in its pyproject.toml)"


def source_checkout() -> Path | None:
    """The clone this gcnseg runs from (src layout: <clone>/src/gcnseg), or None for a wheel."""
    root = Path(gcnseg.__file__).resolve().parents[2]
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if project.get("project", {}).get("name") == "gcnseg" else None


def extra_requirements(extras: tuple[str, ...]) -> list[str]:
    """The requirements the installed gcnseg metadata lists for `extras`, in order, once each."""
    try:
        requires = importlib.metadata.requires("gcnseg") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    found: list[str] = []
    for entry in requires:
        requirement, _, marker = entry.partition(";")
        named = {m.group(1) for m in re.finditer(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)}
        if named & set(extras) and requirement.strip() not in found:
            found.append(requirement.strip())
    return found
