"""A bad deployments.yaml gets one clear line naming the file or field and the fix.

Files that are not UTF-8, empty files, and numbers no deployment could mean (non-finite,
negative, fractional where a count is meant, or absurdly large) are all refused, through
``load_catalogue`` and through ``python -m budcluster.catalogue check``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from budcluster.catalogue import load_catalogue
from budcluster.errors import ConfigurationError

PROJECT = Path(__file__).resolve().parents[2]

ENTRY = """\
deployments:
  - name: qwen-cpu
    cluster: lab
    model:
      uri: /models/qwen
"""


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "deployments.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _with(section: str, body: str) -> str:
    """ENTRY plus ``section:`` holding ``body`` (YAML lines, indented under the section)."""
    lines = "".join(f"      {line}\n" for line in body.splitlines())
    return ENTRY + f"    {section}:\n{lines}"


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue(path)
    return str(caught.value)


def _check_command(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "budcluster.catalogue", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT,
    )


def test_a_file_that_is_not_utf8_is_one_line_naming_the_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, ENTRY.encode() + b"    # caf\xe9 in Latin-1\n")
    message = _load_error(path)
    assert "\n" not in message
    assert str(path) in message and "UTF-8" in message and "byte" in message


def test_an_empty_file_is_said_to_be_empty(tmp_path: Path) -> None:
    for text in ("", "\n  \n", "# only a comment\n"):
        message = _load_error(_write(tmp_path, text))
        assert "\n" not in message
        assert "empty" in message and "deployments:" in message, message


def test_broken_yaml_is_one_line_with_its_position(tmp_path: Path) -> None:
    message = _load_error(_write(tmp_path, "deployments: [\n"))
    assert "\n" not in message
    assert "not valid YAML" in message and "line " in message


def test_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    message = _load_error(tmp_path)
    assert "\n" not in message and "cannot read" in message


@pytest.mark.parametrize(
    ("section", "body", "field"),
    [
        ("runtime", "max_model_len: 1e30", "runtime.max_model_len"),
        ("runtime", "max_model_len: 1.0e+30", "runtime.max_model_len"),
        ("runtime", "max_model_len: 1000000000000000000000000000000", "runtime.max_model_len"),
        ("runtime", "max_model_len: 4096.0", "runtime.max_model_len"),
        ("runtime", "max_model_len: -1", "runtime.max_model_len"),
        ("runtime", "max_model_len: true", "runtime.max_model_len"),
        ("runtime", "ready_timeout_s: .inf", "runtime.ready_timeout_s"),
        ("runtime", "ready_timeout_s: .nan", "runtime.ready_timeout_s"),
        ("runtime", "ready_timeout_s: -5", "runtime.ready_timeout_s"),
        ("runtime", "ready_timeout_s: 1.0e+12", "runtime.ready_timeout_s"),
        ("runtime", "concurrency: 2.5", "runtime.concurrency"),
        ("runtime", "concurrency: 1000000000", "runtime.concurrency"),
        ("runtime", "port: 8000.0", "runtime.port"),
        ("runtime", "replicas: 1000000", "runtime.replicas"),
        ("runtime", "replicas: 2.0", "runtime.replicas"),
        ("benchmark", "profile: {requests: 1.5}", "benchmark.profile"),
        ("benchmark", "profile: {requests: 1.0e+30}", "benchmark.profile"),
        ("benchmark", "profile: {duration_s: .inf}", "benchmark.profile"),
        ("benchmark", "profile: {duration_s: .nan}", "benchmark.profile"),
        ("benchmark", "profile: {duration_s: -3}", "benchmark.profile"),
        ("benchmark", "profile: {warmup_requests: -1}", "benchmark.profile"),
        ("benchmark", "profile: {profile: 'rate:inf'}", "benchmark.profile"),
        ("benchmark", "profile: {profile: 'rate:nan'}", "benchmark.profile"),
        ("benchmark", "profile: {profile: 'gamma:5,inf'}", "benchmark.profile"),
        ("benchmark", "profile: {input_tokens: 'normal:nan,1'}", "benchmark.profile"),
        ("benchmark", "baseline: {threshold_pct: .nan}", "benchmark.baseline.threshold_pct"),
        ("benchmark", "baseline: {threshold_pct: .inf}", "benchmark.baseline.threshold_pct"),
        ("benchmark", "baseline: {threshold_pct: -1}", "benchmark.baseline.threshold_pct"),
        ("benchmark", "baseline: {kind: pinned, run_id: 1.5}", "benchmark.baseline.run_id"),
    ],
)
def test_non_finite_negative_fractional_and_absurd_numbers_are_refused(
    tmp_path: Path, section: str, body: str, field: str
) -> None:
    message = _load_error(_write(tmp_path, _with(section, body)))
    assert f"deployments[0] ('qwen-cpu'): field {field}" in message, message
    assert "must be" in message or "give" in message, message  # says what is allowed


def test_sensible_numbers_still_load(tmp_path: Path) -> None:
    text = _with(
        "runtime",
        "max_model_len: 131072\nready_timeout_s: 3600\nconcurrency: 64\nreplicas: 2\nport: 8001",
    )
    text += (
        "    benchmark:\n"
        "      profile: {requests: 100, duration_s: 30.5, warmup_requests: 0, profile: 'rate:2.5'}\n"
        "      baseline: {threshold_pct: 12.5}\n"
    )
    entry = load_catalogue(_write(tmp_path, text)).deployments[0]
    assert entry.runtime.max_model_len == 131072 and entry.runtime.ready_timeout_s == 3600
    assert entry.benchmark is not None and entry.benchmark.profile.duration_s == 30.5


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (ENTRY.encode() + b"# \xff\xfe\n", "UTF-8"),
        (_with("runtime", "ready_timeout_s: .inf").encode(), "field runtime.ready_timeout_s"),
        (_with("runtime", "max_model_len: 1e30").encode(), "field runtime.max_model_len"),
    ],
)
def test_the_check_command_prints_the_problem_without_a_traceback(
    tmp_path: Path, content: bytes, words: str
) -> None:
    result = _check_command(_write(tmp_path, content))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert words in result.stderr
    problem_lines = [line for line in result.stderr.splitlines() if words in line]
    assert len(problem_lines) == 1, result.stderr


def test_the_check_command_accepts_the_project_catalogue() -> None:
    result = _check_command(PROJECT / "deployments.yaml")
    assert result.returncode == 0, result.stderr
    assert "1 entr" in result.stdout and "valid" in result.stdout
