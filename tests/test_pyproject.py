"""pyproject.toml agrees with itself and with what is installed: one Python floor for the package,
ruff and every dependency of every extra; each required dependency is used; data-only weight
packages are pinned exactly."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from gcnseg.models.backbones import efficientnet_lite

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIRED = [Requirement(r) for r in PROJECT["project"]["dependencies"]]
EXTRAS = {
    extra: [Requirement(r) for r in requirements]
    for extra, requirements in PROJECT["project"]["optional-dependencies"].items()
}
WEIGHTS_PACKAGES = {distribution for _, _, distribution in efficientnet_lite._VARIANTS.values()}


def _floor() -> str:
    match = re.fullmatch(r">=\s*(3\.\d+)", PROJECT["project"]["requires-python"])
    assert match, "requires-python should be a plain '>=3.N' floor"
    return match.group(1)


def test_ruff_targets_the_declared_floor() -> None:
    assert PROJECT["tool"]["ruff"]["target-version"] == "py" + _floor().replace(".", "")


def test_installed_requirements_allow_the_declared_floor() -> None:
    # An extra whose installed release needs a newer Python than the floor (a dev tool needing
    # 3.11 under a 3.10 floor) means the floor is not what these tests ran against.
    checked, refusing = [], []
    for requirement in REQUIRED + [r for rs in EXTRAS.values() for r in rs]:
        try:
            metadata = importlib.metadata.metadata(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an extra not installed here
        checked.append(requirement.name)
        allowed = metadata.get("Requires-Python")
        if allowed and _floor() not in SpecifierSet(allowed):
            refusing.append(f"{requirement.name} {metadata['Version']} needs Python {allowed}")
    assert {r.name for r in REQUIRED} <= set(checked)  # the package's own are always installed
    assert not refusing, f"declared floor {_floor()}: " + "; ".join(refusing)


def _imported_modules() -> set[str]:
    names = set()
    for path in (ROOT / "src" / "gcnseg").rglob("*.py"):
        names |= set(re.findall(r"^\s*(?:from|import)\s+(\w+)", path.read_text(), re.MULTILINE))
    return names


def test_every_required_dependency_is_used() -> None:
    modules = importlib.metadata.packages_distributions()
    provides: dict[str, set[str]] = {}
    for module, distributions in modules.items():
        for distribution in distributions:
            provides.setdefault(_normal(distribution), set()).add(module)
    imported = _imported_modules()
    unused = [
        r.name
        for r in REQUIRED
        if r.name not in WEIGHTS_PACKAGES and not provides.get(_normal(r.name), set()) & imported
    ]
    assert not unused, f"required but never imported: {unused}"


def test_weight_packages_are_pinned_exactly_and_never_imported() -> None:
    pinned = {r.name: str(r.specifier) for r in REQUIRED + EXTRAS["lite"]}
    for distribution in WEIGHTS_PACKAGES:
        assert re.fullmatch(r"==[\d.]+", pinned[distribution]), distribution
        module = distribution.replace("-", "_")
        assert module not in _imported_modules(), module


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_default_recipe_and_the_demo_train_on_a_base_install() -> None:
    """`gcnseg train` without --config, `gcnseg init` and `gcnseg demo` start from ImageNet
    weights: their backbones' weight packages are base requirements, not an extra's."""
    from gcnseg.config import DEFAULT_CONFIG, load_config
    from gcnseg.models.registry import model_entry

    base = {r.name for r in REQUIRED}
    for config in (DEFAULT_CONFIG, "pets_gcn_lite0"):  # the demo's
        backbone = model_entry(load_config(config).model.name).backbone
        assert efficientnet_lite._VARIANTS[backbone][2] in base, config


def test_each_lite_backbone_names_where_its_weights_are_installed() -> None:
    """`_EXTRA` (what a missing-weights error tells to install) agrees with pyproject: a weights
    package is a base requirement exactly when no extra is named for it, else in that extra."""
    base = {r.name for r in REQUIRED}
    for backbone, (_, _, distribution) in efficientnet_lite._VARIANTS.items():
        extra = efficientnet_lite._EXTRA.get(backbone)
        where = base if extra is None else {r.name for r in EXTRAS[extra]}
        assert distribution in where, (backbone, extra)
        assert (distribution in base) is (extra is None), backbone
