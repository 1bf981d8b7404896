"""Root of the ``budcluster`` command. Each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="budcluster",
    help="Local operations for bud-serve-cluster: keys, credentials, store, hardware, plans, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold decrypted secrets
)


def _register_groups() -> None:
    # Sub-apps are imported here, not at module top, so `budcluster --help` stays fast
    # and a group's heavy imports load only when that group is used.
    from budcluster.cli import groups

    for name, sub_app in groups.all_groups():
        app.add_typer(sub_app, name=name)


_register_groups()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
