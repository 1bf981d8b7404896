"""Every package says what it exports: ``__all__`` exists, is sorted, and is exactly the
public names the package binds (after httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

ROOTS = ("budcluster", "blocks", "tasks", "flows")
# What ``from __future__ import annotations`` binds in a package that uses it.
FUTURE_ANNOTATIONS = importlib.import_module("__future__").annotations


def _packages() -> list[str]:
    # Only packages are imported: walk_packages imports a package to look inside it, and
    # plain modules (flows, Prefect tasks) are never loaded by this walk.
    found: list[str] = []
    for root in ROOTS:
        package = importlib.import_module(root)
        found.append(root)
        found.extend(
            info.name for info in pkgutil.walk_packages(package.__path__, f"{root}.") if info.ispkg
        )
    return found


PACKAGES = _packages()


def _public_names(module: ModuleType) -> set[str]:
    """Names the package binds that a reader would take for its API.

    Submodules are attributes of their package once anything imports them, and
    ``annotations`` is what ``from __future__ import annotations`` leaves behind.
    """
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and value is not FUTURE_ANNOTATIONS
    }


def _ruff_order(name: str) -> tuple[int, list[int | str]]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the
    rest, each group in natural order (digits compare as numbers)."""
    if len(name) > 1 and name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return group, natural


def test_the_walk_finds_the_packages() -> None:
    # A broken walk (wrong path, wrong prefix) would make every check below vacuous.
    assert {"budcluster", "budcluster.store", "budcluster.targets.kubernetes"} <= set(PACKAGES)
    assert "budcluster.store.engine" not in PACKAGES


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_a_sorted_list_without_duplicates(package: str) -> None:
    module = importlib.import_module(package)
    assert "__all__" in vars(module), f"{package}/__init__.py has no __all__"
    exported = module.__all__
    assert isinstance(exported, list), f"{package}.__all__ is a {type(exported).__name__}"
    assert len(exported) == len(set(exported)), f"{package}.__all__ lists a name twice"
    assert exported == sorted(exported, key=_ruff_order), f"{package}.__all__ is not sorted"


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_exist(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what the package does not bind: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_exported(package: str) -> None:
    module = importlib.import_module(package)
    unexported = sorted(_public_names(module) - set(module.__all__))
    assert not unexported, (
        f"{package} binds public names missing from __all__: {unexported}; "
        "export them or rename them with a leading underscore"
    )


def test_ruff_order_matches_what_ruff_writes() -> None:
    # The orders `ruff check --select RUF022 --fix` writes for these lists.
    names = ["check_name", "HostsTarget", "RUN_DIR_TOKEN", "host_argv", "HostsConfigError"]
    assert sorted(names, key=_ruff_order) == [
        "RUN_DIR_TOKEN",
        "HostsConfigError",
        "HostsTarget",
        "check_name",
        "host_argv",
    ]
    assert sorted(["v10", "v2", "V"], key=_ruff_order) == ["V", "v2", "v10"]
