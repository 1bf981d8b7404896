"""``budcluster bench run`` takes the API key from OPENAI_API_KEY or a private file, never
from argv, where every user of the machine can read it (ps, /proc/PID/cmdline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from budcluster.bench.runner import BenchmarkConfig
from budcluster.cli import bench as bench_cli
from budcluster.cli.app import app
from budcluster.errors import ConfigurationError

runner = CliRunner()
KEY = "sk-test-0123456789"


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[BenchmarkConfig]:
    """Configs the command would have run with; the run itself stops at once."""
    configs: list[BenchmarkConfig] = []

    def fake_run(config: BenchmarkConfig, on_record: object = None) -> object:
        configs.append(config)
        raise ConfigurationError("stopped by the test")

    monkeypatch.setattr(bench_cli, "run_benchmark", fake_run)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return configs


def _run(*extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    args = [
        "bench",
        "run",
        "--url",
        "http://127.0.0.1:9",
        "--model",
        "m",
        "--requests",
        "1",
        "--no-store",
    ]
    result = runner.invoke(app, [*args, *extra], env=env)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    return result.exit_code, result.stderr


def _key_file(tmp_path: Path, mode: int, content: str = KEY + "\n") -> Path:
    path = tmp_path / "api-key"
    path.write_text(content)
    path.chmod(mode)
    return path


def test_a_key_on_argv_is_refused_with_the_alternatives(seen: list[BenchmarkConfig]) -> None:
    code, stderr = _run("--api-key", KEY)
    assert code != 0 and seen == []
    (line,) = stderr.splitlines()
    assert line.startswith("error: --api-key")
    assert "OPENAI_API_KEY" in line and "--api-key-file" in line
    assert KEY not in stderr


def test_a_private_key_file_is_read_and_its_newline_dropped(
    tmp_path: Path, seen: list[BenchmarkConfig]
) -> None:
    _run("--api-key-file", str(_key_file(tmp_path, 0o600)))
    assert [config.api_key for config in seen] == [KEY]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_can_read_is_refused(
    tmp_path: Path, seen: list[BenchmarkConfig], mode: int
) -> None:
    path = _key_file(tmp_path, mode)
    code, stderr = _run("--api-key-file", str(path))
    assert code != 0 and seen == []
    (line,) = stderr.splitlines()
    assert "--api-key-file" in line and str(path) in line and "chmod 600" in line
    assert KEY not in stderr


@pytest.mark.parametrize("problem", ["missing", "empty", "directory"])
def test_an_unusable_key_file_is_one_line(
    tmp_path: Path, seen: list[BenchmarkConfig], problem: str
) -> None:
    path = tmp_path / "api-key"
    if problem == "empty":
        _key_file(tmp_path, 0o600, content="\n")
    elif problem == "directory":
        path.mkdir(mode=0o700)
    code, stderr = _run("--api-key-file", str(path))
    assert code != 0 and seen == [] and "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert "--api-key-file" in line and str(path) in line


def test_the_environment_variable_still_works(seen: list[BenchmarkConfig]) -> None:
    _run(env={"OPENAI_API_KEY": KEY})
    assert [config.api_key for config in seen] == [KEY]


def test_no_key_at_all_sends_none(seen: list[BenchmarkConfig]) -> None:
    _run()
    assert [config.api_key for config in seen] == [None]
