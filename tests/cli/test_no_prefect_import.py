"""``budcluster`` is the one composition root that may use Prefect and ``blocks``, and only
inside the commands that need them: loading the CLI and its help imports neither."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import sys

    from typer.main import get_command
    from typer.testing import CliRunner

    from budcluster.cli.app import app

    runner = CliRunner()
    pages = 0

    def helps(command, args):
        global pages
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        pages += 1
        for name, sub in getattr(command, "commands", {}).items():
            helps(sub, [*args, name])

    helps(get_command(app), [])
    assert pages > 40, pages
    roots = {"prefect", "blocks", "tasks", "flows"}
    print(sorted(name for name in sys.modules if name.split(".")[0] in roots))
    """
)


def test_the_cli_and_all_its_help_pages_load_without_prefect() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
