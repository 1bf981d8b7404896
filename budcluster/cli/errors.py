"""How a ``budcluster`` command ends on an error: one ``error:`` line on stderr, an exit code.

Every command is wrapped in :func:`exits_on_error`. The error's message is printed,
never a traceback and never local variables (they may hold decrypted secrets). The code
is that of the first entry in the command's table that the error is an instance of; an
error in no entry is a bug and propagates.

=====  ==============================================  ===================================
code   meaning                                         errors (table ``EXIT_CODES``)
=====  ==============================================  ===================================
0      success
1      the operation failed or was refused             ``BudClusterError``
2      bad input: options, files, forms, environment   ``ConfigurationError``, ``UsageError``
                                                       (and typer's own usage errors)
75     temporary, a rerun may succeed (EX_TEMPFAIL)    ``TemporaryError``, ``model`` only
=====  ==============================================  ===================================

Not found, permanent and temporary share 1 outside ``model`` because callers already rely
on it: ``cluster deregister`` exits 1 for a cluster that is not there, ``db upgrade`` for
a database that does not answer, ``keys init`` for a directory it cannot use.

Two groups keep the codes their callers and tests already rely on:

* ``credentials`` (``CREDENTIALS_EXIT_CODES``): input refused while sealing a credential
  is 1, like every other refusal there, pydantic's ``ValueError`` included, printed on one
  line without the input; a secret missing from the environment (``UsageError``) is 2.
* ``model`` (``MODEL_EXIT_CODES``): 2 when retrying cannot help, 75 when it may, as
  ``model transfer`` reports through :mod:`budcluster.transfer.console`.

Outcomes that are not errors choose their own code next to the command: ``bench compare``
exits 1 on a regression, ``plan`` 2 when no plan fits, ``keys rotate``/``reseal`` 1 when a
credential could not be re-sealed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from typer.exceptions import TyperException

from budcluster.errors import BudClusterError, ConfigurationError, TemporaryError

__all__ = [
    "CREDENTIALS_EXIT_CODES",
    "EXIT_CODES",
    "EXIT_CODES_ATTRIBUTE",
    "MODEL_EXIT_CODES",
    "CommandFailed",
    "ExitCode",
    "ExitCodes",
    "UsageError",
    "error_message",
    "exits_on_error",
]

EXIT_CODES_ATTRIBUTE = "budcluster_exit_codes"
"""Set on every decorated command to the table it uses."""

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    TEMPORARY = 75


class UsageError(ConfigurationError):
    """The command line lacks something it needs: an option, a variable, a terminal."""


class CommandFailed(BudClusterError):
    """A system the command drives (the Prefect API) refused; the message says what to check."""


@dataclass(frozen=True)
class ExitCodes:
    """Error classes to exit codes, most specific first; ``one_line`` folds messages."""

    entries: Sequence[tuple[type[Exception], ExitCode]]
    one_line: bool = False

    def code_for(self, error: Exception) -> ExitCode | None:
        return next((code for kind, code in self.entries if isinstance(error, kind)), None)


EXIT_CODES = ExitCodes(
    [(ConfigurationError, ExitCode.BAD_INPUT), (BudClusterError, ExitCode.FAILED)]
)
CREDENTIALS_EXIT_CODES = ExitCodes(
    [
        (UsageError, ExitCode.BAD_INPUT),
        (BudClusterError, ExitCode.FAILED),
        (ValueError, ExitCode.FAILED),
    ],
    one_line=True,
)
MODEL_EXIT_CODES = ExitCodes(
    [(TemporaryError, ExitCode.TEMPORARY), (BudClusterError, ExitCode.BAD_INPUT)]
)


def error_message(error: Exception, *, one_line: bool = False) -> str:
    """The text after ``error:``; a pydantic error names fields and reasons, never the input."""
    if isinstance(error, ValidationError):
        # Its own text spans lines and quotes the input, which may be a secret.
        errors = error.errors(include_url=False, include_input=False, include_context=False)
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'value'}: {e['msg']}" for e in errors
        )
        return f"invalid {error.title}: {reasons}"
    return " ".join(str(error).split()) if one_line else str(error)


@contextmanager
def _exit_on_error(table: ExitCodes) -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):
        raise  # already how typer ends a command (a usage error is a TyperException)
    except Exception as error:
        code = table.code_for(error)
        if code is None:
            raise
        typer.secho(
            f"error: {error_message(error, one_line=table.one_line)}",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(int(code)) from None


def exits_on_error(
    table: ExitCodes = EXIT_CODES,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a command (under ``@app.command``) so its errors end it as the table says."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)  # typer reads the wrapped signature and docstring
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _exit_on_error(table):
                return command(*args, **kwargs)

        setattr(wrapper, EXIT_CODES_ATTRIBUTE, table)  # lets a test find unwrapped commands
        return wrapper

    return decorate
