"""``budcluster db``: migrate the results store (honours BUDCLUSTER_DATABASE_URL)."""

from __future__ import annotations

import typer

from budcluster.cli.errors import exits_on_error
from budcluster.settings import get_settings

app = typer.Typer(
    help="Create or migrate the results store's schema (BUDCLUSTER_DATABASE_URL).",
    no_args_is_help=True,
)

_URL_OPTION = typer.Option(
    None,
    "--database-url",
    help="SQLAlchemy URL of the store; defaults to BUDCLUSTER_DATABASE_URL or the SQLite file.",
    show_default=False,
)


def _target(database_url: str | None) -> tuple[str, str]:
    """The URL to use and its printable (password-masked) form."""
    from budcluster.store.engine import masked

    settings = get_settings()
    url = database_url or settings.resolved_database_url()
    return url, masked(url)


@app.command()
@exits_on_error()
def upgrade(
    revision: str = typer.Option("head", "--revision", help="Revision to upgrade to."),
    database_url: str | None = _URL_OPTION,
) -> None:
    """Create the schema, or bring it up to REVISION (default: head)."""
    from budcluster.store import migrate
    from budcluster.store.engine import EngineOptions

    url, shown = _target(database_url)
    typer.echo(f"store: {shown}")
    migrate.upgrade(url, revision, EngineOptions.from_settings(get_settings()))
    typer.echo(f"at revision: {migrate.current_revision(url) or 'base (empty)'}")


@app.command()
@exits_on_error()
def downgrade(
    revision: str = typer.Argument(..., help="Revision to go down to; 'base' drops everything."),
    database_url: str | None = _URL_OPTION,
) -> None:
    """Undo migrations down to REVISION. 'base' removes every table of the store."""
    from budcluster.store import migrate
    from budcluster.store.engine import EngineOptions

    url, shown = _target(database_url)
    typer.echo(f"store: {shown}")
    migrate.downgrade(url, revision, EngineOptions.from_settings(get_settings()))
    typer.echo(f"at revision: {migrate.current_revision(url) or 'base (empty)'}")


@app.command()
@exits_on_error()
def current(database_url: str | None = _URL_OPTION) -> None:
    """Print the store's URL (password masked), its revision and the newest revision."""
    from budcluster.store import migrate
    from budcluster.store.engine import EngineOptions

    url, shown = _target(database_url)
    typer.echo(f"store: {shown}")
    revision = migrate.current_revision(url, EngineOptions.from_settings(get_settings()))
    head = migrate.head_revision()
    typer.echo(f"revision: {revision or 'base (empty)'}")
    typer.echo(f"head: {head}" + ("" if revision == head else "  (run `budcluster db upgrade`)"))
