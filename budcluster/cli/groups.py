"""The list of command groups. Adding a group is one line here."""

from __future__ import annotations

import importlib

import typer

# (command name, module path). Each module exposes ``app: typer.Typer``.
_GROUPS: list[tuple[str, str]] = [
    ("hardware", "budcluster.cli.hardware"),
    ("plan", "budcluster.cli.plan"),
    ("keys", "budcluster.cli.keys"),
    ("credentials", "budcluster.cli.credentials"),
    ("blocks", "budcluster.cli.blocks_cmd"),
    ("db", "budcluster.cli.db"),
    ("bench", "budcluster.cli.bench"),
    ("demo-model", "budcluster.cli.demo"),
    ("lora", "budcluster.cli.lora"),
    ("model", "budcluster.cli.transfer"),
    ("cluster", "budcluster.cli.cluster"),
    ("secrets", "budcluster.cli.secrets"),
    ("catalogue", "budcluster.catalogue.cli"),
]


def all_groups() -> list[tuple[str, typer.Typer]]:
    groups = []
    for name, module_path in _GROUPS:
        module = importlib.import_module(module_path)
        groups.append((name, module.app))
    return groups
