"""A real exec credential plugin for tests: an executable script, placed in a directory the
test puts first on ``PATH`` under an allow-listed name (``aws``), that prints an
``ExecCredential`` with a fresh token and its expiry, and records each invocation.

Each run appends one JSON line to ``calls.jsonl`` (its argv, the probed variables of its
environment, its stdin, ``KUBERNETES_EXEC_INFO``, its parent's pid) and ``<token>
<expiry>`` to ``tokens.txt``, the stand-in API server's list of issued tokens. The expiry
has whole seconds, as a Go ``metav1.Time`` does.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXEC_API = "client.authentication.k8s.io/v1beta1"
PROBED_ENV = ("AWS_REGION", "AWS_ACCESS_KEY_ID", "KUBERNETES_EXEC_INFO", "BUDCLUSTER_TEST_CANARY")


@dataclass(frozen=True)
class FakePlugin:
    state: Path
    bin_dir: Path

    def calls(self) -> list[dict[str, Any]]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def issued(self) -> dict[str, float]:
        """Token -> expiry (epoch seconds) of every token the plugin issued."""
        path = self.state / "tokens.txt"
        if not path.exists():
            return {}
        return {
            token: float(expiry)
            for token, expiry in (line.split() for line in path.read_text().splitlines())
        }


def install_plugin(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    name: str = "aws",
    lifetime_s: int = 900,
    fail_after: int | None = None,
    sleep_s: float = 0.0,
    output: str | None = None,
    api_version: str = EXEC_API,
    certificate: tuple[str, str] | None = None,
) -> FakePlugin:
    """Put the plugin on ``PATH`` as ``name``. ``fail_after``: exit 1 (with a message on
    stderr) from that many earlier runs on; ``output``: print this instead."""
    state = tmp_path / "plugin-state"
    bin_dir = tmp_path / "plugin-bin"
    state.mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import datetime, json, os, pathlib, sys, time, uuid
            state = pathlib.Path({str(state)!r})
            calls = state / "calls.jsonl"
            earlier = len(calls.read_text().splitlines()) if calls.exists() else 0
            record = {{
                "argv": sys.argv[1:],
                "env": {{k: os.environ.get(k) for k in {PROBED_ENV!r}}},
                "stdin": sys.stdin.read(),
                "ppid": os.getppid(),
            }}
            with open(calls, "a") as f:
                f.write(json.dumps(record) + "\\n")
            time.sleep({sleep_s!r})
            fail_after = {fail_after!r}
            if fail_after is not None and earlier >= fail_after:
                sys.stderr.write("An error occurred (ExpiredToken): the security token expired\\n")
                sys.exit(1)
            output = {output!r}
            if output is not None:
                print(output)
                sys.exit(0)
            token = "k8s-aws-v1." + uuid.uuid4().hex
            expiry = int(time.time()) + {lifetime_s!r}
            with open(state / "tokens.txt", "a") as f:
                f.write(f"{{token}} {{expiry}}\\n")
            stamp = datetime.datetime.fromtimestamp(expiry, datetime.timezone.utc)
            status = {{"expirationTimestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}}
            certificate = {certificate!r}
            if certificate is None:
                status["token"] = token
            else:
                status["clientCertificateData"], status["clientKeyData"] = certificate
            print(json.dumps({{"apiVersion": {api_version!r}, "kind": "ExecCredential",
                              "status": status}}))
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return FakePlugin(state, bin_dir)


def eks_user(**overrides: Any) -> dict[str, Any]:
    """A kubeconfig user as provision-cluster registers an EKS cluster with."""
    plugin: dict[str, Any] = {
        "apiVersion": EXEC_API,
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", "lab", "--region", "eu-west-1"],
        "env": [
            {"name": "AWS_REGION", "value": "eu-west-1"},
            {"name": "AWS_ACCESS_KEY_ID", "value": "AKIAEXAMPLE"},
        ],
        "interactiveMode": "Never",
    }
    plugin.update(overrides)
    return {"exec": plugin}
