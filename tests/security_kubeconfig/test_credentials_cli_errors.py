"""Bad input to `budcluster credentials add-*` ends in one line, `error: ...`, naming the
field, with a nonzero exit and no traceback; nothing is saved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.settings import get_settings

USER = {"name": "admin", "user": {"token": "t"}}
CLUSTER = {"name": "lab", "cluster": {"server": "https://10.0.0.1:6443"}}
CONTEXT = {"name": "lab", "context": {"cluster": "lab", "user": "admin"}}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No key files and no Prefect server: bad input must be refused before either is used.
    monkeypatch.setenv("BUDCLUSTER_KEYS_DIR", str(tmp_path / "no-keys"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def assert_one_error_line(result: Any, *needles: str) -> str:
    assert result.exit_code not in (0, None), result.output
    # Exit(n) only: an exception that escaped the command is a traceback to the user.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def write(path: Path, config: Any) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def base(**overrides: Any) -> dict[str, Any]:
    config = {
        "clusters": [CLUSTER],
        "users": [USER],
        "contexts": [CONTEXT],
        "current-context": "lab",
    }
    config.update(overrides)
    return config


def test_a_cluster_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    file = write(tmp_path / "kc", base(clusters=[1]))
    assert_one_error_line(run("credentials", "add-kubeconfig", "x", str(file)), "clusters[0]")


def test_a_context_that_is_a_string(tmp_path: Path) -> None:
    file = write(tmp_path / "kc", base(contexts=[{"name": "lab", "context": "oops"}]))
    assert_one_error_line(
        run("credentials", "add-kubeconfig", "x", str(file)), "contexts[lab].context"
    )


def test_a_contexts_entry_that_is_a_string(tmp_path: Path) -> None:
    file = write(tmp_path / "kc", base(contexts=["oops"]))
    assert_one_error_line(run("credentials", "add-kubeconfig", "x", str(file)), "contexts[0]")


def test_a_context_naming_a_missing_cluster(tmp_path: Path) -> None:
    context = {"name": "lab", "context": {"cluster": "gone", "user": "admin"}}
    file = write(tmp_path / "kc", base(contexts=[context]))
    assert_one_error_line(
        run("credentials", "add-kubeconfig", "x", str(file)), "contexts[lab].context.cluster"
    )


def test_a_kubeconfig_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "kc"
    file.write_bytes(b"clusters: [\xff\xfe]\n")
    assert_one_error_line(run("credentials", "add-kubeconfig", "x", str(file)), str(file), "UTF-8")


def test_a_token_file_is_refused_on_add(tmp_path: Path) -> None:
    file = write(tmp_path / "kc", base(users=[{"name": "admin", "user": {"tokenFile": "/x"}}]))
    assert_one_error_line(
        run("credentials", "add-kubeconfig", "x", str(file)), "users[admin].user.tokenFile"
    )


def test_an_inventory_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "inventory.yml"
    file.write_bytes(b"all:\n  hosts:\n    \xff: {}\n")
    assert_one_error_line(run("credentials", "add-hosts", "x", str(file)), str(file), "UTF-8")


def test_an_inventory_the_block_refuses(tmp_path: Path) -> None:
    file = tmp_path / "inventory.yml"
    file.write_text("all:\n  hosts: {}\n")
    assert_one_error_line(run("credentials", "add-hosts", "x", str(file)), "inventory")


def test_missing_keys_are_one_line() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    result = run("credentials", "add-s3", "x", "--endpoint", "http://e", "--bucket", "b", env=env)
    assert_one_error_line(result, "keys init")


def test_a_validation_error_from_a_block_is_one_line_without_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pydantic ValidationError spans several lines and quotes the input, which may be a
    secret; the CLI prints the field names and reasons only."""
    from blocks.s3 import S3Registry

    def refuse(*_: Any, **__: Any) -> S3Registry:
        return S3Registry.model_validate(
            {"sealed_for": "x", "bucket": ["s3cr3t-value"], "access_key_id": "a"}
        )

    monkeypatch.setattr(S3Registry, "from_keys", refuse)
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    result = run("credentials", "add-s3", "x", "--endpoint", "http://e", "--bucket", "b", env=env)
    line = assert_one_error_line(result, "bucket", "secret_access_key")
    assert "s3cr3t-value" not in result.output, line
