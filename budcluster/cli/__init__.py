"""The ``budcluster`` command line: local operations.

The one composition root inside ``budcluster``: the only package here that may use
Prefect and ``blocks`` (the import-linter contract exempts it). Commands that need them
import them inside the command, so loading the CLI, its help and the groups that do not
need them never imports Prefect (``tests/cli/test_no_prefect_import.py``). Every command
ends on an error the same way: :mod:`budcluster.cli.errors`.
"""

__all__: list[str] = []
