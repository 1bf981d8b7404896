"""One error handler for every ``budcluster`` command: one ``error:`` line, a code by class."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from pydantic import BaseModel
from typer.main import get_command
from typer.testing import CliRunner

from budcluster.cli.app import app as root_app
from budcluster.cli.errors import (
    CREDENTIALS_EXIT_CODES,
    EXIT_CODES,
    EXIT_CODES_ATTRIBUTE,
    MODEL_EXIT_CODES,
    CommandFailed,
    ExitCode,
    ExitCodes,
    UsageError,
    exits_on_error,
)
from budcluster.errors import (
    BudClusterError,
    ConfigurationError,
    PermanentError,
    TemporaryError,
)
from budcluster.store.errors import NotFound, StoreUnavailable
from budcluster.transfer.console import EXIT_PERMANENT, EXIT_TEMPORARY


class Form(BaseModel):
    port: int


def _app(error: Exception, table: ExitCodes = EXIT_CODES) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @exits_on_error(table)
    def fail(
        token: str = typer.Option("hunter2", help="A value that must never be printed."),
    ) -> None:
        """Raise the error under test."""
        raise error

    @app.command()
    def other() -> None:
        """Keeps ``fail`` a subcommand."""

    return app


def _invoke(error: Exception, table: ExitCodes = EXIT_CODES) -> Any:
    return CliRunner().invoke(_app(error, table), ["fail"])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigurationError("bad --x"), 2),
        (UsageError("set X"), 2),
        (PermanentError("refused"), 1),
        (NotFound("no cluster named 'lab'"), 1),
        (StoreUnavailable("database unavailable"), 1),
        (TemporaryError("later"), 1),
        (CommandFailed("could not start"), 1),
        (BudClusterError("plain"), 1),
    ],
)
def test_the_default_table(error: Exception, code: int) -> None:
    result = _invoke(error)
    assert result.exit_code == code
    assert isinstance(result.exception, SystemExit)
    assert result.stderr == f"error: {error}\n"
    assert "Traceback" not in result.output and "hunter2" not in result.output


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigurationError("an inventory with a password"), 1),
        (ValueError("the inventory is empty"), 1),
        (UsageError("set AWS_ACCESS_KEY_ID"), 2),
        (PermanentError("wrong key"), 1),
    ],
)
def test_credentials_table(error: Exception, code: int) -> None:
    assert _invoke(error, CREDENTIALS_EXIT_CODES).exit_code == code


def test_model_table_matches_the_transfer_console() -> None:
    assert MODEL_EXIT_CODES.code_for(PermanentError("x")) == EXIT_PERMANENT
    assert MODEL_EXIT_CODES.code_for(ConfigurationError("x")) == EXIT_PERMANENT
    assert MODEL_EXIT_CODES.code_for(TemporaryError("x")) == EXIT_TEMPORARY
    assert ExitCode.TEMPORARY == EXIT_TEMPORARY


def test_a_validation_error_names_fields_not_the_input() -> None:
    with pytest.raises(ValueError) as info:
        Form.model_validate({"port": "secret-value"})
    result = _invoke(info.value, CREDENTIALS_EXIT_CODES)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid Form: port: ")
    assert "secret-value" not in result.output


def test_one_line_folds_a_multi_line_message() -> None:
    result = _invoke(ConfigurationError("first\n  second"), CREDENTIALS_EXIT_CODES)
    assert result.stderr == "error: first second\n"
    assert _invoke(ConfigurationError("first\nsecond")).stderr == "error: first\nsecond\n"


def test_errors_outside_the_table_and_click_exits_pass_through() -> None:
    assert isinstance(_invoke(RuntimeError("a bug")).exception, RuntimeError)
    assert _invoke(ValueError("not ours")).exception.__class__ is ValueError
    assert _invoke(typer.Exit(7)).exit_code == 7
    bad = _invoke(typer.BadParameter("nope", param_hint="--x"))
    assert bad.exit_code == 2 and "nope" in bad.output


def test_the_decorated_command_keeps_its_options_and_help() -> None:
    result = CliRunner().invoke(_app(ConfigurationError("x")), ["fail", "--help"])
    assert result.exit_code == 0
    assert "--token" in result.output and "Raise the error under test." in result.output


def _commands(command: Any, path: str = "budcluster") -> list[tuple[str, Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, f"{path} {name}")
    return found


def test_every_budcluster_cli_command_uses_the_handler() -> None:
    commands = _commands(get_command(root_app))
    assert len(commands) > 40  # the walk reached the groups' commands
    unwrapped = [
        path
        for path, command in commands
        if command.callback is not None
        and command.callback.__module__.startswith("budcluster.cli.")
        and not hasattr(command.callback, EXIT_CODES_ATTRIBUTE)
    ]
    assert unwrapped == []
