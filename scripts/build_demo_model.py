#!/usr/bin/env python3
"""Build the offline demo model: a thin wrapper over ``budcluster demo-model build``.

Usage: scripts/build_demo_model.py OUT_DIR [--size tiny|small] [--gguf/--no-gguf]
"""

from __future__ import annotations

import sys

from budcluster.cli.demo import app

if __name__ == "__main__":
    app(["build", *sys.argv[1:]], prog_name="build_demo_model.py")
