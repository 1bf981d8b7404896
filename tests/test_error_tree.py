"""The error tree drawn in budcluster.errors matches the classes the library defines."""

from __future__ import annotations

import importlib
import pkgutil
import re

import budcluster
from budcluster import errors


def _all_error_classes() -> dict[str, type[errors.BudClusterError]]:
    found: dict[str, type[errors.BudClusterError]] = {}
    for module in pkgutil.walk_packages(budcluster.__path__, "budcluster."):
        if module.name.endswith("__main__") or ".store.migrations" in module.name:
            continue
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, errors.BudClusterError)
                and value.__module__.startswith("budcluster.")
            ):
                found[value.__name__] = value
    return found


def _drawing() -> str:
    doc = errors.__doc__ or ""
    return doc[doc.index("The tree") : doc.index("tests/test_error_tree.py")]


def test_every_error_class_is_drawn() -> None:
    drawn = set(re.findall(r"\b[A-Z][A-Za-z0-9]+\b", _drawing()))
    missing = sorted(set(_all_error_classes()) - drawn)
    assert not missing, f"add these to the tree in budcluster/errors.py: {missing}"


def test_every_drawn_name_is_an_error_class() -> None:
    classes = _all_error_classes()
    words = set(re.findall(r"\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]+\b", _drawing()))
    unknown = sorted(words - set(classes))
    assert not unknown, f"the tree names classes that do not exist: {unknown}"


def test_the_permanent_and_temporary_marks_are_true() -> None:
    classes = _all_error_classes()
    for name, mark in re.findall(r"\b([A-Z][A-Za-z0-9]+) \(([PT])\)", _drawing()):
        expected = errors.PermanentError if mark == "P" else errors.TemporaryError
        assert issubclass(classes[name], expected), f"{name} is not {expected.__name__}"
